"""Gene-expression prediction metrics (docs/method.md §5).

One sample's spots at a time: Pearson correlation per gene across spots, then the
mean over genes; MSE and MAE over spots × genes. Genes that are constant in the
truth or in the prediction have no defined correlation: they are excluded from the
mean and counted, never silently set to zero (HEST sets them to 0, which biases
the mean towards 0).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["gene_metrics", "mean_std", "pearson_per_gene", "summarise_metrics"]


def _as_2d_float(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a 2-D float64 array (torch CPU tensors and lists work too)."""
    if hasattr(x, "detach"):  # torch tensor: no gradients, on the CPU
        x = x.detach().cpu().float().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be (spots, genes); got shape {arr.shape}.")
    return arr


def pearson_per_gene(pred: Any, true: Any) -> np.ndarray:
    """Pearson correlation of each gene (column) across spots (rows).

    Vectorised: centre each column, scale to unit norm, one column-wise product.

    Args:
        pred: predicted expression.
        true: measured expression, same shape.

    Returns:
        Correlation per gene, NaN where the truth or the prediction is constant.

    Shape:
        pred, true: (N, G); output: (G,).
    """
    p = _as_2d_float(pred, "pred")
    t = _as_2d_float(true, "true")
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and true {t.shape} must have the same shape.")
    if p.shape[0] < 2:
        raise ValueError(f"Pearson correlation needs at least 2 spots; got {p.shape[0]}.")
    # Exact constancy test (every value equals the first) rather than a std threshold:
    # a column whose values differ only by float noise has a defined correlation.
    constant = (p == p[0]).all(axis=0) | (t == t[0]).all(axis=0)
    pc = p - p.mean(axis=0)
    tc = t - t.mean(axis=0)
    # einsum contracts over spots without materialising the (N, G) products.
    denom = np.sqrt(np.einsum("ng,ng->g", pc, pc) * np.einsum("ng,ng->g", tc, tc))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.einsum("ng,ng->g", pc, tc) / denom
    r[constant] = np.nan
    # Rounding can push |r| a hair above 1.
    return np.clip(r, -1.0, 1.0)


def gene_metrics(pred: Any, true: Any) -> dict[str, Any]:
    """Metrics of one sample's predicted expression against the measured one.

    Args:
        pred: predicted expression.
        true: measured (preprocessed) expression, same shape.

    Returns:
        ``{"pcc": mean PCC over the genes with a defined correlation (NaN if none),
        "mse", "mae": over spots × genes, "pcc_per_gene": (G,) array with NaN for
        excluded genes, "n_genes": G, "n_genes_excluded": genes constant in truth or
        prediction, "n_spots": N}``.

    Shape:
        pred, true: (N, G) (a 1-D input is one gene).
    """
    p = _as_2d_float(pred, "pred")
    t = _as_2d_float(true, "true")
    r = pearson_per_gene(p, t)
    n_excluded = int(np.isnan(r).sum())
    diff = p - t
    return {
        "pcc": float(np.nanmean(r)) if n_excluded < r.size else float("nan"),
        "mse": float(np.einsum("ng,ng->", diff, diff) / diff.size),
        "mae": float(np.mean(np.abs(diff))),
        "pcc_per_gene": r,
        "n_genes": int(r.size),
        "n_genes_excluded": n_excluded,
        "n_spots": int(p.shape[0]),
    }


def mean_std(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean and (population) standard deviation of finite values, as a JSON-ready dict.

    Args:
        values: e.g. one score per fold model.

    Returns:
        ``{"mean", "std", "n"}``; mean and std are NaN when no value is finite.
    """
    arr = np.asarray(values, dtype=np.float64).ravel()
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(arr.mean()), "std": float(arr.std()), "n": int(arr.size)}


SCALAR_METRICS: tuple[str, ...] = ("pcc", "mse", "mae")


def summarise_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean ± std of each scalar metric over rows (folds or samples).

    Args:
        rows: dicts holding at least ``pcc``, ``mse`` and ``mae``.

    Returns:
        ``{"pcc": {"mean", "std", "n"}, "mse": {...}, "mae": {...}}``.
    """
    return {key: mean_std([row[key] for row in rows]) for key in SCALAR_METRICS}
