"""Compare training variants on one split: train, extract, evaluate, tabulate.

A *variant* is one row of a comparison table: the frozen initialisation (no
training), or a training method with config overrides (an ablation is a variant with
other λ). Every variant starts from the same saved initial weights, so differences
come from the training alone. Used by ``rankbygene demo`` and the her2st experiment.

Layout under ``out``::

    init/                          shared initial encoder
    runs/{variant}/                training runs
    features/{variant}/            features of every sample of the split
    eval/{panel}/{variant}/        gene-prediction results per panel; methods with a
                                   predictor of their own add a row for it: BLEEP's
                                   ``{variant}-retrieval``, ST-Net's ``{variant}-head``
                                   (on the panel it was trained on)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np

from rankbygene import keys
from rankbygene.data import read_dataset
from rankbygene.evaluation.genes import GeneEvalConfig, evaluate_genes
from rankbygene.evaluation.head_run import evaluate_head
from rankbygene.evaluation.position_run import evaluate_position_baseline
from rankbygene.evaluation.retrieval_run import evaluate_retrieval
from rankbygene.features.extract import extract_features
from rankbygene.methods import get_method
from rankbygene.methods.histogene import extract_histogene_features
from rankbygene.models import create_encoder, save_encoder
from rankbygene.training import TrainConfig, load_run_encoder, train
from rankbygene.training.run import HEADS_CARD

logger = logging.getLogger(__name__)

FROZEN = "frozen"


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


COMPARED_METHODS: tuple[str, ...] = ("stnet", "histogene", "hest-ft", "bleep", "rankbygene")
"""The trained systems every comparison runs (METHOD.md §6), beside the frozen encoder."""


POSITION_ONLY = "position-only"
OWN_PREDICTOR_NOTES: dict[str, str] = {
    POSITION_ONLY: "`position-only`: no image; each spot gets the mean expression of the 10 "
    "training spots nearest to its array position. Serial sections of one tumour share "
    "their layout, so position alone predicts expression across them: read every row "
    "against it, HisToGene's above all (it embeds array positions).",
    "-retrieval": "`*-retrieval`: BLEEP's own predictor (average expression of the 50 training "
    "spots whose gene embeddings are closest to the spot's image embedding); no probe, so its "
    "± is across test samples.",
    "-head": "`*-head`: the method's own prediction (ST-Net: its linear head on the spot's "
    "image features; HisToGene: its transformer over the whole section), scored on the panel "
    "it was trained on (the same rule, top-N, applied to its training samples); no probe, so "
    "its ± is across test samples. The `stnet`/`histogene` rows probe their spot features.",
}
"""Row-name suffix of a method's own predictor → the sentence that explains that row."""


def own_predictor_notes(row_names: Sequence[str]) -> list[str]:
    """The explanatory sentences for the special rows present among ``row_names``."""
    return [
        note
        for suffix, note in OWN_PREDICTOR_NOTES.items()
        if any(name.endswith(suffix) for name in row_names)
    ]


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


def save_initialisation(encoder: str, out: Path, seed: int, weights: str | None = None) -> Path:
    """Build the encoder once (seeded, or from ``weights``) and save it; returns the file."""
    L.seed_everything(seed, verbose=False)
    path = out / keys.ENCODER_WEIGHTS
    if not path.exists():
        save_encoder(create_encoder(encoder, weights=weights), out, note="shared initialisation")
    return path


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

    Finished runs, features and evaluations are reused, so an interrupted
    comparison continues where it stopped.

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
        ``{panel: {variant: results dict of evaluate_genes}}``.
    """
    out = Path(out)
    dataset = read_dataset(data)
    ids = sorted({*train_ids, *test_ids})
    features: dict[str, Path] = {}
    # Methods with a predictor of their own get a row for it too: BLEEP's retrieval,
    # ST-Net's and HisToGene's expression heads. Row name -> (kind, run, features' variant).
    own_predictors: dict[str, tuple[str, Path, str]] = {}
    for variant in variants:
        feats = out / "features" / variant.name
        if variant.method is None:
            encoder = create_encoder(train_settings.encoder, weights=str(init_weights))
            source = None
        else:
            run_dir = out / "runs" / variant.name
            if not (run_dir / HEADS_CARD).exists():  # written last: the run finished
                config = train_settings.updated(
                    data=str(data),
                    out=str(run_dir),
                    method=variant.method,
                    weights=str(init_weights),
                    train_samples=list(train_ids),
                    **dict(variant.overrides),
                )
                train(config)
            source = str(run_dir)
            method = get_method(variant.method)
            if variant.method == "bleep":
                own_predictors[f"{variant.name}-retrieval"] = ("retrieval", run_dir, variant.name)
            if method.predicts_expression:
                own_predictors[f"{variant.name}-head"] = ("head", run_dir, variant.name)
            if method.whole_section:  # its spot features need the whole section
                extract_histogene_features(run_dir, dataset, feats, sample_ids=ids)
                features[variant.name] = feats
                continue
            encoder = load_run_encoder(run_dir)
        extract_features(dataset, encoder, feats, sample_ids=ids, source_run=source)
        features[variant.name] = feats

    results: dict[str, dict[str, dict[str, Any]]] = {}
    for panel_name, eval_config in panels.items():
        results[panel_name] = {}
        for name, feats in features.items():
            eval_dir = out / "eval" / panel_name / name
            results[panel_name][name] = evaluate_genes(
                dataset,
                feats,
                list(train_ids),
                list(test_ids),
                config=eval_config,
                out=eval_dir,
            )
        for name, (kind, run_dir, base) in own_predictors.items():
            args = (dataset, run_dir, features[base], list(train_ids), list(test_ids))
            eval_dir = out / "eval" / panel_name / name
            if kind == "retrieval":
                results[panel_name][name] = evaluate_retrieval(
                    *args, config=eval_config, out=eval_dir
                )
                continue
            head_config = _head_panel(run_dir, eval_config)
            if head_config is None:
                logger.info("%s: no row for panel %s (not its training panel)", name, panel_name)
                continue
            results[panel_name][name] = evaluate_head(*args, config=head_config, out=eval_dir)
        if position_baseline:
            results[panel_name][POSITION_ONLY] = evaluate_position_baseline(
                dataset,
                list(train_ids),
                list(test_ids),
                config=eval_config,
                out=out / "eval" / panel_name / POSITION_ONLY,
            )
    return results


def _head_panel(run_dir: Path, eval_config: GeneEvalConfig) -> GeneEvalConfig | None:
    """Evaluation settings for a run's expression head: its own training panel (the genes
    in ``genes.txt``, chosen on the run's training samples) when the evaluation asks for
    the same panel spec, else None (the head predicts no other gene)."""
    run_cfg = TrainConfig.from_yaml(run_dir / keys.RUN_CONFIG)
    if (run_cfg.panel, run_cfg.gene_list) != (eval_config.panel, eval_config.gene_list):
        return None
    return replace(eval_config, panel=str(run_dir / keys.RUN_GENES), gene_list=None)


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
    """``| variant | PCC | MSE | MAE |`` rows with mean ± std."""
    lines = ["| variant | PCC | MSE | MAE |", "| --- | --- | --- | --- |"]
    for name, stats in rows.items():
        cells = [_cell(stats[m]) for m in ("pcc", "mse", "mae")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _cell(stat: Mapping[str, Any]) -> str:
    """``mean ± std``, or ``n/a`` when undefined (e.g. PCC of constant predictions)."""
    mean, std = stat.get("mean"), stat.get("std")
    if mean is None or not np.isfinite(mean):
        return "n/a"
    return f"{mean:.3f} ± {std or 0.0:.3f}"
