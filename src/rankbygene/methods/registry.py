"""Method registry: RankByGene, HEST-FT and BLEEP (METHOD.md §6)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from rankbygene.losses import RankByGeneObjective, info_nce_loss, soft_clip_loss

if TYPE_CHECKING:
    from rankbygene.training.config import TrainConfig

Terms = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Method:
    """One gene-guided training method.

    Attributes:
        name: Registry name (CLI ``--method``).
        uses_teacher: Keep an EMA teacher; downstream features come from it.
        student_augment: Default augmentation of the student view.
        defaults: Config fields the method sets when the user left them unset (None).
        build_objective: ``config -> nn.Module`` whose forward is
            ``(student, gene, teacher=None, generator=None) -> {term: scalar, "total": scalar}``.
        description: One line for ``--help`` and reports.
    """

    name: str
    uses_teacher: bool
    student_augment: str
    build_objective: Callable[[TrainConfig], nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""


class InfoNCEObjective(nn.Module):
    """HEST-FT: gene-image InfoNCE only (Eq. 1), no teacher."""

    def __init__(self, temperature: float, symmetric: bool) -> None:
        super().__init__()
        self.temperature = temperature
        self.symmetric = symmetric

    def forward(
        self,
        student: torch.Tensor,
        gene: torch.Tensor,
        teacher: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Terms:
        """Shape: student, gene (N, D) -> scalar terms."""
        loss = info_nce_loss(student, gene, temperature=self.temperature, symmetric=self.symmetric)
        return {"contrastive": loss, "total": loss}


class SoftClipObjective(nn.Module):
    """BLEEP: CLIP with soft targets softmax((S^v + S^g)/2/τ)."""

    def __init__(self, temperature: float) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(
        self,
        student: torch.Tensor,
        gene: torch.Tensor,
        teacher: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Terms:
        """Shape: student, gene (N, D) -> scalar terms."""
        loss = soft_clip_loss(student, gene, temperature=self.temperature)
        return {"soft_clip": loss, "total": loss}


def _rankbygene_objective(cfg: TrainConfig) -> nn.Module:
    return RankByGeneObjective(
        lambda_rank=cfg.lambda_rank,
        lambda_dist=cfg.lambda_dist,
        temperature=float(cfg.temperature),
        symmetric=cfg.symmetric,
        triplets=cfg.triplets,
        ranking_variant=cfg.ranking_variant,
        distill=cfg.distill,
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
        uses_teacher=True,
        student_augment="strong",
        build_objective=_rankbygene_objective,
        defaults={"proj_dim": 1024, "temperature": 0.1},
        description="InfoNCE + λ1·ranking consistency + λ2·teacher distillation (the paper).",
    )
)
register_method(
    Method(
        name="hest-ft",
        uses_teacher=False,
        student_augment="weak",
        build_objective=lambda cfg: InfoNCEObjective(float(cfg.temperature), cfg.symmetric),
        defaults={"proj_dim": 1024, "temperature": 0.1},
        description="Gene-image InfoNCE fine-tuning (HEST-FT).",
    )
)
register_method(
    Method(
        name="bleep",
        uses_teacher=False,
        student_augment="weak",
        build_objective=lambda cfg: SoftClipObjective(float(cfg.temperature)),
        defaults={"proj_dim": 256, "temperature": 1.0},
        description="CLIP with soft targets (BLEEP); retrieval-based prediction.",
    )
)
