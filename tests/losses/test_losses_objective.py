"""The combined RankByGene objective."""

from __future__ import annotations

import pytest
import torch

from rankbygene.losses import (
    RankByGeneObjective,
    distillation_loss,
    info_nce_loss,
    ranking_consistency_loss,
)


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.randn(8, 6), torch.randn(8, 6), torch.randn(8, 6)


def test_total_is_weighted_sum_of_terms(batch):
    v, g, t = batch
    out = RankByGeneObjective(lambda_rank=5, lambda_dist=1, triplets="all")(v, g, t)
    assert set(out) == {"contrastive", "ranking", "distillation", "total"}
    assert out["contrastive"].item() == pytest.approx(info_nce_loss(v, g).item())
    assert out["ranking"].item() == pytest.approx(
        ranking_consistency_loss(v, g, triplets="all").item()
    )
    assert out["distillation"].item() == pytest.approx(distillation_loss(v, t).item())
    expected = out["contrastive"] + 5 * out["ranking"] + out["distillation"]
    assert out["total"].item() == pytest.approx(expected.item())


def test_sampled_objective_uses_generator(batch):
    v, g, t = batch
    obj = RankByGeneObjective()
    a = obj(v, g, t, generator=torch.Generator().manual_seed(3))["ranking"]
    b = ranking_consistency_loss(v, g, generator=torch.Generator().manual_seed(3))
    assert a.item() == pytest.approx(b.item())


def test_zero_weight_terms_reported_without_graph(batch):
    v, g, t = batch
    v = v.clone().requires_grad_(True)
    out = RankByGeneObjective(lambda_rank=0, lambda_dist=0)(v, g, t)
    assert out["ranking"].item() > 0 and out["distillation"].item() > 0
    assert not out["ranking"].requires_grad and not out["distillation"].requires_grad
    assert out["total"].item() == pytest.approx(out["contrastive"].item())
    out["total"].backward()
    assert v.grad is not None


def test_no_teacher_reports_zero_distillation(batch):
    v, g, _ = batch
    out = RankByGeneObjective(triplets="all")(v, g)
    assert out["distillation"].item() == 0.0
    assert out["total"].item() == pytest.approx((out["contrastive"] + 5 * out["ranking"]).item())


def test_non_finite_term_is_named(batch):
    v, g, t = batch
    t = t.clone()
    t[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="'distillation'"):
        RankByGeneObjective()(v, g, t)


def test_invalid_config():
    with pytest.raises(ValueError, match="lambda_rank must be >= 0"):
        RankByGeneObjective(lambda_rank=-1)
    with pytest.raises(ValueError, match="distill must be one of"):
        RankByGeneObjective(distill="l1")
    with pytest.raises(ValueError, match="ranking_variant must be one of"):
        RankByGeneObjective(ranking_variant="x")
