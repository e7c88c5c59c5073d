"""Batched teacher (weak) and student (strong) augmentations on uint8 images.

Every sample gets its own random draw, vectorised over the batch with masks and
``torch.where``: no Python loop over samples. All randomness for a batch comes from
one ``torch.rand`` call, so a seeded ``torch.Generator`` reproduces it exactly.

Design decisions:
- Weak view: a uniform random element of the dihedral group D4 (the 8 flips and
  90° rotations of a square), drawn as independent transpose / horizontal flip /
  vertical flip bits. This is the same distribution as "random h-flip, random
  v-flip, random 90° rotation" and needs no per-rotation gather. Square images only.
- Strong view: h/v flips, then colour jitter (brightness, contrast, saturation 0.2,
  hue 0.1) with p = 0.8, then grayscale with p = 0.2 (the paper's strengths, the
  defaults of :class:`ColourAugment`; a training config may set others, since strong
  colour changes also erase stain cues that carry signal). The jitter factors are drawn
  per sample and applied as batched tensor ops (torchvision's formulas: blends with
  black, the mean gray level and the gray image; hue rotation in HSV). Unlike
  torchvision's ``ColorJitter`` the four ops run in a fixed order (brightness,
  contrast, saturation, hue) rather than a random one per call, which keeps the
  batch vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms.v2 import functional as TF


@dataclass(frozen=True)
class ColourAugment:
    """Colour strengths of the strong view; the defaults are the paper's.

    Attributes:
        brightness: factor drawn in [1 − b, 1 + b].
        contrast: factor drawn in [1 − c, 1 + c].
        saturation: factor drawn in [1 − s, 1 + s].
        hue: shift drawn in [−h, h] turns (at most 0.5).
        p_jitter: probability of the colour jitter.
        p_grayscale: probability of the grayscale conversion.
    """

    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.1
    p_jitter: float = 0.8
    p_grayscale: float = 0.2

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f"{name} strength must be within [0, 1]; got {getattr(self, name)}."
                )
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError(f"hue strength must be within [0, 0.5]; got {self.hue}.")
        for name in ("p_jitter", "p_grayscale"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f"{name} must be a probability in [0, 1]; got {getattr(self, name)}."
                )


PAPER_COLOUR = ColourAugment()


def _check_images(x: torch.Tensor, square: bool) -> None:
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(
            f"augmentations expect a uint8 (B, 3, H, W) batch, got {x.dtype} {tuple(x.shape)}."
        )
    if square and x.shape[-1] != x.shape[-2]:
        raise ValueError(
            f"90° rotations need square patches, got {x.shape[-2]}x{x.shape[-1]}; "
            "cut square patches."
        )


def _draws(x: torch.Tensor, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """(B, n) uniform draws on x's device, from ``generator`` when given."""
    if generator is None:
        return torch.rand(x.shape[0], n, device=x.device)
    return torch.rand(x.shape[0], n, generator=generator, device=generator.device).to(x.device)


def _where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample select: ``a`` where ``mask`` (B,) is true, else ``b``."""
    return torch.where(mask[:, None, None, None], a, b)


def _flips(x: torch.Tensor, hflip: torch.Tensor, vflip: torch.Tensor) -> torch.Tensor:
    x = _where(hflip, x.flip(-1), x)
    return _where(vflip, x.flip(-2), x)


def weak_augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random flips and 90° rotations, per sample (the teacher's view).

    Args:
        x: Square RGB patches, uint8.
        generator: Randomness; the same seed gives the same output.

    Shape:
        x: (B, 3, S, S); output: (B, 3, S, S) uint8, pixel values only moved.
    """
    _check_images(x, square=True)
    u = _draws(x, 3, generator) < 0.5
    x = _where(u[:, 0], x.transpose(-1, -2), x)
    return _flips(x, u[:, 1], u[:, 2])


def _gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma, as torchvision. Shape: (B, 3, H, W) → (B, 1, H, W)."""
    return TF.rgb_to_grayscale(x, num_output_channels=1)


def _blend(a: torch.Tensor, b: torch.Tensor | float, ratio: torch.Tensor) -> torch.Tensor:
    """ratio·a + (1 − ratio)·b clamped to [0, 1], with a per-sample ratio (B,)."""
    r = ratio[:, None, None, None]
    return (r * a + (1.0 - r) * b).clamp_(0.0, 1.0)


def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] → HSV with hue in [0, 1). Shape: (B, 3, H, W) → same."""
    r, g, b = x.unbind(1)
    maxc = x.amax(1)
    minc = x.amin(1)
    delta = maxc - minc
    gray = delta == 0
    sat = delta / torch.where(maxc == 0, torch.ones_like(maxc), maxc)
    safe = torch.where(gray, torch.ones_like(delta), delta)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    hue = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    hue = torch.where(gray, torch.zeros_like(hue), (hue / 6.0) % 1.0)
    return torch.stack((hue, sat, maxc), dim=1)


def _hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """HSV (hue in [0, 1)) → RGB in [0, 1]. Shape: (B, 3, H, W) → same.

    Closed form c_n = V − V·S·clamp(min(k, 4 − k), 0, 1) with k = (n + 6H) mod 6 and
    n = 5, 3, 1 for R, G, B: all three channels in a few batched ops, no sector gather.
    """
    h, s, v = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    n = torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype)[None, :, None, None]
    k = (n + 6.0 * h).remainder(6.0)
    return v - v * s * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)


def color_jitter(
    x: torch.Tensor,
    brightness: torch.Tensor,
    contrast: torch.Tensor,
    saturation: torch.Tensor,
    hue: torch.Tensor,
) -> torch.Tensor:
    """Per-sample brightness, contrast, saturation and hue changes, in this order.

    Same formulas as ``torchvision.transforms.v2.functional.adjust_*`` with one
    factor per sample.

    Args:
        x: RGB in [0, 1], float.
        brightness: Factors (1 = unchanged).
        contrast: Factors (1 = unchanged).
        saturation: Factors (1 = unchanged).
        hue: Hue shifts in [−0.5, 0.5] turns (0 = unchanged).

    Shape:
        x: (B, 3, H, W); factors: (B,); output: (B, 3, H, W).
    """
    x = _blend(x, 0.0, brightness)
    x = _blend(x, _gray(x).mean(dim=(-3, -2, -1), keepdim=True), contrast)
    x = _blend(x, _gray(x), saturation)
    hsv = _rgb_to_hsv(x)
    hsv = torch.cat(((hsv[:, :1] + hue[:, None, None, None]) % 1.0, hsv[:, 1:]), dim=1)
    return _hsv_to_rgb(hsv)


def _uniform_factor(u: torch.Tensor, strength: float, centre: float) -> torch.Tensor:
    """Map U[0,1) draws to U[centre − strength, centre + strength)."""
    return centre - strength + 2.0 * strength * u


def strong_augment(
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    colour: ColourAugment = PAPER_COLOUR,
) -> torch.Tensor:
    """Flips, colour jitter (p=0.8) and grayscale (p=0.2), per sample (the student's view).

    Args:
        x: RGB patches, uint8.
        generator: Randomness; the same seed gives the same output.
        colour: Jitter strengths and probabilities (default: the paper's).

    Shape:
        x: (B, 3, H, W); output: (B, 3, H, W) uint8.
    """
    _check_images(x, square=False)
    u = _draws(x, 8, generator)
    x = _flips(x, u[:, 0] < 0.5, u[:, 1] < 0.5)
    jitter = u[:, 2] < colour.p_jitter
    gray = u[:, 3] < colour.p_grayscale
    if not bool((jitter | gray).any()):
        return x
    b, c, s, h = colour.brightness, colour.contrast, colour.saturation, colour.hue
    xf = TF.to_dtype(x, torch.float32, scale=True)
    jittered = color_jitter(
        xf,
        _uniform_factor(u[:, 4], b, 1.0),
        _uniform_factor(u[:, 5], c, 1.0),
        _uniform_factor(u[:, 6], s, 1.0),
        _uniform_factor(u[:, 7], h, 0.0),
    )
    xf = _where(jitter, jittered, xf)
    xf = _where(gray, _gray(xf).expand_as(xf), xf)
    out = (xf * 255.0).round_().clamp_(0, 255).to(torch.uint8)
    # samples that drew neither op stay bit-identical (no float round trip)
    return _where(jitter | gray, out, x)
