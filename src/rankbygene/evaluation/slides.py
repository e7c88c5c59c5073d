"""Slide-level evaluation of features: ABMIL classification (AUC) and survival (C-index).

Input: a directory of per-slide feature files in the CLAM/TRIDENT layout
(``FEATS/{slide_id}.h5`` with a ``features`` (n_patches × D) dataset, as written by
CLAM, TRIDENT or ``rankbygene extract``) and a CSV of slide labels:

- ``slide_id`` (feature file stem), optional ``case_id`` (patient; defaults to the
  slide id; slides of one case always fall in the same fold);
- classification: a label column (``label`` by default, any values);
- survival: ``time`` and ``event`` (1 = observed), or MCAT's ``survival_months`` and
  ``censorship`` (1 = censored).

Protocol (METHOD.md §5): k-fold cross-validation grouped by case and stratified by
label (classification) or event (survival); gated-attention ABMIL trained per fold
(classification: Adam 1e-4, 200 epochs, cross-entropy; survival: SGD 2e-4, 20 epochs,
4 bins at quartiles of the training fold's uncensored times, discrete-time NLL);
test-fold AUC or C-index, mean ± std over folds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from torch import Tensor
from tqdm.auto import tqdm

from rankbygene import keys
from rankbygene.evaluation.metrics import mean_std
from rankbygene.evaluation.mil import (
    GatedAttentionMIL,
    concordance_index,
    discretise_times,
    risk_from_hazard_logits,
    survival_bin_edges,
    survival_nll_loss,
)
from rankbygene.features.io import list_feature_files, read_summary
from rankbygene.fileio import write_text_atomic

logger = logging.getLogger(__name__)

__all__ = [
    "SlideBags",
    "SlideEvalConfig",
    "SlideLabels",
    "evaluate_slides",
    "read_slide_labels",
    "slide_folds",
]

Task = Literal["classification", "survival"]
TASKS: tuple[str, ...] = ("classification", "survival")
PREDICTIONS_CSV = "predictions.csv"

# Paper settings per task (METHOD.md §5): optimiser, learning rate, epochs.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "classification": {"optimizer": "adam", "lr": 1e-4, "epochs": 200},
    "survival": {"optimizer": "sgd", "lr": 2e-4, "epochs": 20},
}


@dataclass(frozen=True)
class SlideEvalConfig:
    """Settings of one slide-level evaluation; None fields take the task's paper default.

    Attributes:
        task: ``classification`` or ``survival``.
        folds: cross-validation folds (grouped by case).
        epochs, lr, optimizer (``adam`` | ``sgd``): training of the ABMIL per fold.
        weight_decay: L2 weight decay (CLAM/MCAT: 1e-5).
        grad_accum: slides whose gradients are accumulated per optimiser step
            (bags differ in size, so each step sees one slide; MCAT accumulates 32).
        n_bins: survival time bins.
        alpha: weight of the uncensored-only survival term (MCAT's ``alpha_surv``).
        hidden, attention_dim, dropout: ABMIL widths and dropout.
        seed: fold shuffling and initialisation seed.
    """

    task: str = "classification"
    folds: int = 5
    epochs: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    weight_decay: float = 1e-5
    grad_accum: int = 1
    n_bins: int = 4
    alpha: float = 0.0
    hidden: int = 512
    attention_dim: int = 256
    dropout: float = 0.25
    seed: int = 0

    def resolved(self) -> SlideEvalConfig:
        """Fill the task's defaults into unset fields and validate."""
        if self.task not in TASKS:
            raise ValueError(f"Unknown slide task {self.task!r}; choose one of {', '.join(TASKS)}.")
        values = {k: v for k, v in TASK_DEFAULTS[self.task].items() if getattr(self, k) is None}
        cfg = replace(self, **values)
        if cfg.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {cfg.optimizer!r}.")
        if cfg.folds < 2:
            raise ValueError(f"folds must be >= 2, got {cfg.folds}.")
        if cfg.epochs < 1 or cfg.grad_accum < 1:
            raise ValueError("epochs and grad_accum must be >= 1.")
        return cfg

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SlideEvalConfig:
        """Build from a mapping (e.g. YAML), refusing unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown slide-evaluation setting(s): {', '.join(unknown)}.")
        return cls(**values)


@dataclass(frozen=True)
class SlideLabels:
    """Labels of S slides, aligned by row.

    Attributes:
        slide_ids: (S,) feature file stems.
        case_ids: (S,) patient / case of each slide.
        labels: (S,) integer class codes (classification) or None.
        classes: class names, index = code (classification) or [].
        times: (S,) follow-up times (survival) or None.
        events: (S,) 1 observed / 0 censored (survival) or None.
    """

    slide_ids: np.ndarray
    case_ids: np.ndarray
    labels: np.ndarray | None = None
    classes: list[str] | None = None
    times: np.ndarray | None = None
    events: np.ndarray | None = None

    def strata(self) -> np.ndarray:
        """What folds are stratified on: the class, or whether the event was observed."""
        return self.labels if self.labels is not None else self.events


def read_slide_labels(path: str | Path, task: str, label_column: str = "label") -> SlideLabels:
    """Read and validate a slide label CSV (see the module docstring for columns)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No label file {path}.")
    table = pd.read_csv(path)
    if "slide_id" not in table:
        raise ValueError(f"{path}: no 'slide_id' column (columns: {', '.join(table.columns)}).")
    table["slide_id"] = table["slide_id"].astype(str)
    dup = table["slide_id"][table["slide_id"].duplicated()].unique()
    if dup.size:
        raise ValueError(f"{path}: duplicate slide_id(s) {', '.join(dup[:5])}; one row per slide.")
    slides = table["slide_id"].to_numpy()
    cases = table["case_id"].astype(str).to_numpy() if "case_id" in table else slides.copy()
    if task == "classification":
        if label_column not in table:
            raise ValueError(
                f"{path}: no label column {label_column!r} (columns: "
                f"{', '.join(table.columns)}); pass --label-column."
            )
        column = table[label_column]
        if column.isna().any():
            raise ValueError(f"{path}: {int(column.isna().sum())} slide(s) without a label.")
        codes, classes = pd.factorize(column.astype(str), sort=True)
        if len(classes) < 2:
            raise ValueError(f"{path}: column {label_column!r} has one class only ({classes[0]}).")
        return SlideLabels(slides, cases, labels=codes, classes=[str(c) for c in classes])
    if task == "survival":
        if {"time", "event"} <= set(table):
            times, events = table["time"].to_numpy(float), table["event"].to_numpy()
        elif {"survival_months", "censorship"} <= set(table):
            times = table["survival_months"].to_numpy(float)
            events = 1 - table["censorship"].to_numpy()
        else:
            raise ValueError(
                f"{path}: survival needs columns 'time' and 'event' (1 = observed), or MCAT's "
                f"'survival_months' and 'censorship' (columns: {', '.join(table.columns)})."
            )
        if not np.isfinite(times).all() or (times < 0).any():
            raise ValueError(f"{path}: survival times must be finite and >= 0.")
        if not np.isin(events, (0, 1)).all():
            raise ValueError(f"{path}: event/censorship values must be 0 or 1.")
        return SlideLabels(slides, cases, times=times, events=events.astype(np.int64))
    raise ValueError(f"Unknown slide task {task!r}; choose one of {', '.join(TASKS)}.")


class SlideBags:
    """Per-slide feature bags of a features directory, in memory or read on access.

    Shapes and dtypes are checked up front from the HDF5 headers (no data read). The
    bags are then kept in memory when they fit in ``memory_limit_gb`` (each is read
    once), else read from disk on every access (one contiguous read per slide), so a
    TCGA-scale set of UNI features (tens of GB) still trains.

    Args:
        features_dir: directory of ``{slide_id}.h5`` files with a ``features`` dataset.
        slide_ids: the slides to load, in order.
        memory_limit_gb: keep everything in memory below this total size.
    """

    def __init__(
        self, features_dir: str | Path, slide_ids: np.ndarray, memory_limit_gb: float = 4.0
    ) -> None:
        files = list_feature_files(features_dir)
        missing = [s for s in slide_ids if s not in files]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} labelled slide(s) have no feature file in {features_dir} "
                f"(e.g. {', '.join(missing[:5])}). Extract their features first or drop "
                "their rows from the label file."
            )
        self.paths = [files[s] for s in slide_ids]
        shapes = [self._shape(path) for path in self.paths]
        dims = {shape[-1] for shape in shapes}
        if len(dims) > 1:
            raise ValueError(f"Feature files in {features_dir} disagree on D: {sorted(dims)}.")
        self.dim = dims.pop()
        total_gb = sum(int(np.prod(shape)) for shape in shapes) * 4 / 1e9
        self._cache: list[Tensor] | None = None
        if total_gb <= memory_limit_gb:
            self._cache = [
                self._read(p) for p in tqdm(self.paths, desc="Reading bags", leave=False)
            ]
        else:
            logger.info("%.1f GB of features: reading each bag from disk when used", total_gb)

    @staticmethod
    def _shape(path: Path) -> tuple[int, ...]:
        """The ``features`` shape from the file header; refuses files without patches."""
        with h5py.File(path, "r") as f:
            if keys.FEAT_FEATURES not in f:
                raise ValueError(f"{path} has no '{keys.FEAT_FEATURES}' dataset.")
            shape = tuple(f[keys.FEAT_FEATURES].shape)
        if len(shape) < 2 or int(np.prod(shape[:-1])) == 0:
            raise ValueError(f"{path}: features of shape {shape}: no patches in this slide.")
        return shape

    @staticmethod
    def _read(path: Path) -> Tensor:
        """(n, D) float32 bag; CLAM may store (1, n, D)."""
        with h5py.File(path, "r") as f:
            feats = np.asarray(f[keys.FEAT_FEATURES][()], dtype=np.float32)
        return torch.from_numpy(feats.reshape(-1, feats.shape[-1]))

    @property
    def in_memory(self) -> bool:
        """Whether the bags are held in memory (else read from disk on access)."""
        return self._cache is not None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Tensor:
        return self._cache[i] if self._cache is not None else self._read(self.paths[i])


def slide_folds(labels: SlideLabels, k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train, test) index folds, grouped by case and stratified by label / event.

    Raises:
        ValueError: fewer cases than folds.
    """
    n_cases = len(np.unique(labels.case_ids))
    if n_cases < k:
        raise ValueError(f"{n_cases} cases cannot be split into {k} folds; lower --folds.")
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    folds = list(splitter.split(np.zeros(len(labels.slide_ids)), labels.strata(), labels.case_ids))
    for train_idx, test_idx in folds:
        shared = set(labels.case_ids[train_idx]) & set(labels.case_ids[test_idx])
        if shared:  # the splitter guarantees this; keep the check as a tripwire
            raise AssertionError(f"case(s) {sorted(shared)[:5]} on both sides of a fold")
    return folds


def _fit_mil(
    model: GatedAttentionMIL,
    bags: SlideBags,
    train_idx: np.ndarray,
    slide_loss: Callable[[Tensor, int], Tensor],
    cfg: SlideEvalConfig,
    generator: torch.Generator,
    desc: str,
) -> list[float]:
    """Train on the given slides, one bag per forward (bags differ in size); mean loss/epoch."""
    if cfg.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(
            model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
    else:
        opt = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay
        )
    history = []
    model.train()
    for _ in (bar := tqdm(range(cfg.epochs), desc=desc, unit="epoch", leave=False)):
        order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
        total = 0.0
        opt.zero_grad()
        for step, i in enumerate(order, start=1):
            outputs, _ = model(bags[i])
            loss = slide_loss(outputs.unsqueeze(0), int(i))
            (loss / cfg.grad_accum).backward()
            total += loss.item()
            if step % cfg.grad_accum == 0 or step == len(order):
                opt.step()
                opt.zero_grad()
        history.append(total / len(order))
        bar.set_postfix(loss=f"{history[-1]:.4f}")
    return history


@torch.inference_mode()
def _predict(model: GatedAttentionMIL, bags: SlideBags, idx: np.ndarray) -> np.ndarray:
    """(len(idx), n_outputs) outputs of the model on the given slides."""
    model.eval()
    return torch.stack([model(bags[i])[0] for i in idx]).numpy()


def _classification_scores(y: np.ndarray, probs: np.ndarray, n_classes: int) -> dict[str, float]:
    """AUC (binary, or one-vs-rest macro) and accuracy; AUC NaN when a class is absent."""
    present = np.unique(y)
    if len(present) < n_classes:
        logger.warning("a test fold lacks class(es): AUC undefined for it (reported as NaN)")
        auc = float("nan")
    elif n_classes == 2:
        auc = float(roc_auc_score(y, probs[:, 1]))
    else:
        auc = float(roc_auc_score(y, probs, multi_class="ovr", average="macro"))
    return {"auc": auc, "accuracy": float(accuracy_score(y, probs.argmax(1)))}


def _new_model(in_dim: int, n_outputs: int, cfg: SlideEvalConfig) -> GatedAttentionMIL:
    return GatedAttentionMIL(
        in_dim, n_outputs, hidden=cfg.hidden, attention_dim=cfg.attention_dim, dropout=cfg.dropout
    )


def _run_fold(
    fold: int,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    bags: SlideBags,
    labels: SlideLabels,
    cfg: SlideEvalConfig,
) -> tuple[dict[str, Any], np.ndarray]:
    """Train one fold's ABMIL; its test scores and test outputs (probabilities or risk)."""
    torch.manual_seed(cfg.seed + fold)
    generator = torch.Generator().manual_seed(cfg.seed + fold)
    desc = f"fold {fold + 1}/{cfg.folds}"
    info: dict[str, Any] = {"fold": fold, "n_train": len(train_idx), "n_test": len(test_idx)}
    if cfg.task == "classification":
        n_classes = len(labels.classes or [])
        model = _new_model(bags.dim, n_classes, cfg)
        targets = torch.as_tensor(labels.labels, dtype=torch.long)

        def loss(out: Tensor, i: int) -> Tensor:
            return torch.nn.functional.cross_entropy(out, targets[i : i + 1])

        info["train_loss"] = _fit_mil(model, bags, train_idx, loss, cfg, generator, desc)
        probs = torch.softmax(torch.as_tensor(_predict(model, bags, test_idx)), 1).numpy()
        info.update(_classification_scores(labels.labels[test_idx], probs, n_classes))
        return info, probs
    edges = survival_bin_edges(labels.times[train_idx], labels.events[train_idx], cfg.n_bins)
    bins = torch.as_tensor(discretise_times(labels.times, edges))
    events = torch.as_tensor(labels.events)
    model = _new_model(bags.dim, cfg.n_bins, cfg)

    def survival_loss(out: Tensor, i: int) -> Tensor:
        return survival_nll_loss(out, bins[i : i + 1], events[i : i + 1], alpha=cfg.alpha)

    info["train_loss"] = _fit_mil(model, bags, train_idx, survival_loss, cfg, generator, desc)
    info["bin_edges"] = edges.tolist()
    risk = risk_from_hazard_logits(torch.as_tensor(_predict(model, bags, test_idx))).numpy()
    info["c_index"] = concordance_index(risk, labels.times[test_idx], labels.events[test_idx])
    return info, risk[:, None]


def evaluate_slides(
    features_dir: str | Path,
    labels_csv: str | Path,
    config: SlideEvalConfig | None = None,
    *,
    label_column: str = "label",
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Cross-validated slide classification or survival from per-slide feature bags.

    Args:
        features_dir: ``{slide_id}.h5`` feature files (CLAM/TRIDENT/rankbygene layout).
        labels_csv: slide labels (see the module docstring).
        config: settings; the task's paper defaults fill unset fields.
        label_column: classification label column.
        out: if given, write ``results.json``, ``results.md`` and ``predictions.csv``.

    Returns:
        The results dict: ``task``, ``metric`` (``auc`` | ``c_index``), ``summary``
        (metric → mean/std/n over folds), ``folds`` (per-fold scores and losses),
        ``classes``, ``n_slides``, ``n_cases``, ``features``, ``config``.
    """
    cfg = (config or SlideEvalConfig()).resolved()
    labels = read_slide_labels(labels_csv, cfg.task, label_column)
    bags = SlideBags(features_dir, labels.slide_ids)
    folds = slide_folds(labels, cfg.folds, cfg.seed)
    metric = "auc" if cfg.task == "classification" else "c_index"
    fold_info, rows = [], []
    for fold, (train_idx, test_idx) in enumerate(folds):
        info, outputs = _run_fold(fold, train_idx, test_idx, bags, labels, cfg)
        logger.info("fold %d/%d: %s %.4f", fold + 1, cfg.folds, metric, info[metric])
        fold_info.append(info)
        rows.append(_prediction_rows(fold, test_idx, outputs, labels))
    summary = {metric: mean_std([f[metric] for f in fold_info])}
    if cfg.task == "classification":
        summary["accuracy"] = mean_std([f["accuracy"] for f in fold_info])
    results = {
        "task": cfg.task,
        "metric": metric,
        "summary": summary,
        "folds": fold_info,
        "classes": labels.classes or [],
        "n_slides": len(labels.slide_ids),
        "n_cases": len(np.unique(labels.case_ids)),
        "features": {"dir": str(features_dir), **_encoder_of(features_dir)},
        "config": asdict(cfg),
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / keys.RESULTS_JSON, json.dumps(results, indent=2) + "\n")
        write_text_atomic(out / keys.RESULTS_MD, slides_markdown(results))
        write_text_atomic(out / PREDICTIONS_CSV, pd.concat(rows).to_csv(index=False))
        logger.info("wrote %s", out / keys.RESULTS_JSON)
    return results


def _prediction_rows(
    fold: int, test_idx: np.ndarray, outputs: np.ndarray, labels: SlideLabels
) -> pd.DataFrame:
    """One row per test slide: ids, fold, truth and the model's output."""
    frame = pd.DataFrame(
        {"slide_id": labels.slide_ids[test_idx], "case_id": labels.case_ids[test_idx]}
    )
    frame["fold"] = fold
    if labels.labels is not None:
        frame["label"] = np.asarray(labels.classes)[labels.labels[test_idx]]
        for c, name in enumerate(labels.classes or []):
            frame[f"prob_{name}"] = outputs[:, c]
    else:
        frame["time"], frame["event"] = labels.times[test_idx], labels.events[test_idx]
        frame["risk"] = outputs[:, 0]
    return frame


def _encoder_of(features_dir: str | Path) -> dict[str, Any]:
    """The encoder named in ``features.json`` (rankbygene extract), if any."""
    summary = read_summary(features_dir)
    return {"encoder": summary.get("encoder")} if summary.get("encoder") else {}


def slides_markdown(results: dict[str, Any]) -> str:
    """A short Markdown report: summary line and one row per fold."""
    metric = results["metric"]
    s = results["summary"][metric]
    name = {"auc": "AUC", "c_index": "C-index"}[metric]
    lines = [
        f"# Slide {results['task']}: {name} {s['mean']:.3f} ± {s['std']:.3f}",
        "",
        f"{results['n_slides']} slides from {results['n_cases']} cases; "
        f"{len(results['folds'])}-fold cross-validation grouped by case; gated-attention "
        f"ABMIL ({results['config']['optimizer']}, lr {results['config']['lr']:g}, "
        f"{results['config']['epochs']} epochs).",
        "",
        f"| fold | train slides | test slides | {name} |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {f['fold'] + 1} | {f['n_train']} | {f['n_test']} | {f[metric]:.3f} |"
        for f in results["folds"]
    ]
    return "\n".join(lines) + "\n"
