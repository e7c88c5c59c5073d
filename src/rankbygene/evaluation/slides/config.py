"""Settings of a slide-level evaluation; unset fields take the task's paper defaults."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from rankbygene.configs import config_from_mapping

__all__ = ["TASKS", "TASK_DEFAULTS", "SlideEvalConfig", "Task"]

Task = Literal["classification", "survival"]
TASKS: tuple[str, ...] = ("classification", "survival")

# Paper settings per task (docs/method.md §5): optimiser, learning rate, epochs.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "classification": {"optimizer": "adam", "lr": 1e-4, "epochs": 200},
    "survival": {"optimizer": "sgd", "lr": 2e-4, "epochs": 20},
}


@dataclass(frozen=True)
class SlideEvalConfig:
    """Settings of one slide-level evaluation; None fields take the task's paper default.

    Attributes:
        task: ``classification`` or ``survival``.
        folds: cross-validation folds (grouped by case).
        epochs, lr, optimizer (``adam`` | ``sgd``): training of the ABMIL per fold.
        weight_decay: L2 weight decay (CLAM/MCAT: 1e-5).
        grad_accum: slides whose gradients are accumulated per optimiser step
            (bags differ in size, so each step sees one slide; MCAT accumulates 32).
        n_bins: survival time bins.
        alpha: weight of the uncensored-only survival term (MCAT's ``alpha_surv``).
        hidden, attention_dim, dropout: ABMIL widths and dropout.
        seed: fold shuffling and initialisation seed.
        label_column: the label CSV's column of the classification label.
    """

    task: str = "classification"
    folds: int = 5
    epochs: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    weight_decay: float = 1e-5
    grad_accum: int = 1
    n_bins: int = 4
    alpha: float = 0.0
    hidden: int = 512
    attention_dim: int = 256
    dropout: float = 0.25
    seed: int = 0
    label_column: str = "label"

    def resolved(self) -> SlideEvalConfig:
        """Fill the task's defaults into unset fields and validate."""
        if self.task not in TASKS:
            raise ValueError(f"Unknown slide task {self.task!r}; choose one of {', '.join(TASKS)}.")
        values = {k: v for k, v in TASK_DEFAULTS[self.task].items() if getattr(self, k) is None}
        cfg = replace(self, **values)
        if cfg.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {cfg.optimizer!r}.")
        if cfg.folds < 2:
            raise ValueError(f"folds must be >= 2, got {cfg.folds}.")
        if cfg.epochs < 1 or cfg.grad_accum < 1:
            raise ValueError("epochs and grad_accum must be >= 1.")
        return cfg

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SlideEvalConfig:
        """Build from a mapping (e.g. YAML), refusing unknown keys."""
        return config_from_mapping(cls, values, "SlideEvalConfig")
