"""Losses of RankByGene and the compared systems: one file each, a module + a function."""

from rankbygene.losses.distillation import DistillationLoss, distillation_loss
from rankbygene.losses.info_nce import InfoNCELoss, info_nce_loss
from rankbygene.losses.objective import (
    TERM_CONTRASTIVE,
    TERM_DISTILLATION,
    TERM_RANKING,
    TERM_TOTAL,
    RankByGeneObjective,
)
from rankbygene.losses.ranking import (
    RankingConsistencyLoss,
    rank_accuracy,
    rank_accuracy_full,
    ranking_consistency_loss,
    sample_pair_permutations,
)
from rankbygene.losses.soft_clip import SoftCLIPLoss, soft_clip_loss

__all__ = [
    "TERM_CONTRASTIVE",
    "TERM_DISTILLATION",
    "TERM_RANKING",
    "TERM_TOTAL",
    "DistillationLoss",
    "InfoNCELoss",
    "RankByGeneObjective",
    "RankingConsistencyLoss",
    "SoftCLIPLoss",
    "distillation_loss",
    "info_nce_loss",
    "rank_accuracy",
    "rank_accuracy_full",
    "ranking_consistency_loss",
    "sample_pair_permutations",
    "soft_clip_loss",
]
