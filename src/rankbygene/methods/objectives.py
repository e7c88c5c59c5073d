"""The objectives of the registered methods (torch modules, built when a run starts).

Each builder maps the training settings (:class:`~rankbygene.methods.registry.
ObjectiveSettings`) to a module whose forward is
``(student, gene, teacher=None, generator=None) -> {term: scalar, "total": scalar}``.
"""

from __future__ import annotations

import torch
from torch import nn

from rankbygene.losses import InfoNCELoss, RankByGeneObjective, SoftCLIPLoss
from rankbygene.methods.registry import ObjectiveSettings

__all__ = [
    "SingleTermObjective",
    "expression_mse_objective",
    "info_nce_objective",
    "rankbygene_objective",
    "soft_clip_objective",
]

Terms = dict[str, torch.Tensor]


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


def info_nce_objective(cfg: ObjectiveSettings) -> nn.Module:
    """HEST-FT: gene-image InfoNCE only (Eq. 1), no teacher."""
    return SingleTermObjective(
        "contrastive", InfoNCELoss(float(cfg.temperature), symmetric=cfg.symmetric)
    )


def soft_clip_objective(cfg: ObjectiveSettings) -> nn.Module:
    """BLEEP: CLIP with soft targets softmax((S^v + S^g)/2/τ)."""
    return SingleTermObjective("soft_clip", SoftCLIPLoss(float(cfg.temperature)))


def expression_mse_objective(cfg: ObjectiveSettings) -> nn.Module:
    """ST-Net, HisToGene: mean squared error between predicted and measured expression."""
    return SingleTermObjective("mse", nn.MSELoss())


def rankbygene_objective(cfg: ObjectiveSettings) -> nn.Module:
    """RankByGene: InfoNCE + λ1·ranking consistency + λ2·distillation (Eq. 6)."""
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
