"""Importer for 10x Genomics Visium Space Ranger output plus the full-resolution image.

Inputs (``spaceranger`` may be the run folder holding ``outs/`` or ``outs/`` itself)::

    filtered_feature_bc_matrix.h5        10x HDF5: group "matrix" (CSC genes x barcodes)
    spatial/tissue_positions.csv         headed (Space Ranger >= 2.0), or
    spatial/tissue_positions_list.csv    header-less (Space Ranger 1.x); same columns:
                                         barcode,in_tissue,array_row,array_col,
                                         pxl_row_in_fullres,pxl_col_in_fullres
    spatial/scalefactors_json.json       spot_diameter_fullres, tissue_hires_scalef, ...

The full-resolution image is given separately (Space Ranger does not copy it): a
tiled/pyramidal TIFF is read tile by tile, never whole.

Spots kept: in-tissue spots present in the matrix. µm per pixel = 55 µm (the Visium
spot diameter) / ``spot_diameter_fullres`` unless given.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from rankbygene import keys
from rankbygene.data.images import open_image
from rankbygene.data.importers.base import (
    ImportSummary,
    align_barcodes,
    check_unique,
    write_imported_sample,
)

logger = logging.getLogger(__name__)

__all__ = [
    "VISIUM_SPOT_DIAMETER_UM",
    "VISIUM_SPOT_PITCH_UM",
    "TenxMatrix",
    "import_visium",
    "read_10x_h5",
    "read_scalefactors",
    "read_tissue_positions",
]

VISIUM_SPOT_DIAMETER_UM = 55.0
"""Visium capture spot diameter (µm)."""
VISIUM_SPOT_PITCH_UM = 100.0
"""Centre-to-centre distance of neighbouring Visium spots (µm)."""
VISIUM_TECHNOLOGY = "Visium"

MATRIX_H5 = "filtered_feature_bc_matrix.h5"
SPATIAL_DIR = "spatial"
POSITIONS_NEW = "tissue_positions.csv"
POSITIONS_OLD = "tissue_positions_list.csv"
SCALEFACTORS = "scalefactors_json.json"
POSITION_COLUMNS = (
    "barcode",
    keys.OBS_IN_TISSUE,
    keys.OBS_ARRAY_ROW,
    keys.OBS_ARRAY_COL,
    keys.OBS_PXL_ROW,
    keys.OBS_PXL_COL,
)
_GENE_EXPRESSION = "Gene Expression"


@dataclass(frozen=True)
class TenxMatrix:
    """A 10x feature-barcode matrix, spots as rows.

    Attributes:
        counts: ``(N, G)`` CSR raw counts.
        barcodes: ``(N,)`` str.
        gene_names: ``(G,)`` str (feature names, may repeat).
        gene_ids: ``(G,)`` str (Ensembl ids).
    """

    counts: sp.csr_matrix
    barcodes: np.ndarray
    gene_names: np.ndarray
    gene_ids: np.ndarray


def _strings(ds: h5py.Dataset) -> np.ndarray:
    """Decode an HDF5 bytes/str dataset to a ``(N,)`` str array."""
    return np.asarray(ds.asstr()[()], dtype=str).reshape(-1)


def read_10x_h5(path: str | Path) -> TenxMatrix:
    """Read a 10x HDF5 feature-barcode matrix with h5py (no scanpy needed).

    The CSC genes x barcodes arrays are reinterpreted as CSR barcodes x genes (same
    ``data``/``indices``/``indptr``), so nothing is copied or densified. Only features of
    type "Gene Expression" are kept when the file lists feature types. The legacy
    (Cell Ranger 2) layout with one group per genome is read too.

    Raises:
        ValueError: Missing or unreadable file, or not a 10x matrix.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"10x matrix {path}: file not found; pass --spaceranger the Space Ranger run "
            f"folder (or its outs/) that holds {MATRIX_H5}."
        )
    try:
        with h5py.File(path, "r") as f:
            if "matrix" in f:
                grp = f["matrix"]
                names = _strings(grp["features/name"])
                ids = _strings(grp["features/id"])
                types = (
                    _strings(grp["features/feature_type"])
                    if "features/feature_type" in grp
                    else None
                )
            else:
                genomes = [k for k in f if isinstance(f[k], h5py.Group) and "barcodes" in f[k]]
                if len(genomes) != 1:
                    raise ValueError(
                        f"10x matrix {path}: no 'matrix' group (found {sorted(f)}); expected a "
                        "Space Ranger filtered_feature_bc_matrix.h5."
                    )
                grp = f[genomes[0]]
                names, ids, types = _strings(grp["gene_names"]), _strings(grp["genes"]), None
            n_genes, n_barcodes = (int(v) for v in grp["shape"][()])
            data = grp["data"][()]
            indices = grp["indices"][()]
            indptr = grp["indptr"][()]
            barcodes = _strings(grp["barcodes"])
    except (OSError, KeyError) as exc:
        raise ValueError(
            f"10x matrix {path}: cannot be read ({exc}); re-copy the file from the Space "
            "Ranger outs/ folder."
        ) from exc
    counts = sp.csr_matrix((data, indices, indptr), shape=(n_barcodes, n_genes))
    if types is not None and (types != _GENE_EXPRESSION).any():
        keep = types == _GENE_EXPRESSION
        logger.info(
            "%s: keeping %d '%s' features of %d (dropping other feature types).",
            path,
            int(keep.sum()),
            _GENE_EXPRESSION,
            len(types),
        )
        counts, names, ids = counts[:, keep], names[keep], ids[keep]
    return TenxMatrix(counts=counts, barcodes=barcodes, gene_names=names, gene_ids=ids)


def _outs_dir(spaceranger: str | Path) -> Path:
    """Return the folder holding the matrix (``spaceranger/outs`` or ``spaceranger``)."""
    root = Path(spaceranger)
    for candidate in (root / "outs", root):
        if (candidate / MATRIX_H5).is_file():
            return candidate
    raise ValueError(
        f"Space Ranger folder {root}: no {MATRIX_H5} in {root / 'outs'} or {root}; pass "
        "--spaceranger the run folder (or its outs/)."
    )


def read_tissue_positions(spatial_dir: str | Path) -> pd.DataFrame:
    """Read ``tissue_positions.csv`` (headed) or ``tissue_positions_list.csv`` (no header).

    Returns:
        Table indexed by barcode with ``in_tissue``, ``array_row``, ``array_col``,
        ``pxl_row_in_fullres``, ``pxl_col_in_fullres``.

    Raises:
        ValueError: Neither file exists, columns are missing/non-numeric, or barcodes repeat.
    """
    spatial_dir = Path(spatial_dir)
    new, old = spatial_dir / POSITIONS_NEW, spatial_dir / POSITIONS_OLD
    path = new if new.is_file() else old
    if not path.is_file():
        raise ValueError(
            f"Space Ranger spatial folder {spatial_dir}: neither {POSITIONS_NEW} nor "
            f"{POSITIONS_OLD} exists; copy the spatial/ folder from the Space Ranger outs/."
        )
    try:
        with path.open() as fh:
            headed = fh.readline().startswith("barcode")
        table = pd.read_csv(
            path,
            header=0 if headed else None,
            names=list(POSITION_COLUMNS),
            dtype={"barcode": str},
        )
    except (OSError, ValueError) as exc:
        raise ValueError(f"tissue positions {path}: cannot be read ({exc}).") from exc
    numeric = table[list(POSITION_COLUMNS[1:])].apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna().any(axis=1)
    if bad.any():
        raise ValueError(
            f"tissue positions {path}: {int(bad.sum())} row(s) have missing or non-numeric "
            f"values in {list(POSITION_COLUMNS[1:])}; expected the Space Ranger columns "
            f"{','.join(POSITION_COLUMNS)}."
        )
    numeric.index = pd.Index(table["barcode"].astype(str), name="barcode")
    check_unique(numeric.index, str(path), "barcode")
    return numeric


def read_scalefactors(spatial_dir: str | Path) -> dict[str, float]:
    """Read ``scalefactors_json.json``.

    Raises:
        ValueError: Missing or invalid file, or no positive ``spot_diameter_fullres``.
    """
    path = Path(spatial_dir) / SCALEFACTORS
    try:
        factors = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"scale factors {path}: cannot be read ({exc}); copy it from the Space Ranger "
            "outs/spatial/ folder, or pass the pixel size explicitly (--um-per-px)."
        ) from exc
    diameter = factors.get("spot_diameter_fullres")
    if not isinstance(diameter, (int, float)) or not diameter > 0:
        raise ValueError(
            f"scale factors {path}: 'spot_diameter_fullres' is {diameter!r}, expected a "
            "positive number; pass the pixel size explicitly (--um-per-px)."
        )
    return factors


def import_visium(
    spaceranger: str | Path,
    image: str | Path,
    sample_id: str,
    out: str | Path,
    *,
    patient: str | None = None,
    organ: str | None = None,
    patch_um: float = 112.0,
    patch_px: int = 224,
    um_per_px: float | None = None,
    overwrite: bool = False,
) -> ImportSummary:
    """Import one Visium Space Ranger output and its full-resolution image as one sample.

    Args:
        spaceranger: Space Ranger run folder or its ``outs/``.
        image: Full-resolution H&E image (tiled TIFF read by region; JPEG/PNG whole).
        sample_id: Output sample id.
        out: Dataset root.
        patient: Patient id; defaults to ``sample_id`` (with a warning).
        organ: Organ written to the metadata.
        patch_um: Physical window side in µm.
        patch_px: Stored patch side in pixels.
        um_per_px: µm per full-resolution pixel; default ``55 / spot_diameter_fullres``.
        overwrite: Replace an existing sample of the same id.

    Returns:
        :class:`ImportSummary`.

    Raises:
        ValueError: Missing/unreadable inputs, bad counts, duplicate barcodes, no shared
            spots, or spots that mostly fall outside the image.
    """
    outs = _outs_dir(spaceranger)
    matrix_path = outs / MATRIX_H5
    spatial_dir = outs / SPATIAL_DIR
    matrix = read_10x_h5(matrix_path)
    positions = read_tissue_positions(spatial_dir)
    if um_per_px is None:
        diameter = float(read_scalefactors(spatial_dir)["spot_diameter_fullres"])
        um_per_px = VISIUM_SPOT_DIAMETER_UM / diameter
        logger.info(
            "sample %s: %.4f µm/px (spot diameter %.1f px = %g µm)",
            sample_id,
            um_per_px,
            diameter,
            VISIUM_SPOT_DIAMETER_UM,
        )
    if patient is None:
        logger.warning(
            "sample %s: no patient given; using the sample id (splits are by patient, pass "
            "--patient when several samples come from one patient).",
            sample_id,
        )
        patient = sample_id

    check_unique(matrix.barcodes, str(matrix_path), "barcode")
    in_tissue = positions[keys.OBS_IN_TISSUE].to_numpy() == 1
    off_tissue = pd.Index(matrix.barcodes).isin(positions.index[~in_tissue])
    if off_tissue.any():
        logger.info(
            "%s: %d spots with counts lie outside the tissue (in_tissue = 0); dropped.",
            matrix_path,
            int(off_tissue.sum()),
        )
    candidates = np.flatnonzero(~off_tissue)
    positions = positions.loc[in_tissue]
    count_idx, pos_idx = align_barcodes(
        matrix.barcodes[candidates],
        positions.index.to_numpy(),
        counts_source=str(matrix_path),
        coords_source=str(spatial_dir),
    )
    rows = candidates[count_idx]
    kept = positions.iloc[pos_idx]
    n_dropped = len(matrix.barcodes) + len(positions) - 2 * len(rows)

    reader = open_image(image)
    try:
        return write_imported_sample(
            out,
            sample_id,
            counts=matrix.counts[rows],
            genes=matrix.gene_names,
            barcodes=matrix.barcodes[rows],
            pixel_xy=kept[[keys.OBS_PXL_COL, keys.OBS_PXL_ROW]].to_numpy(dtype=np.float64),
            image=reader,
            um_per_px=um_per_px,
            patient=patient,
            technology=VISIUM_TECHNOLOGY,
            array_rc=kept[[keys.OBS_ARRAY_ROW, keys.OBS_ARRAY_COL]].to_numpy(),
            obs_extra=pd.DataFrame(
                {keys.OBS_IN_TISSUE: kept[keys.OBS_IN_TISSUE].to_numpy(dtype=np.int64)}
            ),
            var_extra=pd.DataFrame({"gene_ids": matrix.gene_ids}),
            organ=organ,
            spot_diameter_um=VISIUM_SPOT_DIAMETER_UM,
            spot_pitch_um=VISIUM_SPOT_PITCH_UM,
            patch_um=patch_um,
            patch_px=patch_px,
            n_dropped=n_dropped,
            provenance={
                "importer": "visium",
                "matrix": str(matrix_path),
                "spatial": str(spatial_dir),
                "image": reader.source,
            },
            overwrite=overwrite,
        )
    finally:
        reader.close()
