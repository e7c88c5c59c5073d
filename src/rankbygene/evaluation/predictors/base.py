"""The one interface of gene-expression predictors: ``fit(train spots)`` / ``predict(spots)``.

A predictor maps a spot's inputs (its image features, or for the position baseline its
array position) to the expression of a gene panel. Probes (MLP, ridge) are fitted on the
training spots; a run's own predictors (its expression head, BLEEP retrieval) come
trained and fix the panel to the run's genes. A predictor may hold several member
models (the MLP probe's fold models): :meth:`Predictor.predict` returns one prediction
per member, and scoring reports their spread.

A fitted predictor can be saved and rebuilt (``rankbygene fit`` / ``predict``):
:meth:`Predictor.state` gives its tensors and a JSON-ready description
(:class:`PredictorState`), and ``from_state`` of its class rebuilds it, predicting the
same numbers. The position baseline cannot be saved (it reads array positions, which
a new slide does not have).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import anndata as ad
import numpy as np
import torch

__all__ = ["Predictor", "PredictorState", "SpotSet", "check_run_features", "require_tensors"]


@dataclass
class SpotSet:
    """Spots of one or more samples, aligned row by row.

    Attributes:
        sample_ids: sample id of each row.
        targets: preprocessed expression on the evaluation genes (zero columns when
            unknown, e.g. a slide without measurements).
        features: image features, or None when not read.
        positions: (column, row) array coordinates, or None.
        adatas: sample id → raw-count AnnData (predictors needing other genes).

    Shape:
        sample_ids (N,); targets (N, G); features (N, D); positions (N, 2).
    """

    sample_ids: np.ndarray
    targets: np.ndarray
    features: np.ndarray | None = None
    positions: np.ndarray | None = None
    adatas: Mapping[str, ad.AnnData] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sample_ids)

    def require_features(self, who: str) -> np.ndarray:
        """The features, or a ValueError naming the predictor that needs them."""
        if self.features is None:
            raise ValueError(f"The {who} predictor reads image features; pass --features FEATS.")
        return self.features


@dataclass
class PredictorState:
    """A fitted predictor as data: what a saved predictor stores.

    Attributes:
        tensors: named tensors (weights, standardisation, reference spots), written to
            safetensors.
        meta: JSON-ready settings, dimensions and member descriptions, enough to rebuild
            the networks the tensors fill.
    """

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]

    def under(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tensors named ``prefix + key``, keyed by ``key`` (one network's state dict)."""
        return {k[len(prefix) :]: v for k, v in self.tensors.items() if k.startswith(prefix)}


class Predictor(ABC):
    """A gene-expression predictor behind one interface.

    Attributes:
        name: registry name, also the ``probe`` recorded in results.
        reads_features: whether :meth:`predict` uses image features (the position
            baseline does not).
    """

    name: ClassVar[str]
    reads_features: ClassVar[bool] = True

    @property
    def genes(self) -> list[str] | None:
        """The genes it predicts when fixed by a trained run (else None: any panel)."""
        return None

    @abstractmethod
    def fit(self, train: SpotSet, genes: list[str]) -> None:
        """Fit (or prepare) on the training spots, whose targets are on ``genes``."""

    @abstractmethod
    def predict(self, spots: SpotSet) -> list[np.ndarray]:
        """One prediction per member model.

        Shape:
            returns a list of (N, G) float32 arrays, N = len(spots).
        """

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """JSON-ready settings, recorded as the block's ``config``."""

    def members(self) -> list[dict[str, Any]]:
        """What each member model is (fold index, best epoch...), after :meth:`fit`."""
        return [{"fold": 0}]

    def state(self) -> PredictorState:
        """The fitted predictor's tensors and description (see :class:`PredictorState`).

        Raises:
            RuntimeError: not fitted yet.
            ValueError: this kind of predictor cannot be saved.
        """
        raise ValueError(f"The {self.name} predictor cannot be saved.")

    @classmethod
    def from_state(cls, state: PredictorState) -> Predictor:
        """Rebuild a fitted predictor from :meth:`state` (it predicts the same numbers).

        Raises:
            ValueError: a state that does not describe this predictor.
        """
        raise ValueError(f"The {cls.name} predictor cannot be loaded from a saved state.")


def require_tensors(state: PredictorState, names: list[str], who: str) -> None:
    """Refuse a state that lacks tensors a predictor needs (a truncated or foreign file)."""
    missing = [n for n in names if n not in state.tensors]
    if missing:
        raise ValueError(
            f"The saved {who} predictor lacks tensor(s) {missing[:5]}; its weights file is "
            "incomplete or from another predictor. Fit it again with `rankbygene fit`."
        )


def check_run_features(features: np.ndarray, expected_dim: int, run: Path | str) -> None:
    """Refuse features a run's head cannot read (extracted with another encoder).

    Shape:
        features: (N, D) with D == ``expected_dim``.
    """
    if features.shape[1] != expected_dim:
        raise ValueError(
            f"Features have dim {features.shape[1]} but the head of run {run} expects "
            f"{expected_dim}: extract them with `rankbygene extract --run {run}`."
        )
