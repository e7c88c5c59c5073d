"""A run's own expression head: features → the run's panel genes (ST-Net, HisToGene).

ST-Net's head is a linear layer on the backbone's features; HisToGene's is the linear
layer on the transformer's in-context spot features (``rankbygene extract --run RUN``
writes both). One deterministic member; the panel is the run's own (``genes.txt``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from rankbygene.evaluation.predictors.base import (
    Predictor,
    PredictorState,
    SpotSet,
    check_run_features,
    require_tensors,
)
from rankbygene.training import TrainedRun

__all__ = ["HeadPredictor"]


class HeadPredictor(Predictor):
    """A trained linear expression head.

    Args:
        head: the linear layer features → ``genes``.
        genes: the genes of its output columns.
        source: the run it comes from (resolved path), for settings and messages.
    """

    name = "head"

    def __init__(self, head: nn.Linear, genes: list[str], source: str) -> None:
        self.head = head.eval()
        self.run_genes = list(genes)
        self.source = source
        self.columns: torch.Tensor | None = None

    @classmethod
    def from_run(cls, run: TrainedRun) -> HeadPredictor:
        """The expression head of a finished ST-Net or HisToGene run."""
        return cls(run.expression_head(), run.genes, str(run.path.resolve()))

    @property
    def genes(self) -> list[str]:
        return list(self.run_genes)

    def fit(self, train: SpotSet, genes: list[str]) -> None:
        """Nothing to fit: the head is trained. Its columns are put in ``genes`` order."""
        position = {g: i for i, g in enumerate(self.run_genes)}
        missing = [g for g in genes if g not in position]
        if missing:
            raise ValueError(
                f"Run {self.source} predicts {len(position)} genes; {len(missing)} asked "
                f"for are not among them (e.g. {', '.join(missing[:5])})."
            )
        self.columns = torch.as_tensor([position[g] for g in genes])

    @torch.inference_mode()
    def predict(self, spots: SpotSet) -> list[np.ndarray]:
        features = spots.require_features(self.name)
        check_run_features(features, self.head.in_features, self.source)
        out = self.head(torch.as_tensor(features, dtype=torch.float32))
        if self.columns is not None:
            out = out[:, self.columns]
        return [out.numpy()]

    def settings(self) -> dict[str, Any]:
        return {"run": self.source}

    def state(self) -> PredictorState:
        """The head's rows for the fitted genes (``weight`` (G, D), ``bias`` (G,))."""
        columns = self.columns if self.columns is not None else torch.arange(len(self.run_genes))
        genes = [self.run_genes[i] for i in columns.tolist()]
        tensors = {
            "weight": self.head.weight.detach()[columns].clone(),
            "bias": self.head.bias.detach()[columns].clone(),
        }
        return PredictorState(tensors, {"genes": genes, "source": self.source})

    @classmethod
    def from_state(cls, state: PredictorState) -> HeadPredictor:
        require_tensors(state, ["weight", "bias"], cls.name)
        weight, bias = state.tensors["weight"], state.tensors["bias"]
        head = nn.Linear(weight.shape[1], weight.shape[0])
        head.load_state_dict({"weight": weight, "bias": bias})
        return cls(head, state.meta["genes"], state.meta["source"])
