"""Compare training variants on one split: train, extract, evaluate, tabulate.

A *variant* is one row of a comparison table: the frozen initialisation (no
training), or a training method with config overrides (an ablation is a variant with
other λ). Every variant starts from the same saved initial weights, so differences
come from the training alone. Used by ``rankbygene demo`` and the her2st experiment.

Layout under ``out`` (names in :mod:`rankbygene.keys`)::

    init/                          shared initial encoder
    pretrain/                      or a pretraining run on the training samples, whose
                                   encoder is then the shared initialisation
    runs/{variant}/                training runs
    features/{variant}/            features of every sample of the split
    eval/{panel}/{row}/            gene-prediction results per panel: one row per variant
                                   (MLP probe on its features), and one per predictor its
                                   method declares (``{variant}-retrieval`` for BLEEP,
                                   ``{variant}-head`` for ST-Net and HisToGene), scored on
                                   the run's own panel, in the table of the panel spec it
                                   was trained on
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from rankbygene import keys
from rankbygene.data import read_dataset
from rankbygene.evaluation.genes.config import GeneEvalConfig
from rankbygene.evaluation.genes.evaluate import evaluate_genes
from rankbygene.evaluation.predictors.settings import PositionSettings, RetrievalSettings
from rankbygene.experiments.settings import COMPARED_METHODS
from rankbygene.features.extract import extract_features
from rankbygene.features.runs import extract_run_features
from rankbygene.fileio import json_safe, write_json
from rankbygene.models import create_encoder, save_encoder
from rankbygene.pretraining.config import PretrainConfig
from rankbygene.pretraining.run import pretrain
from rankbygene.text import format_mean_std
from rankbygene.training.artifacts import load_run
from rankbygene.training.config import TrainConfig
from rankbygene.training.run import train

logger = logging.getLogger(__name__)

FROZEN = "frozen"
JOB_DIRS = (
    keys.COMPARISON_DATA,
    keys.COMPARISON_INIT,
    keys.COMPARISON_RUNS,
    keys.COMPARISON_FEATURES,
    keys.COMPARISON_EVAL,
    keys.EXPERIMENT_FOLDS,
)
"""What a comparison job writes under its output directory (and ``--overwrite`` removes)."""


@dataclass(frozen=True)
class Variant:
    """One row of a comparison.

    Attributes:
        name: Row label and directory name.
        method: Training method, or None for the frozen initialisation.
        overrides: :class:`TrainConfig` fields that differ from the shared settings.
    """

    name: str
    method: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)


POSITION_ONLY = "position-only"
OWN_PREDICTOR_NOTES: dict[str, str] = {
    POSITION_ONLY: "`position-only`: no image; each spot gets the mean expression of the "
    f"{PositionSettings().k} training spots nearest to its array position. Serial sections "
    "of one tumour share their layout, so position alone predicts expression across them: "
    "read every row against it, HisToGene's above all (it embeds array positions).",
    "-retrieval": "`*-retrieval`: BLEEP's own predictor (average expression of the "
    f"{RetrievalSettings().k} training spots whose gene embeddings are closest to the spot's "
    "image embedding).",
    "-head": "`*-head`: the method's own prediction (ST-Net: its linear head on the spot's "
    "image features; HisToGene: its transformer over the whole section). The `stnet`/"
    "`histogene` rows probe their spot features.",
}
"""Row-name suffix of a special row → the sentence that explains that row."""

OWN_PANEL_NOTE = (
    "A method's own predictor is scored on the panel its run was trained on (`genes.txt`: "
    "the same panel rule, applied to the run's training samples without its validation "
    "hold-out); it is one model, so its ± is across test samples."
)


def own_predictor_notes(row_names: Sequence[str]) -> list[str]:
    """The explanatory sentences for the special rows present among ``row_names``."""
    notes = [
        note
        for suffix, note in OWN_PREDICTOR_NOTES.items()
        if any(name.endswith(suffix) for name in row_names)
    ]
    if any(name.endswith(("-retrieval", "-head")) for name in row_names):
        notes.append(OWN_PANEL_NOTE)
    return notes


CPU_SCALE_OVERRIDES: dict[str, dict[str, Any]] = {
    "histogene": {"extra": {"dim": 256, "depth": 4, "heads": 8, "patch_px": 32}},
}
"""Per-method settings of the CPU-scale comparisons (the demo, her2st on a CPU): HisToGene
at the paper's size (width 1024, depth 8, 112 px) would dominate their run time."""


def standard_variants(
    methods: Sequence[str] = COMPARED_METHODS,
    overrides: Mapping[str, Mapping[str, Any]] = CPU_SCALE_OVERRIDES,
) -> list[Variant]:
    """The frozen initialisation followed by each method (its defaults + ``overrides``)."""
    return [Variant(FROZEN), *(Variant(m, m, dict(overrides.get(m, {}))) for m in methods)]


def ablation_variants() -> list[Variant]:
    """RankByGene with λ1 ∈ {0, 5} × λ2 ∈ {0, 1} (the paper's Table 3c)."""
    return [
        Variant(
            f"rankbygene-l1_{l1:g}-l2_{l2:g}", "rankbygene", {"lambda_rank": l1, "lambda_dist": l2}
        )
        for l1 in (0.0, 5.0)
        for l2 in (0.0, 1.0)
    ]


def fix_threads(threads: int) -> None:
    """Run torch with a fixed number of intra-op threads and deterministic algorithms.

    The thread count decides how float sums are split, so it changes results; fixing it
    (rather than inheriting the machine's or ``OMP_NUM_THREADS``) makes a comparison give
    the same numbers on every run on one machine. Across machines CPU kernels may still
    round differently.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1; got {threads}.")
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def check_same_settings(out: Path, settings: Mapping[str, Any], overwrite: bool) -> None:
    """Refuse to continue a comparison directory made with other settings.

    A multi-run job reuses what it finds (data, finished runs, features) so that an
    interrupted one resumes; reusing the outputs of *other* settings would mix results
    silently. The settings are recorded in ``out/job.json``; with ``overwrite`` the
    job's own sub-directories are removed and it starts afresh.

    Raises:
        ValueError: ``out`` holds a job with other settings, naming the differences.
    """
    path = out / keys.JOB_SETTINGS
    wanted = json_safe(dict(settings))
    if overwrite:
        for name in JOB_DIRS:
            shutil.rmtree(out / name, ignore_errors=True)
        path.unlink(missing_ok=True)
    elif path.is_file():
        saved = json.loads(path.read_text())
        differ = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
        if differ:
            raise ValueError(
                f"{out} holds a run of other settings ({', '.join(differ)} differ); its "
                "finished parts would be reused and mixed in. Use another --out, or "
                "--overwrite to start afresh."
            )
    elif out.is_dir() and any((out / name).exists() for name in JOB_DIRS):
        raise ValueError(
            f"{out} holds outputs of an earlier run that recorded no settings; use another "
            "--out, or --overwrite to start afresh."
        )
    write_json(path, wanted)


def save_initialisation(
    encoder: str,
    out: Path,
    seed: int,
    weights: str | None = None,
    *,
    random_init: bool = False,
) -> Path:
    """Build the encoder once (seeded, or from ``weights``) and save it; returns the file.

    Raises:
        ValueError: no ``weights`` for an encoder worth its pretraining (uni,
            ctranspath) without ``random_init``.
    """
    L.seed_everything(seed, verbose=False)
    path = out / keys.ENCODER_WEIGHTS
    if not path.exists():
        net = create_encoder(encoder, weights=weights, random_init=random_init)
        save_encoder(net, out, note="shared initialisation")
    return path


def pretrained_initialisation(
    data: str | Path, train_ids: Sequence[str], out: Path, settings: PretrainConfig
) -> Path:
    """Pretrain on the training samples' patches only; returns the encoder weights file.

    The held-out samples' images are never seen: the run's tiles are taken from
    ``train_ids`` (its ``tiles.json`` records them). A finished run in ``out`` is
    reused; an unfinished one starts again.
    """
    weights = out / keys.RUN_ENCODER_DIR / keys.ENCODER_WEIGHTS
    if not (out / keys.RUN_ENCODER_DIR / keys.ENCODER_CARD).is_file():
        config = settings.updated(images=str(data), out=str(out), samples=list(train_ids))
        pretrain(config, overwrite=out.exists())
    return weights


def _train_variant(
    variant: Variant,
    run_dir: Path,
    data: str | Path,
    train_ids: Sequence[str],
    settings: TrainConfig,
    init_weights: Path,
) -> None:
    """Train one variant from the shared initialisation, unless its run already finished."""
    if (run_dir / keys.RUN_HEADS_CARD).exists():  # written last: the run finished
        return
    config = settings.updated(
        data=str(data),
        out=str(run_dir),
        method=variant.method,
        weights=str(init_weights),
        train_samples=list(train_ids),
        **dict(variant.overrides),
    )
    train(config)


def run_comparison(
    data: str | Path,
    train_ids: Sequence[str],
    test_ids: Sequence[str],
    variants: Sequence[Variant],
    *,
    out: str | Path,
    train_settings: TrainConfig,
    panels: Mapping[str, GeneEvalConfig],
    init_weights: Path,
    position_baseline: bool = False,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Train every variant on ``train_ids``, evaluate on ``test_ids``.

    Finished runs and features are reused, so an interrupted comparison continues
    where it stopped; the evaluations are recomputed (they are quick) and replace the
    previous ones.

    Args:
        data: Dataset directory.
        train_ids: Samples for alignment training and the probe's training folds.
        test_ids: Held-out samples.
        variants: Rows of the table.
        out: Output directory of this split.
        train_settings: Shared training settings (``data``/``out``/``method`` are set here).
        panels: Named evaluation settings, e.g. ``{"top250": GeneEvalConfig(...)}``.
        init_weights: The shared initial encoder weights.
        position_baseline: Add the ``position-only`` row (expression of the nearest
            training spots in array coordinates, no image).

    Returns:
        ``{panel: {row: results dict of evaluate_genes}}``.
    """
    out = Path(out)
    dataset = read_dataset(data)
    ids = sorted({*train_ids, *test_ids})
    features: dict[str, Path] = {}
    # Row name -> (predictor, run directory, features' variant) of the methods' own predictors.
    own_predictors: dict[str, tuple[str, Path, str]] = {}
    for variant in variants:
        feats = out / keys.COMPARISON_FEATURES / variant.name
        features[variant.name] = feats
        if variant.method is None:
            encoder = create_encoder(train_settings.encoder, weights=str(init_weights))
            extract_features(dataset, encoder, feats, sample_ids=ids)
            continue
        run_dir = out / keys.COMPARISON_RUNS / variant.name
        _train_variant(variant, run_dir, data, train_ids, train_settings, init_weights)
        run = load_run(run_dir)
        for predictor in run.method.predictors:
            own_predictors[f"{variant.name}-{predictor}"] = (predictor, run_dir, variant.name)
        extract_run_features(run_dir, dataset, feats, sample_ids=ids)

    results: dict[str, dict[str, dict[str, Any]]] = {}
    for panel_name, eval_config in panels.items():
        rows: dict[str, dict[str, Any]] = {}
        eval_root = out / keys.COMPARISON_EVAL / panel_name
        for name, feats in features.items():
            rows[name] = evaluate_genes(
                dataset,
                feats,
                train_ids,
                test_ids,
                config=eval_config,
                out=eval_root / name,
                overwrite=True,  # evaluations are recomputed from the kept runs and features
            )
        for name, (predictor, run_dir, base) in own_predictors.items():
            if not _trained_on(run_dir, eval_config):
                logger.info("%s: no row for panel %s (not its training panel)", name, panel_name)
                continue
            own = replace(eval_config, probe=predictor, run=str(run_dir))
            rows[name] = evaluate_genes(
                dataset,
                features[base],
                train_ids,
                test_ids,
                config=own,
                out=eval_root / name,
                overwrite=True,
            )
        if position_baseline:
            rows[POSITION_ONLY] = evaluate_genes(
                dataset,
                None,
                train_ids,
                test_ids,
                config=replace(eval_config, probe="position"),
                out=eval_root / POSITION_ONLY,
                overwrite=True,
            )
        results[panel_name] = rows
    return results


def _trained_on(run_dir: Path, eval_config: GeneEvalConfig) -> bool:
    """Whether the run was trained on the panel spec this table evaluates: a run's own
    predictor is scored on its own panel (``genes.txt``), so its row belongs only in the
    table of the same spec (the same rule applied to its training samples)."""
    run_cfg = load_run(run_dir).config
    return (run_cfg.panel, run_cfg.gene_list) == (eval_config.panel, eval_config.gene_list)


def summarise_folds(
    per_fold: Sequence[Mapping[str, Mapping[str, Mapping[str, Any]]]],
) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """Average fold results: ``{panel: {variant: {metric: {"mean", "std", "folds"}}}}``.

    Each fold contributes its mean over the probe's fold models; the std is across
    the outer folds (one held-out section or patient each).
    """
    table: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for panel in per_fold[0]:
        table[panel] = {}
        for variant in per_fold[0][panel]:
            table[panel][variant] = {}
            for metric in ("pcc", "mse", "mae"):
                values = np.array(
                    [fold[panel][variant]["summary"][metric]["mean"] for fold in per_fold],
                    dtype=float,  # None (undefined PCC) becomes NaN
                )
                defined = np.isfinite(values).all()
                table[panel][variant][metric] = {
                    "mean": float(values.mean()) if defined else None,
                    "std": float(values.std(ddof=0)) if defined else None,
                    "folds": [float(v) if np.isfinite(v) else None for v in values],
                }
    return table


def markdown_table(rows: Mapping[str, Mapping[str, Mapping[str, float]]]) -> list[str]:
    """``| variant | PCC | MSE | MAE |`` rows with mean ± std (``n/a`` when undefined)."""
    lines = ["| variant | PCC | MSE | MAE |", "| --- | --- | --- | --- |"]
    for name, stats in rows.items():
        cells = [format_mean_std(stats[m]) for m in ("pcc", "mse", "mae")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines
