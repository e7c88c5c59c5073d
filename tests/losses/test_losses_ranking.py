"""Ranking-consistency loss and rank accuracy against brute-force loops."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rankbygene.losses import (
    RankingConsistencyLoss,
    rank_accuracy,
    rank_accuracy_full,
    ranking_consistency_loss,
    sample_pair_permutations,
)


def _sims(v: torch.Tensor, g: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    vn, gn = F.normalize(v.double(), dim=1), F.normalize(g.double(), dim=1)
    return (vn @ vn.T).numpy(), (gn @ gn.T).numpy()


def _hinge(sv: np.ndarray, sg: np.ndarray, i: int, j: int, k: int) -> float:
    dg = sg[i, j] - sg[i, k]
    dv = sv[i, j] - sv[i, k]
    return max(0.0, float(np.sign(dg)) * (dg - dv))


def _brute_all(v: torch.Tensor, g: torch.Tensor) -> float:
    sv, sg = _sims(v, g)
    n = len(sv)
    vals = [
        _hinge(sv, sg, i, j, k)
        for i, j, k in itertools.product(range(n), repeat=3)
        if len({i, j, k}) == 3
    ]
    assert len(vals) == n * (n - 1) * (n - 2)
    return float(np.mean(vals))


def _brute_sampled(v: torch.Tensor, g: torch.Tensor, perm: np.ndarray) -> float:
    sv, sg = _sims(v, g)
    n = len(sv)
    vals = []
    for i in range(n):
        for t in range(n - 1):
            vals.append(_hinge(sv, sg, i, perm[i, t], perm[i, (t + 1) % (n - 1)]))
    return float(np.mean(vals))


@pytest.fixture
def feats() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.randn(7, 5, dtype=torch.float64), torch.randn(7, 4, dtype=torch.float64)


def test_all_triplets_matches_brute_force(feats):
    v, g = feats
    got = ranking_consistency_loss(v, g, triplets="all")
    assert got.item() == pytest.approx(_brute_all(v, g), abs=1e-6)
    assert got.item() > 0


def test_permutations_are_of_the_other_spots():
    perm = sample_pair_permutations(9, torch.Generator().manual_seed(3))
    assert perm.shape == (9, 8)
    for i, row in enumerate(perm.tolist()):
        assert sorted(row) == [j for j in range(9) if j != i]
    # same seed, same permutations; another seed, other permutations
    again = sample_pair_permutations(9, torch.Generator().manual_seed(3))
    other = sample_pair_permutations(9, torch.Generator().manual_seed(4))
    assert torch.equal(perm, again)
    assert not torch.equal(perm, other)


def test_sampled_matches_brute_force_with_same_permutations(feats):
    v, g = feats
    perm = sample_pair_permutations(len(v), torch.Generator().manual_seed(11)).numpy()
    got = ranking_consistency_loss(v, g, generator=torch.Generator().manual_seed(11))
    assert got.item() == pytest.approx(_brute_sampled(v, g, perm), abs=1e-9)


def test_sampled_is_unbiased_for_all(feats):
    v, g = feats
    exact = ranking_consistency_loss(v, g, triplets="all").item()
    draws = np.array(
        [
            ranking_consistency_loss(v, g, generator=torch.Generator().manual_seed(s)).item()
            for s in range(400)
        ]
    )
    # E[sampled] = all exactly (each sampled pair is a uniform ordered pair). The mean of
    # 400 i.i.d. draws is within 4 standard errors of it unless something is biased.
    stderr = draws.std(ddof=1) / math.sqrt(len(draws))
    assert draws.std() > 0  # the draws really differ
    assert abs(draws.mean() - exact) < 4 * stderr


def test_tiny_batch_sampled_equals_all():
    # N=3: each anchor has the two ordered pairs (a, b), (b, a): sampled is exact
    torch.manual_seed(1)
    v, g = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    a = ranking_consistency_loss(v, g, triplets="all")
    s = ranking_consistency_loss(v, g, generator=torch.Generator().manual_seed(0))
    assert s.item() == pytest.approx(a.item(), abs=1e-12)


def test_zero_when_image_equals_gene_and_no_penalty_on_gene_ties():
    torch.manual_seed(2)
    g = torch.randn(6, 8)
    assert ranking_consistency_loss(g.clone(), g, triplets="all").item() == pytest.approx(
        0.0, abs=1e-6
    )
    # all gene vectors identical: every Δg is 0 → sign 0 → no penalty whatever V is
    g_tied = torch.ones(6, 8)
    assert ranking_consistency_loss(torch.randn(6, 8), g_tied, triplets="all").item() == 0.0


def test_gradient_flow_and_stop_gradient(feats):
    v, g = (x.clone().requires_grad_(True) for x in feats)
    for triplets in ("sampled", "all"):
        v.grad, g.grad = None, None
        ranking_consistency_loss(v, g, triplets=triplets, generator=torch.Generator()).backward()
        assert v.grad is not None and v.grad.abs().sum() > 0
        assert g.grad is None
        v.grad = None
        ranking_consistency_loss(
            v, g, triplets=triplets, stop_gradient=False, generator=torch.Generator()
        ).backward()
        assert g.grad is not None and g.grad.abs().sum() > 0


def test_reference_code_variant_hand_computation():
    torch.manual_seed(5)
    v, g = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    got = ranking_consistency_loss(
        v, g, variant="reference-code", generator=torch.Generator().manual_seed(9)
    )
    perm = torch.rand(5, generator=torch.Generator().manual_seed(9)).argsort().tolist()
    sv, sg = _sims(v, g)

    def softmax_rows(s: np.ndarray) -> np.ndarray:
        e = np.exp(s)
        return e / e.sum(axis=1, keepdims=True)

    pv, pg = softmax_rows(sv), softmax_rows(sg)
    total = 0.0
    for i in range(5):
        for c in range(5):
            cur, prev = perm[c], perm[(c - 1) % 5]
            dv = pv[i, cur] - pv[i, prev]
            dg = pg[i, cur] - pg[i, prev]
            total += max(0.0, abs(dv) - abs(dg))
    assert got.item() == pytest.approx(total / 25, abs=1e-12)
    assert got.item() > 0


def test_module_and_errors(feats):
    v, g = feats
    mod = RankingConsistencyLoss(triplets="all")
    assert mod(v, g).item() == pytest.approx(ranking_consistency_loss(v, g, "all").item())
    with pytest.raises(ValueError, match="triplets must be one of"):
        ranking_consistency_loss(v, g, triplets="some")
    with pytest.raises(ValueError, match="variant must be one of"):
        RankingConsistencyLoss(variant="code")
    with pytest.raises(ValueError, match="at least 3 spots"):
        ranking_consistency_loss(v[:2], g[:2])
    with pytest.raises(ValueError, match="same spots row by row"):
        ranking_consistency_loss(v, g[:4])


def test_rank_accuracy_values():
    torch.manual_seed(3)
    g = torch.randn(16, 8)
    gen = torch.Generator().manual_seed(0)
    # identical embeddings: every ranking agrees; anti-aligned similarities: none do
    assert rank_accuracy(g, g, n_draws=50, generator=gen) == 1.0
    assert rank_accuracy_full(g, g, generator=gen) == 1.0
    acc = rank_accuracy_full(torch.randn(16, 8), g, generator=gen)
    assert 0.3 < acc < 0.7
    # the paper's estimate: same seed, same draws; values are fractions of n_draws
    v = torch.randn(16, 8)
    a = rank_accuracy(v, g, n_draws=8, generator=torch.Generator().manual_seed(1))
    b = rank_accuracy(v, g, n_draws=8, generator=torch.Generator().manual_seed(1))
    assert a == b and (a * 8) == pytest.approx(round(a * 8))
    assert math.isnan(rank_accuracy_full(torch.randn(5, 3), torch.ones(5, 3)))


def test_rank_accuracy_brute_force_draws():
    torch.manual_seed(4)
    v, g = torch.randn(10, 6, dtype=torch.float64), torch.randn(10, 6, dtype=torch.float64)
    sv, sg = _sims(v, g)
    perm = sample_pair_permutations(10, torch.Generator().manual_seed(2)).numpy()
    correct = [
        np.sign(sv[i, perm[i, t]] - sv[i, perm[i, (t + 1) % 9]])
        == np.sign(sg[i, perm[i, t]] - sg[i, perm[i, (t + 1) % 9]])
        for i in range(10)
        for t in range(9)
    ]
    got = rank_accuracy_full(v, g, generator=torch.Generator().manual_seed(2))
    assert got == pytest.approx(float(np.mean(correct)))


def test_optimising_v_makes_ranking_loss_fall_and_accuracy_rise():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add contention on a shared host
    try:
        _optimise_and_check()
    finally:
        torch.set_num_threads(threads)


def _optimise_and_check() -> None:
    torch.manual_seed(0)
    g = torch.randn(32, 16)
    v = torch.randn(32, 16, requires_grad=True)
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam([v], lr=0.05)
    start_loss = ranking_consistency_loss(v, g, triplets="all").item()
    start_acc = rank_accuracy_full(v, g, generator=gen)
    for _ in range(150):
        opt.zero_grad()
        ranking_consistency_loss(v, g, generator=gen).backward()
        opt.step()
    end_loss = ranking_consistency_loss(v, g, triplets="all").item()
    end_acc = rank_accuracy_full(v, g, generator=gen)
    assert start_loss > 0.05 and start_acc < 0.7
    assert end_loss < 0.05 * start_loss
    assert end_acc > 0.95
