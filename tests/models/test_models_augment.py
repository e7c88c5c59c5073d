"""Weak/strong batched augmentations: determinism, invariants, reference formulas."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from rankbygene.models import color_jitter, strong_augment, weak_augment


def _batch(n: int = 6, size: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("aug", [weak_augment, strong_augment])
def test_deterministic_under_seed_and_keeps_dtype_shape(aug):
    x = _batch(16)
    a = aug(x, generator=torch.Generator().manual_seed(1))
    b = aug(x, generator=torch.Generator().manual_seed(1))
    c = aug(x, generator=torch.Generator().manual_seed(2))
    assert a.dtype == torch.uint8 and a.shape == x.shape
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert aug(x).shape == x.shape  # global RNG path


def test_weak_preserves_pixel_multiset_per_image():
    x = _batch(32)
    y = weak_augment(x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        x.flatten(1).sort(dim=1).values, y.flatten(1).sort(dim=1).values, rtol=0, atol=0
    )
    assert not torch.equal(x, y)


def test_weak_draws_the_eight_symmetries_per_sample_uniformly():
    base = torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4).expand(1, 3, 4, 4)
    symmetries = []
    for k in range(4):
        r = torch.rot90(base, k, dims=(-2, -1))
        symmetries += [r, r.flip(-1)]
    n = 800
    y = weak_augment(base.expand(n, 3, 4, 4).contiguous(), torch.Generator().manual_seed(0))
    which = torch.stack([(y == s).flatten(1).all(dim=1) for s in symmetries], dim=1)
    assert bool(which.sum(dim=1).eq(1).all())  # every output is exactly one symmetry
    counts = which.sum(dim=0).float()
    # 100 expected each; binomial sd ≈ 9.4, so ±40 is > 4 sd
    assert bool(((counts - n / 8).abs() < 40).all()), counts


def test_color_jitter_matches_torchvision_per_sample():
    torch.manual_seed(0)
    x = torch.rand(5, 3, 6, 6)
    b = torch.tensor([0.8, 1.0, 1.2, 0.9, 1.1])
    c = torch.tensor([1.2, 0.8, 1.0, 1.1, 0.9])
    s = torch.tensor([0.9, 1.2, 0.8, 1.0, 1.1])
    h = torch.tensor([0.1, -0.1, 0.0, 0.05, -0.03])
    got = color_jitter(x, b, c, s, h)
    for i in range(5):
        ref = TF.adjust_brightness(x[i], float(b[i]))
        ref = TF.adjust_contrast(ref, float(c[i]))
        ref = TF.adjust_saturation(ref, float(s[i]))
        ref = TF.adjust_hue(ref, float(h[i]))
        torch.testing.assert_close(got[i], ref, atol=1e-5, rtol=0)


def test_strong_probabilities_of_grayscale_and_untouched():
    n = 600
    x = _batch(n, size=4, seed=3)
    y = strong_augment(x, generator=torch.Generator().manual_seed(0))
    gray = (y[:, 0] == y[:, 1]).flatten(1).all(1) & (y[:, 1] == y[:, 2]).flatten(1).all(1)
    flips = [x, x.flip(-1), x.flip(-2), x.flip(-1).flip(-2)]
    untouched = torch.stack([(y == f).flatten(1).all(1) for f in flips]).any(0)
    # p(gray) = 0.2 (sd 0.016 at n=600), p(no jitter and no gray) = 0.2·0.8 = 0.16 (sd 0.015)
    assert abs(gray.float().mean().item() - 0.2) < 0.07
    assert abs(untouched.float().mean().item() - 0.16) < 0.07


def test_input_checks():
    with pytest.raises(ValueError, match="uint8"):
        weak_augment(torch.rand(2, 3, 4, 4))
    with pytest.raises(ValueError, match="need square patches"):
        weak_augment(torch.zeros(2, 3, 4, 6, dtype=torch.uint8))
    assert strong_augment(torch.zeros(2, 3, 4, 6, dtype=torch.uint8)).shape == (2, 3, 4, 6)
