"""The compared training methods (docs/method.md §6) and what each one declares.

A :class:`Method` is a declaration, read by the layers above: training builds the
networks and the objective from it, ``extract --run`` picks the feature extractor it
names, and evaluation adds a row for each predictor of its own. Nothing outside this
module dispatches on a method's name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch
from torch import nn

from rankbygene.losses import (
    TERM_DISTILLATION,
    TERM_RANKING,
    InfoNCELoss,
    RankByGeneObjective,
    SoftCLIPLoss,
)

__all__ = [
    "Method",
    "ObjectiveSettings",
    "SingleTermObjective",
    "get_method",
    "list_methods",
    "register_method",
]

Terms = dict[str, torch.Tensor]
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


class SingleTermObjective(nn.Module):
    """An objective made of one loss module (HEST-FT's InfoNCE, BLEEP's soft CLIP, MSE).

    Args:
        term: Name under which the term is logged.
        loss: ``(student, gene) -> scalar`` loss module, settings already given.
    """

    def __init__(self, term: str, loss: nn.Module) -> None:
        super().__init__()
        self.term = term
        self.loss = loss

    def forward(
        self,
        student: torch.Tensor,
        gene: torch.Tensor,
        teacher: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Terms:
        """Shape: student, gene (N, D) -> {term: scalar, "total": scalar}."""
        value = self.loss(student, gene)
        return {self.term: value, "total": value}


def _info_nce_objective(cfg: ObjectiveSettings) -> nn.Module:
    """HEST-FT: gene-image InfoNCE only (Eq. 1), no teacher."""
    return SingleTermObjective(
        "contrastive", InfoNCELoss(float(cfg.temperature), symmetric=cfg.symmetric)
    )


def _soft_clip_objective(cfg: ObjectiveSettings) -> nn.Module:
    """BLEEP: CLIP with soft targets softmax((S^v + S^g)/2/τ)."""
    return SingleTermObjective("soft_clip", SoftCLIPLoss(float(cfg.temperature)))


def _expression_mse_objective(cfg: ObjectiveSettings) -> nn.Module:
    """ST-Net, HisToGene: mean squared error between predicted and measured expression."""
    return SingleTermObjective("mse", nn.MSELoss())


def _rankbygene_objective(cfg: ObjectiveSettings) -> nn.Module:
    return RankByGeneObjective(
        lambda_rank=cfg.lambda_rank,
        lambda_dist=cfg.lambda_dist,
        temperature=float(cfg.temperature),
        symmetric=cfg.symmetric,
        triplets=cfg.triplets,  # type: ignore[arg-type]
        ranking_variant=cfg.ranking_variant,  # type: ignore[arg-type]
        distill=cfg.distill,  # type: ignore[arg-type]
        stop_gradient=cfg.stop_gradient,
    )


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
        build_objective=_rankbygene_objective,
        description="InfoNCE + λ1·ranking consistency + λ2·teacher distillation (the paper).",
        uses_teacher=True,
        student_augment="strong",
        defaults={"proj_dim": 1024, "temperature": 0.1},
        term_weights={"lambda_rank": TERM_RANKING, "lambda_dist": TERM_DISTILLATION},
    )
)
register_method(
    Method(
        name="hest-ft",
        build_objective=_info_nce_objective,
        description="Gene-image InfoNCE fine-tuning (HEST-FT).",
        defaults={"proj_dim": 1024, "temperature": 0.1},
    )
)
register_method(
    Method(
        name="bleep",
        build_objective=_soft_clip_objective,
        description="CLIP with soft targets (BLEEP); retrieval-based prediction.",
        defaults={"proj_dim": 256, "temperature": 1.0},
        predictors=("retrieval",),
    )
)
register_method(
    Method(
        name="stnet",
        build_objective=_expression_mse_objective,
        description="Expression regression from the image (ST-Net: backbone → linear → genes).",
        head="expression",
        predictors=("head",),
    )
)
register_method(
    Method(
        name="histogene",
        build_objective=_expression_mse_objective,
        description="Transformer over a section's spots regressing genes (HisToGene).",
        student_augment="none",
        head="expression",
        network="section-transformer",
        predictors=("head",),
    )
)
