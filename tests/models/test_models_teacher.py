"""MLP head, EMA maths, cosine momentum schedule and the teacher-student pair."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from rankbygene.models import MLPHead, TeacherStudent, cosine_momentum, update_momentum


def test_mlp_head_structure_and_shapes():
    head = MLPHead(10, out_dim=6, hidden_dim=8)
    linears = [m for m in head.net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(10, 8), (8, 8), (8, 6)]
    assert sum(isinstance(m, nn.ReLU) for m in head.net) == 2
    assert head(torch.randn(4, 10)).shape == (4, 6)
    assert len(MLPHead(5, 7, n_layers=1).net) == 1
    default = MLPHead(5)
    assert [m.out_features for m in default.net if isinstance(m, nn.Linear)] == [1024] * 3
    drop = MLPHead(5, 4, dropout=0.5)
    assert sum(isinstance(m, nn.Dropout) for m in drop.net) == 2
    with pytest.raises(ValueError, match="n_layers must be >= 1"):
        MLPHead(5, n_layers=0)


def test_update_momentum_exact_values():
    teacher, student = nn.Linear(2, 1), nn.Linear(2, 1)
    bn_t, bn_s = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    with torch.no_grad():
        teacher.weight.copy_(torch.tensor([[1.0, 2.0]]))
        teacher.bias.fill_(4.0)
        student.weight.copy_(torch.tensor([[3.0, -2.0]]))
        student.bias.fill_(0.0)
        bn_s.running_mean.fill_(5.0)
        bn_s.num_batches_tracked.fill_(7)
    update_momentum(teacher, student, 0.75)
    torch.testing.assert_close(teacher.weight, torch.tensor([[1.5, 1.0]]))
    torch.testing.assert_close(teacher.bias, torch.tensor([3.0]))
    # student untouched
    torch.testing.assert_close(student.weight, torch.tensor([[3.0, -2.0]]))
    update_momentum(bn_t, bn_s, 0.9)
    torch.testing.assert_close(bn_t.running_mean, torch.full((2,), 5.0))
    assert int(bn_t.num_batches_tracked) == 7
    update_momentum(teacher, student, 0.0)
    torch.testing.assert_close(teacher.weight, student.weight)
    with pytest.raises(ValueError, match="differ in structure"):
        update_momentum(teacher, nn.Linear(2, 1, bias=False), 0.5)
    with pytest.raises(ValueError, match=r"momentum m must be in \[0, 1\]"):
        update_momentum(teacher, student, 1.5)


def test_cosine_momentum_schedule():
    assert cosine_momentum(0, 100) == pytest.approx(0.96)
    assert cosine_momentum(100, 100) == pytest.approx(1.0)
    assert cosine_momentum(50, 100) == pytest.approx(0.98)
    assert cosine_momentum(25, 100) == pytest.approx(1 - 0.04 * (math.cos(math.pi / 4) + 1) / 2)
    values = [cosine_momentum(s, 20) for s in range(21)]
    assert all(b > a for a, b in itertools.pairwise(values))
    assert cosine_momentum(500, 100) == pytest.approx(1.0)
    assert cosine_momentum(0, 10, m0=0.5, m1=0.9) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="total_steps must be > 0"):
        cosine_momentum(0, 0)


def test_teacher_student_copy_no_grad_and_eval_mode():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5))
    ts = TeacherStudent(backbone, MLPHead(8, 3))
    assert all(not p.requires_grad for p in ts.teacher.parameters())
    assert all(p.requires_grad for p in ts.student.parameters())
    assert ts.teacher.backbone is not ts.student.backbone
    ts.train()
    assert ts.student.training and not ts.teacher.training
    x = torch.randn(6, 4)
    # the teacher is deterministic in train mode (dropout off, BN running stats)
    a, b = ts.forward_teacher(x), ts.forward_teacher(x)
    torch.testing.assert_close(a, b)
    assert not a.requires_grad
    ts.eval()
    torch.testing.assert_close(ts(x), ts.forward_teacher(x))  # identical copies at start
    ts.train()
    loss = ts(x).pow(2).sum()
    loss.backward()
    opt = torch.optim.SGD(ts.student.parameters(), lr=0.1)
    opt.step()
    before = [p.clone() for p in ts.teacher.parameters()]
    ts.update_teacher(0.5)
    for t0, t1, s in zip(before, ts.teacher.parameters(), ts.student.parameters(), strict=True):
        torch.testing.assert_close(t1, 0.5 * t0 + 0.5 * s)
