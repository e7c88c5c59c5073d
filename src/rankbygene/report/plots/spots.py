"""Spots of a spatial map: their diameter in ``obsm["spatial"]`` units, and drawing them
as circles of that diameter (so a map shows the tissue's real coverage at any size)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import EllipseCollection
from matplotlib.colors import Normalize
from scipy.spatial import cKDTree

from rankbygene import keys

__all__ = [
    "CMAP",
    "SPOT_TO_PITCH",
    "draw_spots",
    "estimate_spot_diameter",
    "resolve_spot_diameter",
    "spot_diameter_from_metadata",
]

SPOT_TO_PITCH = 0.55
"""Spot diameter / centre spacing used when the diameter is unknown (Visium 55/100 µm,
legacy ST 100/200 µm)."""
CMAP = "viridis"


def estimate_spot_diameter(xy: np.ndarray, ratio: float = SPOT_TO_PITCH) -> float:
    """Spot diameter from the layout: ``ratio`` × median nearest-neighbour distance.

    Shape:
        xy: (N, 2) spot centres.
    """
    xy = np.asarray(xy, dtype=float)
    if len(xy) >= 2:
        dist, _ = cKDTree(xy).query(xy, k=2)
        nn = dist[:, 1][dist[:, 1] > 0]
        if nn.size:
            return float(np.median(nn) * ratio)
    extent = float(np.ptp(xy, axis=0).max()) if len(xy) else 0.0
    return extent / 50 if extent > 0 else 1.0


def _uns_diameter(uns: Mapping[str, Any]) -> float | None:
    """``spot_diameter_px`` (top level or under ``rankbygene``), or the Visium/scanpy
    ``uns["spatial"][library]["scalefactors"]["spot_diameter_fullres"]``."""
    candidates = [uns.get("spot_diameter_px")]
    own = uns.get("rankbygene")
    if isinstance(own, Mapping):
        candidates.append(own.get("spot_diameter_px"))
    spatial = uns.get("spatial")
    if isinstance(spatial, Mapping):
        for lib in spatial.values():
            factors = lib.get("scalefactors") if isinstance(lib, Mapping) else None
            if isinstance(factors, Mapping):
                candidates.append(factors.get("spot_diameter_fullres"))
    for value in candidates:
        try:
            d = float(np.asarray(value).ravel()[0]) if value is not None else math.nan
        except (TypeError, ValueError, IndexError):
            continue
        if math.isfinite(d) and d > 0:
            return d
    return None


def resolve_spot_diameter(
    adata: ad.AnnData, spot_diameter: float | None = None
) -> tuple[float, str]:
    """Spot diameter in ``obsm["spatial"]`` units and where it came from.

    Order: ``spot_diameter`` if given; the predictions' ``uns`` (``spot_diameter_px``
    or Visium scale factors); else :func:`estimate_spot_diameter`.

    Returns:
        (diameter, source) with source a short phrase for captions.
    """
    if spot_diameter is not None and spot_diameter > 0:
        return float(spot_diameter), "as given"
    from_uns = _uns_diameter(adata.uns)
    if from_uns is not None:
        return from_uns, "from the predictions file"
    xy = np.asarray(adata.obsm[keys.OBSM_SPATIAL], dtype=float)
    return (
        estimate_spot_diameter(xy),
        f"estimated as {SPOT_TO_PITCH:g} × the median spot spacing",
    )


def spot_diameter_from_metadata(data_dir: str | Path, sample_id: str) -> float | None:
    """Spot diameter in full-resolution pixels from ``metadata/{id}.json``, if known.

    ``spot_diameter`` (µm) / ``pixel_size_um_estimated`` (µm per pixel); None when the
    file or either value is missing.
    """
    path = Path(data_dir) / keys.METADATA_DIR / f"{sample_id}.json"
    try:
        meta = json.loads(path.read_text())
        diameter = float(meta[keys.META_SPOT_DIAMETER])
        um_per_px = float(meta[keys.META_PIXEL_SIZE])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (diameter > 0 and um_per_px > 0):
        return None
    return diameter / um_per_px


def draw_spots(
    ax: Axes, xy: np.ndarray, values: np.ndarray, diameter: float, norm: Normalize
) -> EllipseCollection:
    """Spots as filled circles of ``diameter`` data units; y grows downwards (image)."""
    spots = EllipseCollection(
        widths=diameter,
        heights=diameter,
        angles=0.0,
        units="xy",
        offsets=xy,
        offset_transform=ax.transData,
        cmap=CMAP,
        norm=norm,
        linewidths=0,
    )
    spots.set_array(np.ma.masked_invalid(values))
    ax.add_collection(spots)
    r = 0.75 * diameter  # radius and a margin, so edge spots do not touch the frame
    ax.set_xlim(xy[:, 0].min() - r, xy[:, 0].max() + r)
    ax.set_ylim(xy[:, 1].max() + r, xy[:, 1].min() - r)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#bbbbbb")
    return spots
