"""Importers: turn her2st (legacy ST), Visium Space Ranger output, or an AnnData + image
into the HEST-1k dataset layout, cutting patches of a physical size from the image.

Each importer validates its inputs before writing anything and writes every sample
atomically through :func:`rankbygene.data.writer.write_sample`; inputs are only read.
"""

from __future__ import annotations

from rankbygene.data.importers.generic import ImportSummary, import_anndata
from rankbygene.data.importers.her2st import estimate_um_per_px, import_her2st, list_sections
from rankbygene.data.importers.patching import (
    PatchResult,
    RegionReader,
    cut_patches,
    open_image,
    window_size_px,
)
from rankbygene.data.importers.visium import import_visium, read_10x_h5, read_tissue_positions

__all__ = [
    "ImportSummary",
    "PatchResult",
    "RegionReader",
    "cut_patches",
    "estimate_um_per_px",
    "import_anndata",
    "import_her2st",
    "import_visium",
    "list_sections",
    "open_image",
    "read_10x_h5",
    "read_tissue_positions",
    "window_size_px",
]
