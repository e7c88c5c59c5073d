"""The augmented views of each tile, built from lightly's view transforms.

DINO: two global crops at the encoder's input size and ``n_local_views`` small local
crops (multi-crop); SimCLR: two crops. Histology has no up or down, so vertical flips
and 90° rotations are on (p = 0.5 each); the colour jitter and grayscale take the
run's strengths (default: the paper's strong view, milder than ImageNet SSL recipes,
whose jitter would erase the stain colours that carry signal in H&E). Each view is
normalised with the encoder's own mean and std.

The DINO views are assembled here from lightly's ``DINOViewTransform`` rather than
``DINOTransform``, because lightly 1.6's ``DINOTransform`` drops ``cj_strength`` for the
second global view, which would jitter the two global views with different strengths.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from lightly.transforms.dino_transform import DINOViewTransform
from lightly.transforms.multi_view_transform import MultiViewTransform
from lightly.transforms.simclr_transform import SimCLRTransform
from PIL import Image
from torch.utils.data import Dataset

from rankbygene.models import ColourAugment, EncoderTransform

__all__ = ["TileViews", "local_crop_size", "view_transform"]

DINO_LOCAL_SCALE = (0.05, 0.4)  # lightly's (and DINO's) local crop area range
GLOBAL_BLUR = (1.0, 0.1)  # DINO: blur probabilities of the two global views
LOCAL_BLUR = 0.5
SOLARIZE = 0.2  # DINO: solarisation of the second global view
SIMCLR_BLUR = 0.5


def local_crop_size(input_size: int, local_crop_px: int | None) -> int:
    """Local crop side: given, or 3/7 of the input (DINO's 96 of 224), at least 8 px."""
    return int(local_crop_px) if local_crop_px else max(8, round(input_size * 96 / 224))


def view_transform(
    method: str,
    transform: EncoderTransform,
    colour: ColourAugment,
    *,
    min_scale: float,
    n_local_views: int = 6,
    local_crop_px: int | None = None,
) -> MultiViewTransform:
    """The multi-view transform of a method: an RGB tile (PIL) → list of float views.

    Shape:
        each view (3, S, S) float32 normalised; S = ``transform.input_size`` for global
        views, :func:`local_crop_size` for local ones.
    """
    jitter: dict[str, Any] = {
        "cj_prob": colour.p_jitter,
        "cj_strength": 1.0,  # the strengths below are the final ones
        "cj_bright": colour.brightness,
        "cj_contrast": colour.contrast,
        "cj_sat": colour.saturation,
        "cj_hue": colour.hue,
        "random_gray_scale": colour.p_grayscale,
        "hf_prob": 0.5,
        "vf_prob": 0.5,
        "rr_prob": 0.5,  # rr_degrees None: 90° rotations
        "normalize": {"mean": list(transform.mean), "std": list(transform.std)},
    }
    size = transform.input_size
    if method == "simclr":
        return SimCLRTransform(
            input_size=size, min_scale=min_scale, gaussian_blur=SIMCLR_BLUR, **jitter
        )
    if method != "dino":
        raise ValueError(f"unknown pretraining method {method!r}; use dino or simclr.")
    views = [
        DINOViewTransform(
            crop_size=size,
            crop_scale=(min_scale, 1.0),
            gaussian_blur=GLOBAL_BLUR[i],
            solarization_prob=SOLARIZE if i == 1 else 0.0,
            **jitter,
        )
        for i in range(2)
    ]
    local = DINOViewTransform(
        crop_size=local_crop_size(size, local_crop_px),
        crop_scale=DINO_LOCAL_SCALE,
        gaussian_blur=LOCAL_BLUR,
        solarization_prob=0.0,
        **jitter,
    )
    return MultiViewTransform([*views, *[local] * n_local_views])


class TileViews(Dataset):
    """The views of each tile, made on access (in the DataLoader's workers).

    Args:
        tiles: uint8 RGB tiles.
        transform: from :func:`view_transform`.

    Shape:
        tiles (N, H, W, 3); an item is a list of V views, each (3, s, s) float32.
    """

    def __init__(self, tiles: np.ndarray, transform: MultiViewTransform) -> None:
        self.tiles = tiles
        self.transform = transform

    def __len__(self) -> int:
        return len(self.tiles)

    def __getitem__(self, index: int) -> list[torch.Tensor]:
        # PIL input: what every lightly view transform takes (its solarisation needs it)
        return self.transform(Image.fromarray(np.ascontiguousarray(self.tiles[index])))
