"""Teacher-student pair and the EMA helpers (docs/method.md §2)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def update_momentum(teacher: nn.Module, student: nn.Module, m: float) -> None:
    """EMA step θ_t ← m·θ_t + (1 − m)·θ_s; buffers (e.g. BN statistics) are copied.

    Args:
        teacher: Module updated in place.
        student: Module with the same parameters (same order and shapes).
        m: Momentum in [0, 1]; 1 keeps the teacher, 0 copies the student.
    """
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"momentum m must be in [0, 1], got {m}.")
    t_params, s_params = list(teacher.parameters()), list(student.parameters())
    t_bufs, s_bufs = list(teacher.buffers()), list(student.buffers())
    if len(t_params) != len(s_params) or len(t_bufs) != len(s_bufs):
        raise ValueError(
            "teacher and student differ in structure "
            f"({len(t_params)} vs {len(s_params)} parameters, "
            f"{len(t_bufs)} vs {len(s_bufs)} buffers); the teacher must be a copy of the student."
        )
    with torch.no_grad():
        if t_params:
            torch._foreach_mul_(t_params, m)
            torch._foreach_add_(t_params, s_params, alpha=1.0 - m)
        if t_bufs:
            torch._foreach_copy_(t_bufs, s_bufs)


def cosine_momentum(step: int, total_steps: int, m0: float = 0.96, m1: float = 1.0) -> float:
    """Cosine momentum schedule m = m1 − (m1 − m0)·(cos(π·step/total) + 1)/2.

    Goes from ``m0`` at step 0 to ``m1`` at ``total_steps`` (steps beyond are clamped).

    Args:
        step: Current step (optimizer steps or epochs, whichever the EMA follows).
        total_steps: Steps of the whole training.
        m0: Starting momentum.
        m1: Final momentum.
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps}.")
    frac = min(max(step, 0), total_steps) / total_steps
    return m1 - (m1 - m0) * (math.cos(math.pi * frac) + 1.0) / 2.0


class BackboneWithHead(nn.Module):
    """A backbone followed by a projection head.

    Args:
        backbone: Image encoder (pooled output).
        head: Projection head.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Projected features.

        Shape:
            x: (B, 3, H, W); output: (B, d).
        """
        return self.head(self.backbone(x))


class TeacherStudent(nn.Module):
    """Student (trained) and teacher (EMA copy, no gradients) backbone + head.

    The teacher is a deep copy made at construction, with ``requires_grad`` off. It
    always runs in eval mode, whatever mode the parent is put in, so its output does
    not depend on ``train()``/``eval()`` (BN uses the running statistics copied from
    the student by :func:`update_momentum`, dropout is off). Downstream features are
    ``teacher.backbone``.

    Args:
        backbone: Student image encoder.
        head: Student projection head.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.student = BackboneWithHead(backbone, head)
        self.teacher = copy.deepcopy(self.student)
        self.teacher.requires_grad_(False)
        self.teacher.eval()

    def train(self, mode: bool = True) -> TeacherStudent:
        """Set the student's mode; the teacher stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Student projections.

        Shape:
            x: (B, 3, H, W); output: (B, d).
        """
        return self.student(x)

    @torch.no_grad()
    def forward_teacher(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher projections (no graph).

        Shape:
            x: (B, 3, H, W); output: (B, d).
        """
        return self.teacher(x)

    def update_teacher(self, m: float) -> None:
        """One EMA step of the teacher towards the student with momentum ``m``."""
        update_momentum(self.teacher, self.student, m)
