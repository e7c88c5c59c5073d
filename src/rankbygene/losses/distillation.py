"""Intra-modal teacher-student distillation (RankByGene Eq. 5)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from rankbygene.losses.checks import check_pair, check_temperature
from rankbygene.losses.info_nce import info_nce_loss

DistillKind = Literal["mse", "cosine", "infonce"]
DISTILL_KINDS: tuple[str, ...] = ("mse", "cosine", "infonce")


def distillation_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    kind: DistillKind = "mse",
    temperature: float = 0.1,
) -> torch.Tensor:
    r"""Pull the student's projected features towards the teacher's.

    ``mse`` (the paper, Eq. 5), on L2-normalised v̂, t̂:

    .. math::
        L_{dist} = \frac{1}{N} \sum_i \lVert \hat v_i - \hat t_i \rVert^2
                 = \frac{1}{N} \sum_i (2 - 2 \cos(v_i, t_i))

    ``cosine``: 1 − mean cos(v_i, t_i) (half of ``mse``); ``infonce``: InfoNCE from
    student to teacher with temperature τ, the authors' code (docs/method.md §7). The
    teacher is always detached: it is trained by EMA only.

    Args:
        student: Student projections v (strong view).
        teacher: Teacher projections t (weak view).
        kind: ``"mse"``, ``"cosine"`` or ``"infonce"``.
        temperature: τ for ``infonce``.

    Shape:
        student: (N, D); teacher: (N, D); output: scalar.
    """
    check_pair(student, teacher, ("student", "teacher"))
    if student.shape[1] != teacher.shape[1]:
        raise ValueError(
            f"student and teacher features must have the same width, got "
            f"{student.shape[1]} and {teacher.shape[1]}."
        )
    teacher = teacher.detach()
    if kind == "infonce":
        check_temperature(temperature)
        return info_nce_loss(student, teacher, temperature=temperature)
    if kind not in DISTILL_KINDS:
        raise ValueError(f"kind must be one of {DISTILL_KINDS}, got {kind!r}.")
    cos = (F.normalize(student, dim=1) * F.normalize(teacher, dim=1)).sum(dim=1)
    if kind == "mse":
        # ‖v̂ − t̂‖² = 2 − 2cos for unit vectors; this form avoids a (N, D) difference
        return (2.0 - 2.0 * cos).mean()
    return 1.0 - cos.mean()


class DistillationLoss(nn.Module):
    """Module form of :func:`distillation_loss`.

    Args:
        kind: ``"mse"``, ``"cosine"`` or ``"infonce"``.
        temperature: τ for ``infonce``.
    """

    def __init__(self, kind: DistillKind = "mse", temperature: float = 0.1) -> None:
        super().__init__()
        if kind not in DISTILL_KINDS:
            raise ValueError(f"kind must be one of {DISTILL_KINDS}, got {kind!r}.")
        check_temperature(temperature)
        self.kind = kind
        self.temperature = temperature

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """Compute the loss; see :func:`distillation_loss`.

        Shape:
            student: (N, D); teacher: (N, D); output: scalar.
        """
        return distillation_loss(student, teacher, self.kind, self.temperature)
