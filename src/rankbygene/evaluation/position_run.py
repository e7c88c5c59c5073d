"""Position-only baseline: predict a spot's expression from its array coordinates alone.

Each test spot gets the mean expression of the k training spots nearest to its
(column, row) array position, ignoring the image. Across patients this carries no
information; across serial sections of one tumour (leave-one-section-out on her2st)
the tissue layout repeats and position alone predicts expression, so any method that
sees positions (HisToGene) must be read against this row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.neighbors import KNeighborsRegressor

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

__all__ = ["evaluate_position_baseline", "run_position_evaluation"]

PROBE_NAME = "position"


@dataclass(frozen=True)
class PositionSettings:
    """Neighbours averaged per test spot (recorded under ``probes.position.config``)."""

    k: int = 10


def _array_positions(adata: Any, sample_id: str) -> np.ndarray:
    """(N, 2) float (column, row) array coordinates of a sample's spots."""
    columns = [keys.OBS_ARRAY_COL, keys.OBS_ARRAY_ROW]
    if not set(columns) <= set(adata.obs):
        raise ValueError(f"Sample {sample_id} has no array coordinates (obs {columns}).")
    return adata.obs[columns].to_numpy(dtype=np.float64)


def run_position_evaluation(
    dataset: STDataset | str | Path,
    train_ids: str | Sequence[str],
    test_ids: str | Sequence[str],
    config: GeneEvalConfig | None = None,
    *,
    k: int = 10,
) -> GeneEvaluation:
    """Score the position-only predictor on the test samples (no features are read).

    Split checks, panel and targets are those of ``evaluate_genes``.
    """
    config = config or GeneEvalConfig()
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}.")
    inp = _load_inputs(dataset, None, train_ids, test_ids, config)
    positions = {s: _array_positions(inp.adatas[s], s) for s in inp.train + inp.test}
    reference = np.concatenate([positions[s] for s in inp.train])
    k = min(k, len(reference))
    model = KNeighborsRegressor(n_neighbors=k).fit(
        reference, np.concatenate([inp.expr[s] for s in inp.train])
    )
    preds = {s: model.predict(positions[s]).astype(np.float32) for s in inp.test}
    return single_predictor_evaluation(
        inp, preds, config, None, PROBE_NAME, PositionSettings(k), {"fold": 0}, {"k": k}
    )


def evaluate_position_baseline(
    dataset: STDataset | str | Path,
    train_ids: str | Sequence[str],
    test_ids: str | Sequence[str],
    *,
    config: GeneEvalConfig | None = None,
    k: int = 10,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate the position-only baseline; optionally write the outputs."""
    evaluation = run_position_evaluation(dataset, train_ids, test_ids, config, k=k)
    if out is not None:
        write_gene_evaluation(evaluation, out)
    return evaluation.results
