"""retrieval_predict on constructed cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rankbygene.evaluation.predictors.retrieval import retrieval_predict


def _orthonormal_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ref = torch.eye(4)  # 4 reference spots, each along one axis
    expr = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [4.0, -4.0]])
    return ref, expr, torch.tensor([[0.0, 0.0, 3.0, 0.0], [1.0, 0.9, 0.0, 0.0]])


def test_k1_copies_nearest_reference() -> None:
    ref, expr, query = _orthonormal_case()
    out = retrieval_predict(query, ref, expr, k=1, weighting="mean")
    torch.testing.assert_close(out, torch.stack([expr[2], expr[0]]))


def test_weightings_exact() -> None:
    ref, expr, query = _orthonormal_case()
    q = query[1:]  # cosine sims to refs 0 and 1: 1/|q|, 0.9/|q|
    s = torch.tensor([1.0, 0.9]) / torch.linalg.norm(q)
    mean = retrieval_predict(q, ref, expr, k=2, weighting="mean")
    torch.testing.assert_close(mean, (expr[0:1] + expr[1:2]) / 2)
    sim = retrieval_predict(q, ref, expr, k=2, weighting="similarity")
    w = s / s.sum()
    torch.testing.assert_close(sim, (w[0] * expr[0] + w[1] * expr[1])[None])
    soft = retrieval_predict(q, ref, expr, k=2, weighting="softmax", temperature=0.5)
    w = torch.softmax(s / 0.5, dim=0)
    torch.testing.assert_close(soft, (w[0] * expr[0] + w[1] * expr[1])[None])


def test_chunking_matches_brute_force() -> None:
    g = torch.Generator().manual_seed(0)
    q, r, y = (
        torch.randn(37, 8, generator=g),
        torch.randn(50, 8, generator=g),
        torch.randn(50, 5, generator=g),
    )
    out = retrieval_predict(q, r, y, k=6, weighting="mean", chunk_size=7)
    sims = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(r, dim=1).T
    expected = np.stack([y[torch.topk(sims[i], 6).indices].mean(0).numpy() for i in range(37)])
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_k_capped_and_errors() -> None:
    ref, expr, query = _orthonormal_case()
    out = retrieval_predict(query, ref, expr, k=50, weighting="mean")
    torch.testing.assert_close(out, expr.mean(0).expand(2, -1))
    with pytest.raises(ValueError, match="same trained run"):
        retrieval_predict(torch.zeros(2, 3), ref, expr)
    with pytest.raises(ValueError, match="same reference spots"):
        retrieval_predict(query, ref, expr[:3])
