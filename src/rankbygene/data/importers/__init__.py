"""Importers: turn her2st (legacy ST), Visium Space Ranger output, or an AnnData + image
into the HEST-1k dataset layout, cutting patches of a physical size from the image.

Each importer validates its inputs before writing anything and writes every sample
atomically through :func:`rankbygene.data.importers.base.write_imported_sample`; inputs
are only read. ``base`` holds what they share, ``anndata``, ``her2st`` and ``visium`` one
importer each. Image reading and patch cutting live in :mod:`rankbygene.data.images`
and :mod:`rankbygene.data.patching` (whole-slide feature extraction uses them too); the
names re-exported here are kept for importer users.
"""

from __future__ import annotations

from rankbygene.data.images import RegionReader, open_image
from rankbygene.data.importers.anndata import import_anndata
from rankbygene.data.importers.base import ImportSummary
from rankbygene.data.importers.her2st import estimate_um_per_px, import_her2st, list_sections
from rankbygene.data.importers.visium import import_visium, read_10x_h5, read_tissue_positions
from rankbygene.data.patching import PatchResult, cut_patches, window_size_px

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
