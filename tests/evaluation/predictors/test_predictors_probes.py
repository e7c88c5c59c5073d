"""MLP and ridge probes: fold selection, best-epoch keeping, fitting a linear signal."""

from __future__ import annotations

import numpy as np
import pytest

from rankbygene.evaluation.metrics import gene_metrics
from rankbygene.evaluation.predictors.mlp import (
    cross_fit_mlp,
    make_folds,
    select_best_epoch,
    train_mlp_probe,
)
from rankbygene.evaluation.predictors.ridge import fit_ridge_probe
from rankbygene.evaluation.predictors.settings import MLPProbeConfig, RidgeProbeConfig


def _linear_data(n: int = 400, d: int = 12, g: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32) * 3 + 5  # off-centre, scaled: tests z-scoring
    W = rng.normal(size=(d, g)).astype(np.float32) / 3
    Y = (X - 5) / 3 @ W + 0.1 * rng.normal(size=(n, g)).astype(np.float32)
    return X, Y


def test_select_best_epoch_injected_curve() -> None:
    assert select_best_epoch([0.9, 0.5, 0.4, 0.45, 0.41]) == 2
    assert select_best_epoch([0.3, 0.3, 0.5]) == 0  # first best on ties
    assert select_best_epoch([float("nan"), 0.7, 0.6]) == 2
    with pytest.raises(ValueError, match="No finite validation loss"):
        select_best_epoch([float("nan")])


def test_train_mlp_keeps_best_validation_epoch() -> None:
    X, Y = _linear_data()
    Y = Y + np.random.default_rng(1).normal(size=Y.shape).astype(np.float32)
    # Few noisy training spots, a wide layer and a large learning rate: the probe
    # overfits, so the validation curve turns up and the kept epoch is not the last.
    cfg = MLPProbeConfig(hidden_dims=(256,), dropout=0.0, lr=1e-2, epochs=15, batch_size=16)
    probe = train_mlp_probe(X[:40], Y[:40], X[300:], Y[300:], cfg)
    assert len(probe.val_losses) == 15 and len(probe.train_losses) == 15
    assert probe.best_epoch == int(np.argmin(probe.val_losses))
    assert probe.best_epoch < 14 and probe.val_losses[-1] > probe.best_val_loss
    kept_mse = float(np.mean((probe.predict(X[300:]) - Y[300:]) ** 2))
    assert kept_mse == pytest.approx(probe.best_val_loss, rel=1e-4)


def test_make_folds_spots_and_samples() -> None:
    folds = make_folds(23, 5, seed=0)
    assert len(folds) == 5
    val = np.concatenate([va for _, va in folds])
    assert sorted(val.tolist()) == list(range(23))
    for tr, va in folds:
        assert not set(tr) & set(va)
    groups = np.repeat(["a", "b", "c"], [5, 6, 7])
    for tr, va in make_folds(18, 3, unit="samples", groups=groups):
        assert not set(groups[tr]) & set(groups[va])
    with pytest.raises(ValueError, match="at least 4 training samples"):
        make_folds(18, 4, unit="samples", groups=groups)


def test_mlp_cross_fit_beats_mean_prediction() -> None:
    X, Y = _linear_data(n=500)
    cfg = MLPProbeConfig(hidden_dims=(64, 64), lr=3e-3, epochs=15, batch_size=64, folds=3)
    probes = cross_fit_mlp(X[:400], Y[:400], cfg)
    assert len(probes) == 3
    pred = np.mean([p.predict(X[400:]) for p in probes], axis=0)
    mse_mean = float(np.mean((Y[400:] - Y[:400].mean(0)) ** 2))
    m = gene_metrics(pred, Y[400:])
    assert m["mse"] < 0.3 * mse_mean
    assert m["pcc"] > 0.8


def test_ridge_probe_fits_linear_signal_and_caps_pca() -> None:
    X, Y = _linear_data(n=300)
    pipe = fit_ridge_probe(X[:200], Y[:200], RidgeProbeConfig(pca_dim=256))
    assert pipe.named_steps["pca"].n_components == 12  # capped by D
    assert pipe.named_steps["ridge"].alpha == pytest.approx(100 / (12 * 6))
    m = gene_metrics(pipe.predict(X[200:]), Y[200:])
    assert m["pcc"] > 0.95
    assert m["mse"] < 0.1 * float(np.mean((Y[200:] - Y[:200].mean(0)) ** 2))
