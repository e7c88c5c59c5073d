"""Defaults of whole-slide tiling, defined once and cheap to import (the CLI reads them).

The tiling itself is :func:`rankbygene.data.wsi.tile_slide`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TILING", "SlideTiling"]


@dataclass(frozen=True)
class SlideTiling:
    """How whole slides are tiled (CLAM-style).

    Attributes:
        patch_um: tile side in µm (CLAM: 256 px at 20× ≈ 128 µm).
        min_tissue: minimum tissue fraction of a kept tile.
    """

    patch_um: float = 128.0
    min_tissue: float = 0.5


TILING = SlideTiling()
