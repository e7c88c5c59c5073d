"""Position-only baseline: a spot's expression from its array coordinates alone.

Each test spot gets the mean expression of the k training spots nearest to its
(column, row) array position, ignoring the image. Across patients this carries no
information; across serial sections of one tumour (leave-one-section-out on her2st)
the tissue layout repeats and position alone predicts expression, so any method that
sees positions (HisToGene) must be read against this row.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
from sklearn.neighbors import KNeighborsRegressor

from rankbygene.evaluation.predictors.base import Predictor, SpotSet
from rankbygene.evaluation.predictors.settings import PositionSettings

__all__ = ["PositionPredictor"]


class PositionPredictor(Predictor):
    """k-nearest training spots in array coordinates (a single member; reads no features)."""

    name = "position"
    reads_features = False

    def __init__(self, settings: PositionSettings | None = None) -> None:
        self.config = settings or PositionSettings()
        if self.config.k < 1:
            raise ValueError(f"k must be >= 1; got {self.config.k}.")
        self.model: KNeighborsRegressor | None = None

    @staticmethod
    def _positions(spots: SpotSet) -> np.ndarray:
        if spots.positions is None:
            raise ValueError("The position baseline needs array coordinates (obs array_row/col).")
        return spots.positions

    def fit(self, train: SpotSet, genes: list[str]) -> None:
        k = min(self.config.k, len(train))
        self.model = KNeighborsRegressor(n_neighbors=k).fit(self._positions(train), train.targets)

    def predict(self, spots: SpotSet) -> list[np.ndarray]:
        if self.model is None:
            raise RuntimeError("fit the position baseline before predicting.")
        return [self.model.predict(self._positions(spots)).astype(np.float32)]

    def settings(self) -> dict[str, Any]:
        return asdict(self.config)

    def members(self) -> list[dict[str, Any]]:
        k = self.model.n_neighbors if self.model is not None else self.config.k
        return [{"fold": 0, "k": int(k)}]
