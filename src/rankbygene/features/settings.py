"""Defaults of feature extraction, defined once (the functions and the CLI read them here)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EXTRACT", "TILING", "ExtractSettings", "SlideTiling"]

# Slide tiling is data-layer work (pretraining tiles slides too); its defaults are
# re-exported here beside the extraction ones, where the CLI reads them.
from rankbygene.data.tiling import TILING, SlideTiling


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


EXTRACT = ExtractSettings()
