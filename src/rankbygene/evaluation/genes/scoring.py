"""Scoring a predictor's predictions on the test samples (docs/method.md §5).

Two labelled readings of the same predictions:
- ``per_sample_mean`` (the paper): PCC per gene across one sample's spots, mean over
  genes, then mean over test samples; MSE/MAE likewise;
- ``pooled`` (HEST-Benchmark): PCC per gene over all test spots pooled.
Each member model (the MLP probe's fold models) is scored on its own; ``summary`` is
mean ± std over the members. A predictor with one deterministic member (ridge, a run's
head, retrieval, position) has no spread over models, so its ``summary`` std is taken
across test samples instead. ``ensemble`` scores the members' mean prediction, which
is what ``predictions/{id}.h5ad`` stores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rankbygene.evaluation.metrics import SCALAR_METRICS, gene_metrics, summarise_metrics

__all__ = ["SINGLE_MEMBER_SPREAD", "score_members", "score_predictions"]

SINGLE_MEMBER_SPREAD = "test samples"
"""What the ± of a one-member predictor's summary is taken over."""


def _mean_ignoring_nan(values: Sequence[float]) -> float:
    """Mean over the finite values; NaN (without numpy's warning) when none is finite."""
    arr = np.asarray(values, dtype=float)
    finite = arr[np.isfinite(arr)]
    return float(finite.mean()) if finite.size else float("nan")


def score_predictions(
    preds: Mapping[str, np.ndarray], targets: Mapping[str, np.ndarray], genes: Sequence[str]
) -> dict[str, Any]:
    """Per-sample, per-sample-mean and pooled metrics of one set of predictions.

    Shape:
        preds[id], targets[id]: (N_id, G), G = len(genes).
    """
    per_sample = {}
    for sid, pred in preds.items():
        m = gene_metrics(pred, targets[sid])
        per_sample[sid] = {k: m[k] for k in (*SCALAR_METRICS, "n_spots", "n_genes_excluded")}
    ids = list(preds)
    pooled = gene_metrics(
        np.concatenate([preds[s] for s in ids]), np.concatenate([targets[s] for s in ids])
    )
    return {
        "per_sample": per_sample,
        "per_sample_mean": {
            k: _mean_ignoring_nan([per_sample[s][k] for s in ids]) for k in SCALAR_METRICS
        },
        "pooled": {k: pooled[k] for k in (*SCALAR_METRICS, "n_genes_excluded")},
        "pcc_per_gene_pooled": dict(zip(genes, pooled["pcc_per_gene"].tolist(), strict=True)),
    }


def score_members(
    member_preds: Sequence[Mapping[str, np.ndarray]],
    member_info: Sequence[Mapping[str, Any]],
    targets: Mapping[str, np.ndarray],
    genes: Sequence[str],
    settings: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Score each member and the ensemble; aggregate mean ± std (see the module docstring).

    Args:
        member_preds: per member model, sample id → prediction.
        member_info: per member, what it is (fold, best epoch...).
        targets: sample id → measured (preprocessed) expression.
        genes: the panel.
        settings: the predictor's settings, recorded as the block's ``config``.

    Returns:
        The predictor's results block and the ensemble prediction per sample.
    """
    folds = []
    for info, preds in zip(member_info, member_preds, strict=True):
        s = score_predictions(preds, targets, genes)
        folds.append({**info, **{k: s[k] for k in ("per_sample_mean", "pooled", "per_sample")}})
    test_ids = list(targets)
    ensemble_pred = {s: np.mean([mp[s] for mp in member_preds], axis=0) for s in test_ids}
    ens = score_predictions(ensemble_pred, targets, genes)
    per_sample = {}
    for sid in test_ids:
        per_sample[sid] = summarise_metrics([f["per_sample"][sid] for f in folds])
        per_sample[sid]["n_spots"] = len(targets[sid])
        per_sample[sid]["ensemble"] = ens["per_sample"][sid]
    if len(folds) == 1:
        summary = summarise_metrics([folds[0]["per_sample"][s] for s in test_ids])
    else:
        summary = summarise_metrics([f["per_sample_mean"] for f in folds])
    block = {
        "summary": summary,
        "summary_spread": SINGLE_MEMBER_SPREAD if len(folds) == 1 else "fold models",
        "pooled": summarise_metrics([f["pooled"] for f in folds]),
        "per_sample": per_sample,
        "folds": folds,
        "ensemble": {
            "per_sample_mean": ens["per_sample_mean"],
            "pooled": ens["pooled"],
            "pcc_per_gene_pooled": ens["pcc_per_gene_pooled"],
        },
        "config": dict(settings),
    }
    return block, ensemble_pred
