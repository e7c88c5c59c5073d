"""HEST-Benchmark's linear probe: StandardScaler → PCA → Ridge.

PCA keeps 256 components (capped by the number of training spots and the feature
dim); Ridge uses HEST's alpha ``100 / (n_components · n_genes)`` and solver ``lsqr``.
HEST fits without an intercept; as the PCA scores are centred this leaves the
coefficients (hence the PCC) unchanged but shifts predictions off the mean, so we fit
an intercept by default (``fit_intercept=False`` reproduces HEST exactly).

The fitted pipeline is linear end to end, so the predictor folds it into one affine map
``x @ W + b`` (float64) and predicts with that: evaluation and a saved predictor
(``rankbygene fit``) then compute the same numbers from the same two tensors.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from rankbygene.evaluation.predictors.base import (
    Predictor,
    PredictorState,
    SpotSet,
    require_tensors,
)
from rankbygene.evaluation.predictors.settings import RidgeProbeConfig

logger = logging.getLogger(__name__)

__all__ = ["RidgeProbePredictor", "affine_map", "fit_ridge_probe"]


def fit_ridge_probe(X: np.ndarray, Y: np.ndarray, config: RidgeProbeConfig) -> Pipeline:
    """Fit HEST's StandardScaler → PCA → Ridge probe.

    Args:
        X: training features.
        Y: training targets.
        config: probe settings.

    Returns:
        The fitted sklearn pipeline (``.predict(X_test)`` gives (M, G)).

    Shape:
        X: (N, D); Y: (N, G).
    """
    n_components = int(min(config.pca_dim, X.shape[0], X.shape[1]))
    alpha = config.alpha if config.alpha is not None else 100.0 / (n_components * Y.shape[1])
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("pca", PCA(n_components=n_components, random_state=config.seed)),
            (
                "ridge",
                Ridge(
                    alpha=alpha,
                    solver=config.solver,
                    fit_intercept=config.fit_intercept,
                    max_iter=config.max_iter,
                    random_state=config.seed,
                ),
            ),
        ]
    )
    pipe.fit(np.asarray(X, dtype=np.float32), np.asarray(Y, dtype=np.float32))
    logger.info("ridge probe: PCA %d components, alpha %.3g", n_components, alpha)
    return pipe


def affine_map(pipeline: Pipeline) -> tuple[np.ndarray, np.ndarray]:
    """The fitted scaler → PCA → ridge pipeline as one affine map ``x @ W + b``.

    With z = (x − m) / s, p = (z − μ) Cᵀ and y = p Aᵀ + c (scaler mean m and scale s,
    PCA mean μ and components C, ridge coefficients A and intercept c):
    W = (C / s)ᵀ Aᵀ and b = c − (m / s + μ) Cᵀ Aᵀ.

    Shape:
        returns W (D, G) and b (G,), float64.
    """
    scale, pca, ridge = (pipeline.named_steps[k] for k in ("scale", "pca", "ridge"))
    if getattr(pca, "whiten", False):
        raise ValueError("affine_map needs PCA without whitening.")
    components = np.asarray(pca.components_, dtype=np.float64)  # (k, D)
    coef = np.atleast_2d(np.asarray(ridge.coef_, dtype=np.float64))  # (G, k)
    s = np.asarray(scale.scale_, dtype=np.float64)
    m = np.asarray(scale.mean_, dtype=np.float64)
    projection = components.T @ coef.T  # (D, G) on standardised inputs
    weight = projection / s[:, None]
    offset = (m / s + np.asarray(pca.mean_, dtype=np.float64)) @ projection
    bias = np.broadcast_to(np.asarray(ridge.intercept_, dtype=np.float64), offset.shape) - offset
    return weight, np.ascontiguousarray(bias)


class RidgeProbePredictor(Predictor):
    """One fitted ridge pipeline (a single member), applied as its affine map."""

    name = "ridge"

    def __init__(self, config: RidgeProbeConfig | None = None) -> None:
        self.config = config or RidgeProbeConfig()
        self.weight: np.ndarray | None = None
        self.bias: np.ndarray | None = None
        self._members: list[dict[str, Any]] = []

    def fit(self, train: SpotSet, genes: list[str]) -> None:
        pipeline = fit_ridge_probe(train.require_features(self.name), train.targets, self.config)
        self.weight, self.bias = affine_map(pipeline)
        self._members = [
            {
                "fold": 0,
                "alpha": float(pipeline.named_steps["ridge"].alpha),
                "pca_components": int(pipeline.named_steps["pca"].n_components_),
            }
        ]

    def predict(self, spots: SpotSet) -> list[np.ndarray]:
        if self.weight is None or self.bias is None:
            raise RuntimeError("fit the ridge probe before predicting.")
        features = spots.require_features(self.name)
        if features.shape[1] != self.weight.shape[0]:
            raise ValueError(
                f"Features have dim {features.shape[1]} but the ridge probe was fitted on "
                f"dim {self.weight.shape[0]}: use features of the same encoder."
            )
        out = np.asarray(features, dtype=np.float64) @ self.weight + self.bias
        return [out.astype(np.float32)]

    def settings(self) -> dict[str, Any]:
        return asdict(self.config)

    def members(self) -> list[dict[str, Any]]:
        return list(self._members)

    def state(self) -> PredictorState:
        """The affine map (``weight`` (D, G), ``bias`` (G,), float64)."""
        if self.weight is None or self.bias is None:
            raise RuntimeError("fit the ridge probe before saving it.")
        tensors = {"weight": torch.from_numpy(self.weight), "bias": torch.from_numpy(self.bias)}
        return PredictorState(tensors, {"config": self.settings(), "members": self.members()})

    @classmethod
    def from_state(cls, state: PredictorState) -> RidgeProbePredictor:
        require_tensors(state, ["weight", "bias"], cls.name)
        predictor = cls(RidgeProbeConfig(**state.meta["config"]))
        predictor.weight = state.tensors["weight"].numpy().astype(np.float64, copy=False)
        predictor.bias = state.tensors["bias"].numpy().astype(np.float64, copy=False)
        predictor._members = list(state.meta.get("members", []))
        return predictor
