"""A run's own expression head: features → the run's panel genes (ST-Net, HisToGene).

ST-Net's head is a linear layer on the backbone's features; HisToGene's is the linear
layer on the transformer's in-context spot features (``rankbygene extract --run RUN``
writes both). One deterministic member; the panel is the run's own (``genes.txt``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rankbygene.evaluation.predictors.base import Predictor, SpotSet, check_run_features
from rankbygene.training import TrainedRun

__all__ = ["HeadPredictor"]


class HeadPredictor(Predictor):
    """The expression head of a finished ST-Net or HisToGene run."""

    name = "head"

    def __init__(self, run: TrainedRun) -> None:
        self.run = run
        self.head = run.expression_head()
        self.columns: torch.Tensor | None = None

    @property
    def genes(self) -> list[str]:
        return list(self.run.genes)

    def fit(self, train: SpotSet, genes: list[str]) -> None:
        """Nothing to fit: the head is trained. Its columns are put in ``genes`` order."""
        position = {g: i for i, g in enumerate(self.run.genes)}
        missing = [g for g in genes if g not in position]
        if missing:
            raise ValueError(
                f"Run {self.run.path} predicts {len(position)} genes; {len(missing)} asked "
                f"for are not among them (e.g. {', '.join(missing[:5])})."
            )
        self.columns = torch.as_tensor([position[g] for g in genes])

    @torch.inference_mode()
    def predict(self, spots: SpotSet) -> list[np.ndarray]:
        features = spots.require_features(self.name)
        check_run_features(features, self.head.in_features, self.run.path)
        out = self.head(torch.as_tensor(features, dtype=torch.float32))
        if self.columns is not None:
            out = out[:, self.columns]
        return [out.numpy()]

    def settings(self) -> dict[str, Any]:
        return {"run": str(self.run.path.resolve())}
