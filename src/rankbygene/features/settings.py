"""Defaults of feature extraction, defined once (the functions and the CLI read them here)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EXTRACT", "TILING", "ExtractSettings", "SlideTiling"]


@dataclass(frozen=True)
class ExtractSettings:
    """How patches go through the encoder.

    Attributes:
        batch_size: patches per forward pass.
        num_workers: DataLoader workers reading and normalising patches.
        bf16: bfloat16 autocast (features stored as float32).
        channels_last: NHWC memory format.
    """

    batch_size: int = 64
    num_workers: int = 0
    bf16: bool = False
    channels_last: bool = True


@dataclass(frozen=True)
class SlideTiling:
    """How whole slides are tiled (CLAM-style).

    Attributes:
        patch_um: tile side in µm (CLAM: 256 px at 20× ≈ 128 µm).
        min_tissue: minimum tissue fraction of a kept tile.
    """

    patch_um: float = 128.0
    min_tissue: float = 0.5


EXTRACT = ExtractSettings()
TILING = SlideTiling()
