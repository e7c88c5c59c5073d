"""What every importer shares: count/barcode validation and the one write path.

(Over ~350 lines because :func:`write_imported_sample` is the single path all importers
write through; it stays whole next to the validators it calls.)

Every importer ends in :func:`write_imported_sample`: it validates the counts
(:func:`counts_to_csr`, spots x genes ``(N, G)``) and barcodes (:func:`check_unique`),
cuts the ``(N, S, S, 3)`` uint8 patches (:func:`rankbygene.data.patching.cut_patches`),
builds the HEST-layout AnnData and metadata, and hands everything to
:func:`rankbygene.data.writer.write_sample`, which writes atomically. Importers that
read counts and coordinates from separate files match their spots with
:func:`align_barcodes` first. All validation happens before anything is written, so bad
input never leaves a partial sample behind. Inputs (files, AnnData objects, arrays) are
never modified.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from rankbygene import keys
from rankbygene.data import writer
from rankbygene.data.images import RegionReader
from rankbygene.data.patching import cut_patches, window_size_px

logger = logging.getLogger(__name__)

__all__ = [
    "UNS_IMPORT",
    "ImportSummary",
    "align_barcodes",
    "check_unique",
    "counts_to_csr",
    "write_imported_sample",
]

#: ``uns`` key recording how a sample was imported (source files, sizes, drops).
UNS_IMPORT = "rankbygene_import"


@dataclass(frozen=True)
class ImportSummary:
    """What an importer wrote for one sample.

    Attributes:
        sample_id: Sample id in the output dataset.
        out: Dataset root directory.
        n_spots: Spots written.
        n_dropped: Spots dropped while aligning counts and coordinates (or filtering).
        n_padded: Spots whose window left the image (white-filled, flagged in obs).
        um_per_px: µm per full-resolution pixel used to size the windows.
        window_px: Window side in full-resolution pixels.
        patch_px: Stored patch side in pixels.
    """

    sample_id: str
    out: Path
    n_spots: int
    n_dropped: int
    n_padded: int
    um_per_px: float
    window_px: int
    patch_px: int


def check_unique(names: Sequence[str] | np.ndarray, source: str, field: str) -> None:
    """Raise if ``names`` holds duplicates.

    Args:
        names: Barcodes (or other identifiers) to check.
        source: File or sample named in the error.
        field: Column or field named in the error.

    Raises:
        ValueError: Naming the source, field, how many duplicates and a few examples.
    """
    index = pd.Index(np.asarray(names, dtype=str))
    dup = index[index.duplicated()].unique()
    if len(dup):
        raise ValueError(
            f"{source}: {len(dup)} duplicate {field} value(s) (e.g. {list(dup[:5])}); each "
            "spot must appear once. Remove or rename the duplicated rows, then import again."
        )


def counts_to_csr(X: Any, source: str) -> sp.csr_matrix:
    """Validate raw counts and return them as CSR (int32 when integral, else float32).

    Args:
        X: Dense array or scipy sparse matrix, spots x genes. Not modified.
        source: File or sample named in errors.

    Raises:
        ValueError: NaN/infinite or negative entries (with how many), or not 2-D.

    Shape:
        X ``(N, G)``; output ``(N, G)`` CSR.
    """
    dtype = X.dtype if sp.issparse(X) else np.asarray(X).dtype
    if dtype.kind not in "biuf":
        raise ValueError(
            f"{source}: counts have dtype {dtype}; expected numbers. Check that the counts "
            "table has one header row and one row-name column, and no text cells."
        )
    mat = sp.csr_matrix(X, copy=True) if sp.issparse(X) else sp.csr_matrix(np.asarray(X))
    if mat.ndim != 2:
        raise ValueError(f"{source}: counts must be a 2-D spots x genes matrix.")
    data = mat.data
    if data.dtype.kind == "f":
        n_bad = int((~np.isfinite(data)).sum())
        if n_bad:
            raise ValueError(
                f"{source}: counts hold {n_bad} NaN or infinite value(s); raw counts must be "
                "finite. Fix or remove those spots/genes in the input, then import again."
            )
    n_neg = int((data < 0).sum())
    if n_neg:
        raise ValueError(
            f"{source}: counts hold {n_neg} negative value(s); X must be raw (non-negative) "
            "counts, not normalised or scaled values. Import the raw count matrix instead."
        )
    integral = data.dtype.kind in "iu" or bool(np.all(np.mod(data, 1) == 0))
    if integral and (data.size == 0 or data.max() <= np.iinfo(np.int32).max):
        mat = mat.astype(np.int32)
    else:
        if not integral:
            logger.warning(
                "%s: counts are not integers; storing them as float32, but X should hold "
                "raw counts (normalisation happens at training time).",
                source,
            )
        mat = mat.astype(np.float32)
    mat.eliminate_zeros()
    mat.sort_indices()
    return mat


def align_barcodes(
    count_barcodes: Sequence[str] | np.ndarray,
    coord_barcodes: Sequence[str] | np.ndarray,
    *,
    counts_source: str,
    coords_source: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Match spots between the counts and the coordinates; keep those in both.

    Order follows the counts. Spots present on one side only are dropped with a warning
    that says how many and from which file.

    Args:
        count_barcodes: Barcodes of the count matrix rows (unique).
        coord_barcodes: Barcodes of the coordinate table rows (unique).
        counts_source: Counts file named in messages.
        coords_source: Coordinates file named in messages.

    Returns:
        ``(count_idx, coord_idx)``: integer positions of the kept spots in each input.

    Raises:
        ValueError: No spot is shared (wrong file pairing or barcode format).

    Shape:
        Outputs ``(K,)`` int64 each.
    """
    counts_index = pd.Index(np.asarray(count_barcodes, dtype=str))
    coords_index = pd.Index(np.asarray(coord_barcodes, dtype=str))
    check_unique(counts_index, counts_source, "barcode")
    check_unique(coords_index, coords_source, "barcode")
    coord_idx = coords_index.get_indexer(counts_index)
    keep = coord_idx >= 0
    n_counts_only = int((~keep).sum())
    n_coords_only = int(len(coords_index) - keep.sum())
    if not keep.any():
        raise ValueError(
            f"no spot of {counts_source} ({len(counts_index)} barcodes, e.g. "
            f"{list(counts_index[:3])}) is in {coords_source} ({len(coords_index)} barcodes, "
            f"e.g. {list(coords_index[:3])}); check that both files belong to the same sample "
            "and use the same barcode format."
        )
    if n_counts_only:
        logger.warning(
            "%s: %d of %d spots with counts have no coordinates in %s; dropped.",
            counts_source,
            n_counts_only,
            len(counts_index),
            coords_source,
        )
    if n_coords_only:
        logger.warning(
            "%s: %d of %d spots with coordinates have no counts in %s; dropped.",
            coords_source,
            n_coords_only,
            len(coords_index),
            counts_source,
        )
    return np.flatnonzero(keep), coord_idx[keep].astype(np.int64)


def _metadata(
    sample_id: str,
    *,
    patient: str,
    technology: str,
    um_per_px: float,
    organ: str | None,
    spot_diameter_um: float | None,
    spot_pitch_um: float | None,
) -> dict[str, Any]:
    """Build the ``metadata/{id}.json`` dict (keys from :mod:`rankbygene.keys`)."""
    meta: dict[str, Any] = {
        keys.META_ID: sample_id,
        keys.META_PATIENT: patient,
        keys.META_TECHNOLOGY: technology,
        keys.META_PIXEL_SIZE: float(um_per_px),
        keys.META_SPOT_DIAMETER: spot_diameter_um,
        keys.META_SPOT_PITCH: spot_pitch_um,
    }
    if organ is not None:
        meta[keys.META_ORGAN] = organ
    return meta


def write_imported_sample(
    out: str | Path,
    sample_id: str,
    *,
    counts: Any,
    genes: Sequence[str] | np.ndarray,
    barcodes: Sequence[str] | np.ndarray,
    pixel_xy: np.ndarray,
    image: RegionReader,
    um_per_px: float,
    patient: str,
    technology: str,
    array_rc: np.ndarray | None = None,
    obs_extra: pd.DataFrame | None = None,
    var_extra: pd.DataFrame | None = None,
    organ: str | None = None,
    spot_diameter_um: float | None = None,
    spot_pitch_um: float | None = None,
    patch_um: float = 112.0,
    patch_px: int = 224,
    n_dropped: int = 0,
    provenance: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> ImportSummary:
    """Validate, cut patches, build the HEST AnnData + metadata and write one sample.

    Args:
        out: Dataset root (created if needed).
        sample_id: Output sample id.
        counts: Raw counts, spots x genes (dense or sparse); validated, never modified.
        genes: Gene names (made unique with a logged note if needed).
        barcodes: Spot barcodes (unique), the AnnData ``obs_names``.
        pixel_xy: Spot centres in full-resolution pixels, x (column) then y (row).
        image: Opened full-resolution image (see :func:`rankbygene.data.images.open_image`).
        um_per_px: µm per full-resolution pixel.
        patient: Patient id (splits are by patient).
        technology: e.g. ``"ST"`` or ``"Visium"``.
        array_rc: Array (grid) coordinates, row then column; omitted from obs if None.
        obs_extra: Extra obs columns (index ignored, row order = spots).
        var_extra: Extra var columns (index ignored, row order = genes).
        organ: Organ name for the metadata.
        spot_diameter_um: Spot diameter in µm.
        spot_pitch_um: Distance between array neighbours in µm.
        patch_um: Physical window side in µm.
        patch_px: Stored patch side in pixels.
        n_dropped: Spots dropped upstream (reported in the summary and ``uns``).
        provenance: Extra JSON-able facts stored in ``uns["rankbygene_import"]``.
        overwrite: Replace an existing sample of the same id.

    Returns:
        :class:`ImportSummary`.

    Raises:
        ValueError: Invalid counts, duplicate barcodes, shape mismatches or bad sizes.

    Shape:
        counts ``(N, G)``; pixel_xy ``(N, 2)``; array_rc ``(N, 2)``.
    """
    source = f"sample {sample_id}"
    if not isinstance(patch_px, (int, np.integer)) or patch_px < 1:
        raise ValueError(f"{source}: patch_px must be a positive integer, got {patch_px!r}.")
    X = counts_to_csr(counts, source)
    barcodes = np.asarray(barcodes, dtype=str)
    check_unique(barcodes, source, "barcode")
    pixel_xy = np.asarray(pixel_xy, dtype=np.float64)
    n = X.shape[0]
    if len(barcodes) != n or pixel_xy.shape != (n, 2):
        raise ValueError(
            f"{source}: {n} count rows but {len(barcodes)} barcodes and coordinates of shape "
            f"{pixel_xy.shape}; they must describe the same spots (N and (N, 2))."
        )
    if n == 0:
        raise ValueError(f"{source}: no spots left to import; check the inputs' barcodes.")
    if not np.isfinite(pixel_xy).all():
        raise ValueError(
            f"{source}: {int((~np.isfinite(pixel_xy)).any(axis=1).sum())} spot(s) have NaN "
            "pixel coordinates; fix or remove them in the coordinates input."
        )
    gene_index = pd.Index(np.asarray(genes, dtype=str))
    if len(gene_index) != X.shape[1]:
        raise ValueError(f"{source}: {X.shape[1]} count columns but {len(gene_index)} gene names.")
    if gene_index.has_duplicates:
        logger.info(
            "%s: %d duplicated gene names made unique with suffixes (-1, -2, ...).",
            source,
            int(gene_index.duplicated().sum()),
        )
        gene_index = pd.Index(ad.utils.make_index_unique(gene_index))

    H, W = image.shape
    outside = (pixel_xy[:, 0] < 0) | (pixel_xy[:, 0] >= W) | (pixel_xy[:, 1] < 0)
    outside |= pixel_xy[:, 1] >= H
    if outside.mean() > 0.5:
        raise ValueError(
            f"{source}: {int(outside.sum())} of {n} spot centres lie outside the image "
            f"{image.source} ({W} x {H} px); the coordinates are in full-resolution pixels, "
            "so pass the full-resolution image (not a downscaled/hires PNG) or fix µm/px."
        )

    window = window_size_px(patch_um, um_per_px)
    cut = cut_patches(image, pixel_xy, window, patch_px, desc=f"patches {sample_id}")
    n_padded = int(cut.padded.sum())
    if n_padded:
        logger.warning(
            "%s: %d of %d spot windows (%d px) leave the image %s; filled with white and "
            "flagged in obs['%s']. Drop them downstream if white borders matter.",
            source,
            n_padded,
            n,
            window,
            image.source,
            keys.OBS_PATCH_PADDED,
        )

    obs = pd.DataFrame(index=pd.Index(barcodes, name=None))
    if obs_extra is not None:
        for col in obs_extra.columns:
            obs[col] = obs_extra[col].array  # keeps categoricals; no index alignment
    if array_rc is not None:
        array_rc = np.asarray(array_rc)
        obs[keys.OBS_ARRAY_ROW] = array_rc[:, 0].astype(np.int64)
        obs[keys.OBS_ARRAY_COL] = array_rc[:, 1].astype(np.int64)
    obs[keys.OBS_PXL_ROW] = pixel_xy[:, 1]
    obs[keys.OBS_PXL_COL] = pixel_xy[:, 0]
    obs[keys.OBS_PATCH_PADDED] = cut.padded
    var = pd.DataFrame(index=gene_index)
    if var_extra is not None:
        for col in var_extra.columns:
            var[col] = var_extra[col].array
    adata = ad.AnnData(X=X, obs=obs, var=var)
    adata.obsm[keys.OBSM_SPATIAL] = pixel_xy.copy()
    adata.uns[UNS_IMPORT] = {
        **dict(provenance or {}),
        "patch_um": float(patch_um),
        "patch_px": int(patch_px),
        "window_px": int(window),
        "um_per_px": float(um_per_px),
        "n_dropped": int(n_dropped),
        "n_padded": n_padded,
    }
    metadata = _metadata(
        sample_id,
        patient=patient,
        technology=technology,
        um_per_px=um_per_px,
        organ=organ,
        spot_diameter_um=spot_diameter_um,
        spot_pitch_um=spot_pitch_um,
    )
    writer.write_sample(
        out,
        sample_id,
        adata,
        cut.patches,
        np.rint(pixel_xy).astype(np.int64),
        barcodes,
        metadata,
        pixel_size_um=float(patch_um) / patch_px,
        patch_size_src=int(window),
        overwrite=overwrite,
    )
    logger.info(
        "%s: wrote %d spots x %d genes (%d dropped, %d padded) to %s",
        source,
        n,
        X.shape[1],
        n_dropped,
        n_padded,
        out,
    )
    return ImportSummary(
        sample_id=sample_id,
        out=Path(out),
        n_spots=n,
        n_dropped=int(n_dropped),
        n_padded=n_padded,
        um_per_px=float(um_per_px),
        window_px=int(window),
        patch_px=int(patch_px),
    )
