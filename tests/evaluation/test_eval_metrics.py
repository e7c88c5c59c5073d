"""gene_metrics / pearson_per_gene against scipy and hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr

from rankbygene.evaluation import gene_metrics, mean_std, pearson_per_gene
from rankbygene.evaluation.metrics import summarise_metrics


def test_pearson_matches_scipy_per_gene() -> None:
    rng = np.random.default_rng(0)
    true = rng.normal(size=(40, 7))
    pred = 0.5 * true + rng.normal(size=(40, 7))
    r = pearson_per_gene(pred, true)
    expected = [pearsonr(pred[:, g], true[:, g]).statistic for g in range(7)]
    np.testing.assert_allclose(r, expected, rtol=1e-10, atol=1e-12)


def test_gene_metrics_values_and_constant_genes() -> None:
    rng = np.random.default_rng(1)
    true = rng.normal(size=(30, 5))
    pred = true + rng.normal(scale=0.3, size=(30, 5))
    true[:, 1] = 2.0  # constant in the truth
    pred[:, 3] = -1.0  # constant in the prediction
    m = gene_metrics(pred, true)
    assert m["n_genes_excluded"] == 2
    assert m["n_genes"] == 5 and m["n_spots"] == 30
    assert np.isnan(m["pcc_per_gene"][[1, 3]]).all()
    kept = [0, 2, 4]
    ref = np.mean([pearsonr(pred[:, g], true[:, g]).statistic for g in kept])
    assert m["pcc"] == pytest.approx(ref, rel=1e-10)
    # MSE / MAE over all spots x genes, constant genes included.
    assert m["mse"] == pytest.approx(np.mean((pred - true) ** 2))
    assert m["mae"] == pytest.approx(np.mean(np.abs(pred - true)))


def test_gene_metrics_perfect_and_anti_correlation() -> None:
    true = np.arange(12, dtype=float).reshape(6, 2)
    assert gene_metrics(true, true)["pcc"] == pytest.approx(1.0)
    assert gene_metrics(-true, true)["pcc"] == pytest.approx(-1.0)
    assert gene_metrics(true, true)["mse"] == 0.0


def test_gene_metrics_accepts_torch_and_1d() -> None:
    t = torch.tensor([1.0, 2.0, 3.0, 5.0])
    m = gene_metrics(t * 2 + 1, t)
    assert m["pcc"] == pytest.approx(1.0) and m["n_genes"] == 1


def test_all_genes_constant_gives_nan_pcc() -> None:
    m = gene_metrics(np.ones((4, 3)), np.zeros((4, 3)))
    assert np.isnan(m["pcc"]) and m["n_genes_excluded"] == 3 and m["mse"] == 1.0


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="same shape"):
        gene_metrics(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="at least 2 spots"):
        gene_metrics(np.zeros((1, 2)), np.zeros((1, 2)))


def test_mean_std_and_summary() -> None:
    assert mean_std([1.0, 3.0, float("nan")]) == {"mean": 2.0, "std": 1.0, "n": 2}
    s = summarise_metrics(
        [{"pcc": 0.1, "mse": 1.0, "mae": 2.0}, {"pcc": 0.3, "mse": 3.0, "mae": 2.0}]
    )
    assert s["pcc"]["mean"] == pytest.approx(0.2) and s["mse"]["std"] == pytest.approx(1.0)
    assert s["mae"]["std"] == 0.0
