"""A run's own expression predictions (ST-Net: image features → linear head → genes).

The run's image head maps each test spot's features (``rankbygene extract --run RUN``
output) to the run's panel genes; the evaluation panel (chosen on the training samples
as in ``evaluate_genes``) must be among them. One deterministic predictor, scored like
the retrieval predictor (``summary`` spread across test samples).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rankbygene import keys
from rankbygene.evaluation.genes import (
    GeneEvalConfig,
    GeneEvaluation,
    _load_inputs,
    single_predictor_evaluation,
    write_gene_evaluation,
)

if TYPE_CHECKING:
    from rankbygene.data import STDataset

logger = logging.getLogger(__name__)

__all__ = ["PanelMismatchError", "evaluate_head", "run_head_evaluation"]

PROBE_NAME = "head"


class PanelMismatchError(ValueError):
    """The evaluation panel holds genes the run's head does not predict."""


@dataclass(frozen=True)
class HeadSettings:
    """What the head predictor used (recorded under ``probes.head.config``)."""

    run: str


def run_head_evaluation(
    dataset: STDataset | str | Path,
    run_dir: str | Path,
    features_dir: str | Path,
    train_ids: str | Sequence[str],
    test_ids: str | Sequence[str],
    config: GeneEvalConfig | None = None,
) -> GeneEvaluation:
    """Score the expression head of an ST-Net-style run on the test samples.

    Raises:
        PanelMismatchError: evaluation-panel genes the run does not predict.
        ValueError: features that do not fit the head (extract them with the run).
    """
    from rankbygene.training import TrainConfig
    from rankbygene.training.run import load_run_expression_head

    config = config or GeneEvalConfig()
    run_dir, features_dir = Path(run_dir), Path(features_dir)
    head, run_genes = load_run_expression_head(run_dir)
    inp = _load_inputs(dataset, features_dir, train_ids, test_ids, config)
    dim = int(next(iter(inp.feats.values())).features.shape[1])
    if dim != head.in_features:
        raise ValueError(
            f"Features in {features_dir} have dim {dim} but the head of run {run_dir} expects "
            f"{head.in_features}: extract them with `rankbygene extract --run {run_dir}`."
        )
    position = {g: i for i, g in enumerate(run_genes)}
    missing = [g for g in inp.genes if g not in position]
    if missing:
        raise PanelMismatchError(
            f"Run {run_dir} predicts {len(run_genes)} genes ({run_dir / keys.RUN_GENES}); "
            f"{len(missing)} of the {len(inp.genes)} evaluation genes are not among them "
            f"(e.g. {', '.join(missing[:5])}). Evaluate on the run's panel."
        )
    run_cfg = TrainConfig.from_yaml(run_dir / keys.RUN_CONFIG)
    if (run_cfg.target_sum, run_cfg.smooth) != (config.target_sum, config.smooth):
        logger.warning(
            "run %s was trained on targets with target_sum=%g, smooth=%s; the evaluation uses "
            "%g, %s: MSE/MAE compare different scales (PCC is less affected)",
            run_dir, run_cfg.target_sum, run_cfg.smooth, config.target_sum, config.smooth,
        )  # fmt: skip
    columns = torch.as_tensor([position[g] for g in inp.genes])
    preds: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        for sid in inp.test:
            x = torch.as_tensor(inp.feats[sid].features, dtype=torch.float32)
            preds[sid] = head(x)[:, columns].numpy()
    extra: dict[str, Any] = {"run": str(run_dir.resolve()), "run_genes": len(run_genes)}
    settings = HeadSettings(str(run_dir.resolve()))
    return single_predictor_evaluation(
        inp, preds, config, features_dir, PROBE_NAME, settings, {"fold": 0}, extra
    )


def evaluate_head(
    dataset: STDataset | str | Path,
    run_dir: str | Path,
    features_dir: str | Path,
    train_ids: str | Sequence[str],
    test_ids: str | Sequence[str],
    *,
    config: GeneEvalConfig | None = None,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate a run's expression head; optionally write the outputs (as ``evaluate_genes``)."""
    evaluation = run_head_evaluation(dataset, run_dir, features_dir, train_ids, test_ids, config)
    if out is not None:
        write_gene_evaluation(evaluation, out)
    return evaluation.results
