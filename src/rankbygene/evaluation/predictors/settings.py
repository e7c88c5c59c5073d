"""Settings of every gene-expression predictor (plain dataclasses, cheap to import).

They are recorded in ``results.json`` (``probes.<name>.config``) and in an evaluation's
``config.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rankbygene.configs import check_choices

__all__ = [
    "PROBES",
    "FoldUnit",
    "MLPProbeConfig",
    "PositionSettings",
    "RetrievalSettings",
    "RidgeProbeConfig",
    "Weighting",
]

PROBES: tuple[str, ...] = ("mlp", "ridge", "both", "head", "retrieval", "position")
"""What ``evaluate genes --probe`` accepts; ``both`` is mlp then ridge; ``head`` and
``retrieval`` are a trained run's own predictors; ``position`` reads no features."""

FoldUnit = Literal["spots", "samples"]
Weighting = Literal["mean", "similarity", "softmax"]


@dataclass
class MLPProbeConfig:
    """The paper's MLP probe and its k-fold protocol (docs/method.md §5).

    Attributes:
        hidden_dims: widths of the hidden layers (paper: 1024, 1024).
        dropout: dropout after each hidden ReLU (our choice; the paper is silent).
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        epochs: training epochs per fold.
        batch_size: minibatch size.
        folds: number of folds over the training set.
        fold_unit: ``"spots"`` (the paper: spots of all training samples pooled)
            or ``"samples"`` (whole samples per fold; needs >= ``folds`` samples).
        standardize_inputs: z-score features with the fold's training statistics.
        init_bias_to_mean: initialise the output bias at the training targets' mean
            (our choice; the paper is silent).
        seed: seeds fold assignment, initialisation and minibatch order.
    """

    hidden_dims: tuple[int, ...] = (1024, 1024)
    dropout: float = 0.1
    lr: float = 1e-4
    weight_decay: float = 0.0
    epochs: int = 20
    batch_size: int = 64
    folds: int = 5
    fold_unit: FoldUnit = "spots"
    standardize_inputs: bool = True
    init_bias_to_mean: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        self.hidden_dims = tuple(int(w) for w in self.hidden_dims)  # YAML gives a list
        check_choices(self)
        # checked here, before any work, and named as the command line names them
        for name, flag, value, least in (
            ("epochs", "--epochs", self.epochs, 1),
            ("batch_size", "--batch-size", self.batch_size, 1),
            ("folds", "--folds", self.folds, 2),
        ):
            if value < least:
                raise ValueError(f"mlp.{name} ({flag}) must be >= {least}, got {value}.")
        if not self.lr > 0:
            raise ValueError(f"mlp.lr (--lr) must be > 0, got {self.lr}.")


@dataclass
class RidgeProbeConfig:
    """HEST-Benchmark's linear probe.

    Attributes:
        pca_dim: PCA components (capped at min(n_train, D)).
        alpha: ridge penalty; None uses HEST's ``100 / (n_components · n_genes)``.
        fit_intercept: fit an intercept (HEST: False; see ``predictors.ridge``).
        solver: sklearn Ridge solver (HEST: ``"lsqr"``).
        max_iter: iterations of the iterative solver.
        seed: random state passed to PCA and Ridge.
    """

    pca_dim: int = 256
    alpha: float | None = None
    fit_intercept: bool = True
    solver: str = "lsqr"
    max_iter: int = 1000
    seed: int = 0


@dataclass
class RetrievalSettings:
    """BLEEP's retrieval predictor.

    Attributes:
        k: neighbours per query spot (capped at the number of reference spots).
        weighting: ``"mean"`` (BLEEP's plain average), ``"similarity"`` or ``"softmax"``.
        temperature: softmax temperature (``weighting="softmax"`` only).
    """

    k: int = 50
    weighting: Weighting = "mean"
    temperature: float = 0.1


@dataclass
class PositionSettings:
    """The position-only baseline: neighbours averaged per test spot."""

    k: int = 10
