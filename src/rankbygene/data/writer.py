"""Write one sample in the HEST-1k layout, validated and atomic.

Every importer and the synthetic generator go through :func:`write_sample`, so every
dataset on disk has been checked the same way. The three files are first written into
a temporary directory inside the dataset root (same filesystem, so ``os.replace`` is an
atomic rename), then moved into place, the metadata json LAST: a reader lists samples
by their metadata, so a sample is visible only once all its files are complete.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import scipy.sparse as sp

from rankbygene import keys
from rankbygene.fileio import write_bytes_atomic

if TYPE_CHECKING:
    import anndata as ad

logger = logging.getLogger(__name__)

__all__ = ["write_h5ad", "write_sample"]

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def write_h5ad(path: str | Path, adata: ad.AnnData) -> Path:
    """Write an AnnData as ``.h5ad`` atomically, encoded in memory first.

    HDF5 that runs out of disk space mid-file fails with errors that are not
    ``OSError`` and may leave the library in a broken state; encoding in memory and
    writing the bytes with :func:`~rankbygene.fileio.write_bytes_atomic` turns a full
    disk into an ``OSError`` naming ``path``, with nothing half-written left.

    Returns:
        The path.
    """
    try:
        from anndata.io import write_elem
    except ImportError:  # anndata < 0.11
        from anndata.experimental import write_elem

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        write_elem(f, "/", adata)
    return write_bytes_atomic(path, buffer.getbuffer())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"metadata value of type {type(obj).__name__} is not JSON serialisable")


def _validate_counts(sample_id: str, adata: ad.AnnData) -> None:
    X = adata.X
    if X is None:
        raise ValueError(f"sample '{sample_id}': adata.X is empty; store raw counts in X")
    values = X.data if sp.issparse(X) else np.asarray(X)
    if not np.issubdtype(values.dtype, np.number):
        raise ValueError(f"sample '{sample_id}': counts (X) have non-numeric dtype {values.dtype}")
    n_bad = int(np.count_nonzero(~np.isfinite(values)))
    if n_bad:
        raise ValueError(
            f"sample '{sample_id}': counts (X) hold {n_bad} NaN/inf values; raw counts must be "
            "finite: fix or drop those spots/genes before writing"
        )
    n_neg = int(np.count_nonzero(values < 0))
    if n_neg:
        raise ValueError(
            f"sample '{sample_id}': counts (X) hold {n_neg} negative values; store raw "
            "(non-negative) counts in X, not normalised or scaled values"
        )


def _validate_barcodes(sample_id: str, adata: ad.AnnData, barcodes: np.ndarray) -> None:
    obs_names = np.asarray(adata.obs_names, dtype=str)
    if not adata.obs_names.is_unique:
        dup = adata.obs_names[adata.obs_names.duplicated()].unique()[:5].tolist()
        raise ValueError(
            f"sample '{sample_id}': duplicate barcodes in adata.obs_names, e.g. {dup}; make them "
            "unique (e.g. adata.obs_names_make_unique()) or drop duplicated spots"
        )
    uniq, counts = np.unique(barcodes, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1][:5].tolist()
        raise ValueError(
            f"sample '{sample_id}': duplicate barcodes in the patch barcodes, e.g. {dup}; each "
            "spot needs exactly one patch"
        )
    if np.array_equal(obs_names, barcodes):
        return
    in_counts = set(obs_names.tolist())
    in_patches = set(barcodes.tolist())
    only_counts = len(in_counts - in_patches)
    only_patches = len(in_patches - in_counts)
    if only_counts or only_patches:
        raise ValueError(
            f"sample '{sample_id}': barcodes of counts (adata.obs_names) and patch coordinates "
            f"differ: {only_counts} spots have counts but no patch, {only_patches} have a patch "
            "but no counts; subset both to the shared barcodes before writing"
        )
    raise ValueError(
        f"sample '{sample_id}': patch barcodes are in a different order than adata.obs_names; "
        "reorder the patches (or the AnnData) so row i of both is the same spot"
    )


def _validate_arrays(
    sample_id: str, adata: ad.AnnData, img: np.ndarray, coords: np.ndarray, barcodes: np.ndarray
) -> None:
    if img.ndim != 4 or img.shape[3] != 3:
        raise ValueError(
            f"sample '{sample_id}': patches (img) must be (N, H, W, 3), got shape {img.shape}"
        )
    if img.shape[1] != img.shape[2]:
        raise ValueError(
            f"sample '{sample_id}': patches (img) must be square, got {img.shape[1]}x{img.shape[2]}"
        )
    if img.dtype != np.uint8:
        raise ValueError(
            f"sample '{sample_id}': patches (img) must be uint8 RGB, got dtype {img.dtype}; "
            "convert with np.clip(x, 0, 255).astype(np.uint8)"
        )
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"sample '{sample_id}': coords must be (N, 2) x,y, got {coords.shape}")
    if not np.isfinite(coords).all():
        raise ValueError(f"sample '{sample_id}': coords hold NaN/inf values")
    sizes = {
        "adata.n_obs": adata.n_obs,
        "img": img.shape[0],
        "coords": coords.shape[0],
        "barcodes": barcodes.shape[0],
    }
    if len(set(sizes.values())) != 1:
        raise ValueError(
            f"sample '{sample_id}': number of spots disagrees between inputs {sizes}; all must "
            "have one row per spot"
        )
    spatial = adata.obsm.get(keys.OBSM_SPATIAL) if keys.OBSM_SPATIAL in adata.obsm else None
    if spatial is not None and np.asarray(spatial).shape != (adata.n_obs, 2):
        raise ValueError(
            f"sample '{sample_id}': obsm['{keys.OBSM_SPATIAL}'] must be (n_obs, 2), got "
            f"{np.asarray(spatial).shape}"
        )


def _complete_adata(adata: ad.AnnData, coords: np.ndarray) -> ad.AnnData:
    """Fill obsm["spatial"] and the pixel obs columns from the patch centres if missing."""
    missing_spatial = keys.OBSM_SPATIAL not in adata.obsm
    missing_pxl = keys.OBS_PXL_ROW not in adata.obs or keys.OBS_PXL_COL not in adata.obs
    if not (missing_spatial or missing_pxl):
        return adata
    adata = adata.copy()  # never mutate the caller's object
    if missing_spatial:
        adata.obsm[keys.OBSM_SPATIAL] = coords.astype(np.float64)
    if missing_pxl:
        spatial = np.asarray(adata.obsm[keys.OBSM_SPATIAL], dtype=np.float64)
        adata.obs[keys.OBS_PXL_COL] = spatial[:, 0]
        adata.obs[keys.OBS_PXL_ROW] = spatial[:, 1]
    return adata


def _write_patches(
    path: Path,
    img: np.ndarray,
    coords: np.ndarray,
    barcodes: np.ndarray,
    *,
    pixel_size_um: float,
    patch_size_src: int,
    compression: str | None,
) -> None:
    n, h, w, c = img.shape
    width = max(1, max((len(b.encode("utf-8")) for b in barcodes), default=1))
    with h5py.File(path, "w") as f:
        f.create_dataset(
            keys.H5_IMG,
            data=img,
            # one chunk per patch: a random read touches exactly the patches it needs
            chunks=(1, h, w, c) if n else None,
            compression=compression,
        )
        f.create_dataset(keys.H5_COORDS, data=coords)
        # HEST stores barcodes as an (N, 1) fixed-length bytes array
        encoded = np.char.encode(barcodes, "utf-8").reshape(-1, 1).astype(f"S{width}")
        f.create_dataset(keys.H5_BARCODE, data=encoded)
        for obj in (f, f[keys.H5_IMG]):
            obj.attrs[keys.H5_ATTR_PIXEL_SIZE] = float(pixel_size_um)
            obj.attrs[keys.H5_ATTR_PATCH_SIZE] = int(h)
            obj.attrs[keys.H5_ATTR_PATCH_SIZE_SRC] = int(patch_size_src)


def write_sample(
    root: str | Path,
    sample_id: str,
    adata: ad.AnnData,
    img: np.ndarray,
    coords: np.ndarray,
    barcodes: Sequence[str] | np.ndarray,
    metadata: Mapping[str, Any],
    *,
    pixel_size_um: float,
    patch_size_src: int,
    compression: str | None = None,
    overwrite: bool = False,
) -> None:
    """Validate and atomically write one sample (st h5ad, patch h5, metadata json).

    Args:
        root: dataset directory (created if needed).
        sample_id: the sample id (letters, digits, ``._-``); names the three files.
        adata: raw counts in ``X`` (dense or sparse); ``obs_names`` are the barcodes.
            ``obsm["spatial"]`` and pixel obs columns are filled from ``coords`` if missing.
        img: patches, one per spot, in the order of ``adata.obs_names``.
        coords: patch centres in full-resolution pixels, x then y.
        barcodes: spot barcodes, equal to ``adata.obs_names`` (same order).
        metadata: HEST metadata fields (``patient``, ``st_technology``, ``organ``,
            ``pixel_size_um_estimated``, ``spot_diameter``, ``inter_spot_dist``, ...).
        pixel_size_um: µm per pixel of the stored patches (attr ``pixel_size``).
        patch_size_src: window side in full-resolution pixels (attr ``patch_size_src``).
        compression: ``None`` (default, fastest random reads) or ``"lzf"``.
        overwrite: replace an existing sample of the same id.

    Shape:
        img: (N, H, W, 3) uint8; coords: (N, 2); barcodes: (N,); adata: (N, G).

    Raises:
        ValueError: invalid inputs (message names the sample and the field), or the
            sample exists and ``overwrite`` is False.
    """
    root = Path(root)
    if not isinstance(sample_id, str) or not _SAFE_ID.match(sample_id):
        raise ValueError(
            f"sample id {sample_id!r} is not usable as a file name; use letters, digits, '.', "
            "'_' and '-' (not starting with '.' or '-')"
        )
    if compression not in (None, "lzf", "gzip"):
        raise ValueError(f"sample '{sample_id}': compression must be None or 'lzf'")
    img = np.asarray(img)
    coords_arr = np.asarray(coords)
    barcode_arr = np.asarray(barcodes, dtype=str).reshape(-1)
    _validate_arrays(sample_id, adata, img, coords_arr, barcode_arr)
    _validate_barcodes(sample_id, adata, barcode_arr)
    _validate_counts(sample_id, adata)
    coords_int = np.rint(coords_arr).astype(np.int64)

    meta_path = root / keys.METADATA_DIR / f"{sample_id}{keys.METADATA_SUFFIX}"
    st_path = root / keys.ST_DIR / f"{sample_id}{keys.ST_SUFFIX}"
    patches_path = root / keys.PATCHES_DIR / f"{sample_id}{keys.PATCHES_SUFFIX}"
    if meta_path.exists() and not overwrite:
        raise ValueError(
            f"sample '{sample_id}' already exists in {root} ({meta_path}); pass --overwrite "
            "(overwrite=True) to replace it, or choose another output directory"
        )

    meta = dict(metadata)
    meta[keys.META_ID] = sample_id
    if meta.get(keys.META_PATIENT) in (None, ""):
        logger.warning(
            "sample '%s': no '%s' in metadata; readers will use the sample id as patient",
            sample_id,
            keys.META_PATIENT,
        )

    adata = _complete_adata(adata, coords_int)
    for sub in (keys.ST_DIR, keys.PATCHES_DIR, keys.METADATA_DIR):
        (root / sub).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{sample_id}-", dir=root))
    try:
        tmp_st = tmp / st_path.name
        tmp_patches = tmp / patches_path.name
        tmp_meta = tmp / meta_path.name
        adata.write_h5ad(tmp_st)
        _write_patches(
            tmp_patches,
            img,
            coords_int,
            barcode_arr,
            pixel_size_um=pixel_size_um,
            patch_size_src=patch_size_src,
            compression=compression,
        )
        with tmp_meta.open("w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=2, default=_json_default)
        if meta_path.exists():
            # hide the old sample first, so a crash below never pairs old and new files
            meta_path.unlink()
        os.replace(tmp_st, st_path)
        os.replace(tmp_patches, patches_path)
        os.replace(tmp_meta, meta_path)  # last: the sample now exists
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.debug("wrote sample %s (%d spots) to %s", sample_id, adata.n_obs, root)
