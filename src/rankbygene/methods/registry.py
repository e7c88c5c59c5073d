"""The compared training methods (docs/method.md §6) and what each one declares.

A :class:`Method` is a declaration, read by the layers above: training builds the
networks and the objective from it, ``extract --run`` picks the feature extractor it
names, and evaluation adds a row for each predictor of its own. Nothing outside this
module dispatches on a method's name.

The registry is cheap to import (no torch): the command line lists the registered
methods in its ``--help``. The objectives themselves live in
:mod:`rankbygene.methods.objectives` and load when a run builds one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "Method",
    "ObjectiveSettings",
    "get_method",
    "list_methods",
    "register_method",
]

Head = Literal["projection", "expression"]
Network = Literal["image-encoder", "section-transformer"]
Predictor = Literal["head", "retrieval"]


class ObjectiveSettings(Protocol):
    """The training settings an objective is built from (``TrainConfig`` has them all)."""

    lambda_rank: float
    lambda_dist: float
    temperature: float | None
    symmetric: bool
    triplets: str
    ranking_variant: str
    distill: str
    stop_gradient: bool


@dataclass(frozen=True)
class Method:
    """One gene-guided training method, as the rest of the package sees it.

    Attributes:
        name: Registry name (CLI ``--method``).
        build_objective: ``settings -> nn.Module`` whose forward is
            ``(student, gene, teacher=None, generator=None) -> {term: scalar, "total": scalar}``.
        description: One line for ``--help`` and reports.
        uses_teacher: Keep an EMA teacher; downstream features come from it.
        student_augment: Default augmentation of the student view.
        defaults: Config fields the method sets when the user left them unset (None).
        head: ``"projection"`` (an MLP into the joint space, beside a gene encoder) or
            ``"expression"`` (a linear layer to the G panel genes and no gene encoder:
            the objective sees the preprocessed expression itself, as ST-Net).
        network: ``"image-encoder"`` (a backbone trained on spot batches; its features
            are the backbone's) or ``"section-transformer"`` (HisToGene: one step sees
            every spot of a section; a spot's features depend on its section).
        predictors: Predictors of its own that evaluation scores beside the probes:
            ``"head"`` (the expression head) and/or ``"retrieval"`` (BLEEP).
        term_weights: Config field → the loss term it weights (a contract test checks
            that each weight reaches its term).
    """

    name: str
    build_objective: Callable[[ObjectiveSettings], nn.Module]
    description: str = ""
    uses_teacher: bool = False
    student_augment: str = "weak"
    defaults: Mapping[str, object] = field(default_factory=dict)
    head: Head = "projection"
    network: Network = "image-encoder"
    predictors: tuple[Predictor, ...] = ()
    term_weights: Mapping[str, str] = field(default_factory=dict)

    @property
    def predicts_expression(self) -> bool:
        """Whether the image head regresses expression (no gene encoder)."""
        return self.head == "expression"


@dataclass(frozen=True)
class _LazyObjective:
    """``builder`` of :mod:`rankbygene.methods.objectives`, imported when first called.

    A module-level class, not a closure: DDP spawn pickles the method with its module.
    """

    builder: str

    def __call__(self, cfg: ObjectiveSettings) -> nn.Module:
        module = importlib.import_module("rankbygene.methods.objectives")
        return getattr(module, self.builder)(cfg)


def _objective(builder: str) -> Callable[[ObjectiveSettings], nn.Module]:
    """The lazy builder named ``builder`` (torch is imported only when it is called)."""
    return _LazyObjective(builder)


# Loss-term names of RankByGeneObjective (rankbygene.losses.objective.TERM_*), spelled here
# so that the registry does not import torch; tests/methods/test_methods_contract.py
# checks that each weight scales exactly the term named.
_TERM_RANKING, _TERM_DISTILLATION = "ranking", "distillation"

_REGISTRY: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add a method to the registry (name must be new)."""
    if method.name in _REGISTRY:
        raise ValueError(f"Method {method.name!r} is already registered.")
    _REGISTRY[method.name] = method
    return method


def get_method(name: str) -> Method:
    """Look a method up by name, with the list of valid names on error."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"Unknown method {name!r}; choose one of {list_methods()}.") from None


def list_methods() -> list[str]:
    """Registered method names."""
    return sorted(_REGISTRY)


register_method(
    Method(
        name="rankbygene",
        build_objective=_objective("rankbygene_objective"),
        description="InfoNCE + λ1·ranking consistency + λ2·teacher distillation (the paper).",
        uses_teacher=True,
        student_augment="strong",
        defaults={"proj_dim": 1024, "temperature": 0.1},
        term_weights={"lambda_rank": _TERM_RANKING, "lambda_dist": _TERM_DISTILLATION},
    )
)
register_method(
    Method(
        name="hest-ft",
        build_objective=_objective("info_nce_objective"),
        description="Gene-image InfoNCE fine-tuning (HEST-FT).",
        defaults={"proj_dim": 1024, "temperature": 0.1},
    )
)
register_method(
    Method(
        name="bleep",
        build_objective=_objective("soft_clip_objective"),
        description="CLIP with soft targets (BLEEP); retrieval-based prediction.",
        defaults={"proj_dim": 256, "temperature": 1.0},
        predictors=("retrieval",),
    )
)
register_method(
    Method(
        name="stnet",
        build_objective=_objective("expression_mse_objective"),
        description="Expression regression from the image (ST-Net: backbone → linear → genes).",
        head="expression",
        predictors=("head",),
    )
)
register_method(
    Method(
        name="histogene",
        build_objective=_objective("expression_mse_objective"),
        description="Transformer over a section's spots regressing genes (HisToGene).",
        student_augment="none",
        head="expression",
        network="section-transformer",
        predictors=("head",),
    )
)
