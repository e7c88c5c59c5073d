"""InfoNCE, distillation and soft-CLIP losses against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rankbygene.losses import (
    DistillationLoss,
    InfoNCELoss,
    SoftCLIPLoss,
    distillation_loss,
    info_nce_loss,
    soft_clip_loss,
)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _log_softmax_rows(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


@pytest.fixture
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)


def test_info_nce_hand_computation(pair):
    v, g = pair
    s = _unit(v.numpy()) @ _unit(g.numpy()).T / 0.1
    expected_i2g = -np.mean([_log_softmax_rows(s)[i, i] for i in range(6)])
    expected_g2i = -np.mean([_log_softmax_rows(s.T)[i, i] for i in range(6)])
    assert info_nce_loss(v, g).item() == pytest.approx(expected_i2g, rel=1e-10)
    got_sym = info_nce_loss(v, g, symmetric=True).item()
    assert got_sym == pytest.approx((expected_i2g + expected_g2i) / 2, rel=1e-10)
    assert InfoNCELoss(temperature=0.1)(v, g).item() == pytest.approx(expected_i2g)


def test_info_nce_identical_features_is_log_n():
    x = torch.ones(8, 5)
    assert info_nce_loss(x, x).item() == pytest.approx(math.log(8), rel=1e-6)
    # scale does not matter: features are normalised inside
    assert info_nce_loss(3 * x, x).item() == pytest.approx(math.log(8), rel=1e-6)


def test_info_nce_errors(pair):
    v, g = pair
    with pytest.raises(ValueError, match="temperature must be > 0"):
        info_nce_loss(v, g, temperature=0.0)
    with pytest.raises(ValueError, match=r"\(N, D\) matrix"):
        info_nce_loss(v[0], g)


def test_distillation_kinds(pair):
    s, t = pair
    sn, tn = _unit(s.numpy()), _unit(t.numpy())
    mse = np.mean(np.sum((sn - tn) ** 2, axis=1))
    cos = np.mean(np.sum(sn * tn, axis=1))
    assert distillation_loss(s, t, "mse").item() == pytest.approx(mse, rel=1e-10)
    assert distillation_loss(s, t, "cosine").item() == pytest.approx(1 - cos, rel=1e-10)
    assert distillation_loss(s, t, "infonce", temperature=0.2).item() == pytest.approx(
        info_nce_loss(s, t, temperature=0.2).item()
    )
    assert DistillationLoss("cosine")(s, t).item() == pytest.approx(1 - cos)
    assert distillation_loss(s, 2 * s).item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="kind must be one of"):
        distillation_loss(s, t, kind="kl")


def test_distillation_teacher_gets_no_gradient(pair):
    s, t = (x.clone().requires_grad_(True) for x in pair)
    for kind in ("mse", "cosine", "infonce"):
        s.grad = None
        distillation_loss(s, t, kind).backward()
        assert s.grad is not None and s.grad.abs().sum() > 0
        assert t.grad is None


def _standardise(x: np.ndarray) -> np.ndarray:
    """A LayerNorm without affine parameters (torch's eps 1e-5)."""
    return (x - x.mean(axis=1, keepdims=True)) / np.sqrt(x.var(axis=1, keepdims=True) + 1e-5)


def test_soft_clip_hand_computation(pair):
    v, g = pair
    tau = 0.5
    vn, gn = _standardise(v.numpy()), _standardise(g.numpy())
    logits = vn @ gn.T / tau
    z = (vn @ vn.T + gn @ gn.T) / 2 / tau
    targets = np.exp(_log_softmax_rows(z))
    i2g = -(targets * _log_softmax_rows(logits)).sum(axis=1)
    g2i = -(targets.T * _log_softmax_rows(logits.T)).sum(axis=1)
    expected = np.mean((i2g + g2i) / 2)
    assert soft_clip_loss(v, g, temperature=tau).item() == pytest.approx(expected, rel=1e-10)
    assert SoftCLIPLoss(tau)(v, g).item() == pytest.approx(expected)


def test_soft_clip_gradients_reach_both_sides(pair):
    v, g = (x.clone().requires_grad_(True) for x in pair)
    soft_clip_loss(v, g).backward()
    assert v.grad.abs().sum() > 0 and g.grad.abs().sum() > 0


def test_soft_clip_gradient_flows_through_the_targets_as_in_bleep(pair):
    """The image side reaches the loss through the logits and through the targets."""
    v, g = (x.clone().requires_grad_(True) for x in pair)
    soft_clip_loss(v, g).backward()
    vn, gn = F.layer_norm(v, (4,)), F.layer_norm(g, (4,))
    targets = ((vn @ vn.T + gn @ gn.T) / 2).softmax(dim=1).detach()
    logits = vn @ gn.T
    logits_only = 0.5 * (
        F.cross_entropy(logits, targets, reduction="none")
        + F.cross_entropy(logits.T, targets.T, reduction="none")
    )
    (grad,) = torch.autograd.grad(logits_only.mean(), v)
    assert not torch.allclose(v.grad, grad)


def test_soft_clip_learns_to_align_correlated_modalities():
    """Two learnable linear projections of inputs that share a latent: BLEEP's loss must
    fall well below ln N (its value for uniform targets and logits), not sit at it."""
    torch.manual_seed(0)
    n, latent, width, dim = 64, 16, 32, 16
    z = torch.randn(512, latent)
    image_in = z @ torch.randn(latent, width) + 0.1 * torch.randn(512, width)
    gene_in = z @ torch.randn(latent, width) + 0.1 * torch.randn(512, width)
    image_proj, gene_proj = torch.nn.Linear(width, dim), torch.nn.Linear(width, dim)
    params = [*image_proj.parameters(), *gene_proj.parameters()]
    opt = torch.optim.Adam(params, lr=1e-2)
    losses = []
    for _ in range(300):
        idx = torch.randint(0, 512, (n,))
        loss = soft_clip_loss(image_proj(image_in[idx]), gene_proj(gene_in[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-20:]) < 0.5 * np.log(n)
