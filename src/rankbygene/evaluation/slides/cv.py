"""Cross-validated slide classification (AUC) and survival (C-index) with gated ABMIL.

Input: a directory of per-slide feature files in the CLAM/TRIDENT layout
(``FEATS/{slide_id}.h5`` with a ``features`` (n_patches × D) dataset, as written by
CLAM, TRIDENT or ``rankbygene extract``) and a CSV of slide labels:

- ``slide_id`` (feature file stem), optional ``case_id`` (patient; defaults to the
  slide id; slides of one case always fall in the same fold);
- classification: a label column (``label`` by default, any values);
- survival: ``time`` and ``event`` (1 = observed), or MCAT's ``survival_months`` and
  ``censorship`` (1 = censored).

Protocol (docs/method.md §5): k-fold cross-validation grouped by case and stratified by
label (classification) or event (survival); gated-attention ABMIL trained per fold
(classification: Adam 1e-4, 200 epochs, cross-entropy; survival: SGD 2e-4, 20 epochs,
4 bins at quartiles of the training fold's uncensored times, discrete-time NLL);
test-fold AUC or C-index, mean ± std over folds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from torch import Tensor
from tqdm.auto import tqdm

from rankbygene import keys
from rankbygene.configs import override
from rankbygene.evaluation.metrics import mean_std
from rankbygene.evaluation.mil import (
    GatedAttentionMIL,
    concordance_index,
    discretise_times,
    risk_from_hazard_logits,
    survival_bin_edges,
    survival_nll_loss,
)
from rankbygene.evaluation.outputs import (
    SLIDE_EVAL_FILES,
    check_eval_directory,
    clear_eval_directory,
)
from rankbygene.evaluation.slides.config import SlideEvalConfig
from rankbygene.evaluation.slides.labels import SlideLabels, read_slide_labels
from rankbygene.features.bags import SlideBags
from rankbygene.features.io import read_summary
from rankbygene.fileio import json_safe, write_json, write_text_atomic
from rankbygene.text import format_mean_std

logger = logging.getLogger(__name__)

__all__ = ["evaluate_slides", "slide_folds", "slides_markdown"]


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
    label_column: str | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Cross-validated slide classification or survival from per-slide feature bags.

    Args:
        features_dir: ``{slide_id}.h5`` feature files (CLAM/TRIDENT/rankbygene layout).
        labels_csv: slide labels (see the module docstring).
        config: settings; the task's paper defaults fill unset fields.
        label_column: overrides ``config.label_column``.
        out: if given, write ``results.json``, ``results.md`` and ``predictions.csv``
            (:mod:`rankbygene.evaluation.outputs` says when an existing one is replaced).
        overwrite: replace a finished evaluation in ``out``.

    Returns:
        The results dict: ``task``, ``metric`` (``auc`` | ``c_index``), ``summary``
        (metric → mean/std/n over folds), ``folds`` (per-fold scores and losses),
        ``classes``, ``n_slides``, ``n_cases``, ``features``, ``config``.
    """
    cfg = override(config or SlideEvalConfig(), label_column=label_column).resolved()
    if out is not None:
        check_eval_directory(out, SLIDE_EVAL_FILES, overwrite=overwrite)
    labels = read_slide_labels(labels_csv, cfg.task, cfg.label_column)
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
    results = json_safe(results)  # an undefined AUC (a fold lacking a class) becomes null
    if out is not None:
        out = Path(out)
        clear_eval_directory(out, SLIDE_EVAL_FILES)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / keys.SLIDE_PREDICTIONS_CSV, pd.concat(rows).to_csv(index=False))
        write_text_atomic(out / keys.RESULTS_MD, slides_markdown(results))
        write_json(out / keys.RESULTS_JSON, results)  # last: its presence marks completion
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
        f"# Slide {results['task']}: {name} {format_mean_std(s)}",
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
        f"| {f['fold'] + 1} | {f['n_train']} | {f['n_test']} | {format_mean_std(f[metric])} |"
        for f in results["folds"]
    ]
    return "\n".join(lines) + "\n"
