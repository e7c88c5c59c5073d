"""HEST-Benchmark's linear probe: StandardScaler → PCA → Ridge.

PCA keeps 256 components (capped by the number of training spots and the feature
dim); Ridge uses HEST's alpha ``100 / (n_components · n_genes)`` and solver ``lsqr``.
HEST fits without an intercept; as the PCA scores are centred this leaves the
coefficients (hence the PCC) unchanged but shifts predictions off the mean, so we fit
an intercept by default (``fit_intercept=False`` reproduces HEST exactly).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from rankbygene.evaluation.predictors.base import Predictor, SpotSet
from rankbygene.evaluation.predictors.settings import RidgeProbeConfig

logger = logging.getLogger(__name__)

__all__ = ["RidgeProbePredictor", "fit_ridge_probe"]


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


class RidgeProbePredictor(Predictor):
    """One fitted ridge pipeline (a single member)."""

    name = "ridge"

    def __init__(self, config: RidgeProbeConfig | None = None) -> None:
        self.config = config or RidgeProbeConfig()
        self.pipeline: Pipeline | None = None

    def fit(self, train: SpotSet, genes: list[str]) -> None:
        self.pipeline = fit_ridge_probe(
            train.require_features(self.name), train.targets, self.config
        )

    def predict(self, spots: SpotSet) -> list[np.ndarray]:
        if self.pipeline is None:
            raise RuntimeError("fit the ridge probe before predicting.")
        features = spots.require_features(self.name)
        return [self.pipeline.predict(features).astype(np.float32)]

    def settings(self) -> dict[str, Any]:
        return asdict(self.config)

    def members(self) -> list[dict[str, Any]]:
        if self.pipeline is None:
            return []
        return [
            {
                "fold": 0,
                "alpha": float(self.pipeline.named_steps["ridge"].alpha),
                "pca_components": int(self.pipeline.named_steps["pca"].n_components_),
            }
        ]
