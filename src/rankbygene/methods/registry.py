"""Method registry: RankByGene, HEST-FT, BLEEP and ST-Net (METHOD.md §6)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
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
        predicts_expression: The image head regresses the panel's expression directly
            (a linear layer to G genes) and there is no gene encoder: ``gene`` is the
            preprocessed expression itself (ST-Net).
        whole_section: One training step sees all spots of a section (HisToGene); the
            method trains its own network (``methods.histogene``), not an image encoder.
    """

    name: str
    uses_teacher: bool
    student_augment: str
    build_objective: Callable[[TrainConfig], nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    predicts_expression: bool = False
    whole_section: bool = False


class SingleTermObjective(nn.Module):
    """An objective made of one loss term (HEST-FT's InfoNCE, BLEEP's soft CLIP).

    Args:
        term: Name under which the term is logged.
        loss: ``(student, gene) -> scalar``, settings already bound.
    """

    def __init__(self, term: str, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
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


def _info_nce_objective(cfg: TrainConfig) -> nn.Module:
    """HEST-FT: gene-image InfoNCE only (Eq. 1), no teacher."""
    return SingleTermObjective(
        "contrastive",
        partial(info_nce_loss, temperature=float(cfg.temperature), symmetric=cfg.symmetric),
    )


def _soft_clip_objective(cfg: TrainConfig) -> nn.Module:
    """BLEEP: CLIP with soft targets softmax((S^v + S^g)/2/τ)."""
    return SingleTermObjective(
        "soft_clip", partial(soft_clip_loss, temperature=float(cfg.temperature))
    )


def _expression_mse_objective(cfg: TrainConfig) -> nn.Module:
    """ST-Net: mean squared error between predicted and measured expression."""
    return SingleTermObjective("mse", nn.functional.mse_loss)


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
        build_objective=_info_nce_objective,
        defaults={"proj_dim": 1024, "temperature": 0.1},
        description="Gene-image InfoNCE fine-tuning (HEST-FT).",
    )
)
register_method(
    Method(
        name="bleep",
        uses_teacher=False,
        student_augment="weak",
        build_objective=_soft_clip_objective,
        defaults={"proj_dim": 256, "temperature": 1.0},
        description="CLIP with soft targets (BLEEP); retrieval-based prediction.",
    )
)
register_method(
    Method(
        name="stnet",
        uses_teacher=False,
        student_augment="weak",
        build_objective=_expression_mse_objective,
        description="Expression regression from the image (ST-Net: backbone → linear → genes).",
        predicts_expression=True,
    )
)
register_method(
    Method(
        name="histogene",
        uses_teacher=False,
        student_augment="none",
        build_objective=_expression_mse_objective,
        description="Transformer over a section's spots regressing genes (HisToGene).",
        predicts_expression=True,
        whole_section=True,
    )
)
