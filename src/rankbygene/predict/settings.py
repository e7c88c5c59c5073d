"""Defaults of ``rankbygene predict``, defined once (the functions and the CLI read them here)."""

from __future__ import annotations

from dataclasses import dataclass

from rankbygene.features.settings import EXTRACT, TILING

__all__ = ["PATCH_UM_TOLERANCE", "PREDICT", "PredictSettings"]

PATCH_UM_TOLERANCE = 0.02
"""Relative difference of patch sizes (µm) still taken as the same window: rounding a
window to whole pixels moves it by up to half a pixel."""


@dataclass(frozen=True)
class PredictSettings:
    """How slides and sections are predicted.

    Attributes:
        batch_size: tiles or spots per forward pass of the encoder.
        min_tissue: minimum tissue fraction of a kept slide tile (as ``extract --slides``).
        max_maps: genes given a map per slide when ``--genes`` is not given (the first of
            the predictor's panel); the h5ad and GeoJSON always hold every gene.
        map_alpha: opacity of the heatmap over the slide thumbnail.
    """

    batch_size: int = EXTRACT.batch_size
    min_tissue: float = TILING.min_tissue
    max_maps: int = 8
    map_alpha: float = 0.65


PREDICT = PredictSettings()
