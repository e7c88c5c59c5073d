"""Import an AnnData (raw counts, pixel coordinates) plus its image as one HEST sample.

The generic importer for data no dedicated importer reads: ``X`` holds raw counts
``(N, G)``, ``obsm["spatial"]`` the ``(N, 2)`` spot centres as (x, y) full-resolution
pixels of the image, which is opened with :func:`rankbygene.data.images.open_image`
and cut into patches by :func:`rankbygene.data.importers.base.write_imported_sample`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import anndata as ad
import numpy as np

from rankbygene import keys
from rankbygene.data.images import open_image
from rankbygene.data.importers.base import ImportSummary, write_imported_sample

logger = logging.getLogger(__name__)

__all__ = ["import_anndata"]


def import_anndata(
    adata: ad.AnnData,
    image: str | Path | np.ndarray,
    pixel_size_um: float,
    out: str | Path,
    sample_id: str,
    *,
    patient: str | None = None,
    technology: str = "unknown",
    organ: str | None = None,
    spot_diameter_um: float | None = None,
    spot_pitch_um: float | None = None,
    patch_um: float = 112.0,
    patch_px: int = 224,
    overwrite: bool = False,
) -> ImportSummary:
    """Import an AnnData with pixel coordinates plus its image as one HEST-layout sample.

    The AnnData is not modified. ``X`` must hold raw counts; ``obsm["spatial"]`` the
    spot centres as (x, y) full-resolution pixels of ``image``. ``obs["array_row"]`` and
    ``obs["array_col"]`` are kept when present (they enable grid smoothing); other obs
    columns are copied as they are.

    Args:
        adata: Spots x genes AnnData.
        image: Image path (TIFF read by region; JPEG/PNG read whole) or an RGB array.
        pixel_size_um: µm per full-resolution pixel of ``image``.
        out: Dataset root.
        sample_id: Output sample id.
        patient: Patient id; defaults to ``sample_id`` (with a warning: splits are by patient).
        technology: ST technology for the metadata.
        organ: Organ for the metadata.
        spot_diameter_um: Spot diameter in µm, if known.
        spot_pitch_um: Distance between array neighbours in µm, if known.
        patch_um: Physical window side in µm.
        patch_px: Stored patch side in pixels.
        overwrite: Replace an existing sample of the same id.

    Returns:
        :class:`ImportSummary`.

    Raises:
        ValueError: Missing ``obsm["spatial"]``, bad counts, duplicate barcodes, bad image.
    """
    source = f"sample {sample_id}"
    if keys.OBSM_SPATIAL not in adata.obsm:
        raise ValueError(
            f"{source}: adata.obsm['{keys.OBSM_SPATIAL}'] is missing; set it to the (N, 2) "
            "spot centres in full-resolution pixels, x (column) then y (row)."
        )
    spatial = np.asarray(adata.obsm[keys.OBSM_SPATIAL], dtype=np.float64)
    if spatial.ndim != 2 or spatial.shape[1] < 2:
        raise ValueError(
            f"{source}: adata.obsm['{keys.OBSM_SPATIAL}'] has shape {spatial.shape}; "
            "expected (N, 2) pixel coordinates (x, y)."
        )
    if patient is None:
        logger.warning(
            "%s: no patient given; using the sample id as patient (splits are by patient, "
            "pass patient= when several samples come from one patient).",
            source,
        )
        patient = sample_id
    has_array = {keys.OBS_ARRAY_ROW, keys.OBS_ARRAY_COL} <= set(adata.obs.columns)
    array_rc = adata.obs[[keys.OBS_ARRAY_ROW, keys.OBS_ARRAY_COL]].to_numpy() if has_array else None
    reserved = {
        keys.OBS_ARRAY_ROW,
        keys.OBS_ARRAY_COL,
        keys.OBS_PXL_ROW,
        keys.OBS_PXL_COL,
        keys.OBS_PATCH_PADDED,
    }
    obs_extra = adata.obs[[c for c in adata.obs.columns if c not in reserved]]
    reader = open_image(image)
    try:
        return write_imported_sample(
            out,
            sample_id,
            counts=adata.X,
            genes=adata.var_names.to_numpy(),
            barcodes=adata.obs_names.to_numpy(),
            pixel_xy=spatial[:, :2],
            image=reader,
            um_per_px=pixel_size_um,
            patient=patient,
            technology=technology,
            array_rc=array_rc,
            obs_extra=obs_extra,
            var_extra=adata.var,
            organ=organ,
            spot_diameter_um=spot_diameter_um,
            spot_pitch_um=spot_pitch_um,
            patch_um=patch_um,
            patch_px=patch_px,
            provenance={
                "importer": "anndata",
                "image": reader.source,
            },
            overwrite=overwrite,
        )
    finally:
        reader.close()
