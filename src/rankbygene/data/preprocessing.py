"""Expression preprocessing: library-size normalisation, log1p and spatial smoothing.

- :func:`normalize_total_log1p`: library-size normalisation to ``target_sum`` then
  log1p, ``(N, G) -> (N, G)``; :func:`normalize_log1p_columns` does the same for a
  subset of the genes while normalising on all of them.
- :func:`smooth_expression`: each spot becomes the mean of itself and its immediate
  neighbours (8 on a square grid, 6 on a Visium hex grid, or within 1.5 x pitch in pixel
  space), as one sparse matrix product with the ``(N, N)`` :func:`neighbour_matrix`.
- :func:`preprocess_expression`: the model targets of one sample for a given panel,
  ``(N, G)`` float32 (normalise on all genes, log1p, subset, smooth).

Gene panels are chosen in :mod:`rankbygene.data.panels`. The method is described in
``docs/method.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, TypeVar

import numpy as np
import scipy.sparse as sp

from rankbygene import keys

if TYPE_CHECKING:
    import anndata as ad

logger = logging.getLogger(__name__)

__all__ = [
    "detect_grid",
    "neighbour_matrix",
    "normalize_log1p_columns",
    "normalize_total_log1p",
    "preprocess_expression",
    "smooth_expression",
]

Matrix = TypeVar("Matrix", np.ndarray, sp.spmatrix, sp.sparray)
Grid = Literal["auto", "square", "hex"]

_OFFSETS = {
    "square": np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]),
    # Visium: columns step by 2 within a row, rows are offset by one column
    "hex": np.array([(0, -2), (0, 2), (-1, -1), (-1, 1), (1, -1), (1, 1)]),
}
_PIXEL_RADIUS_FACTOR = 1.5


# -- normalisation -----------------------------------------------------------------------------


def _row_scale(X: Matrix, scale: np.ndarray) -> Matrix:
    """Multiply row i of X by scale[i] (dense or sparse, returns float32)."""
    if sp.issparse(X):
        return sp.csr_matrix(
            sp.diags(scale.astype(np.float32)) @ sp.csr_matrix(X, dtype=np.float32)
        )
    return np.asarray(X, dtype=np.float32) * scale.astype(np.float32)[:, None]


def _library_scale(totals: np.ndarray, target_sum: float) -> np.ndarray:
    """target_sum / total per spot; 0 for empty spots so they stay all-zero."""
    totals = np.asarray(totals, dtype=np.float64).reshape(-1)
    scale = np.zeros_like(totals)
    np.divide(target_sum, totals, out=scale, where=totals > 0)
    return scale


def _log1p(X: Matrix) -> Matrix:
    if sp.issparse(X):
        X = X.copy()
        X.data = np.log1p(X.data)
        return X
    return np.log1p(X)


def normalize_total_log1p(X: Matrix, target_sum: float = 1e4) -> Matrix:
    """Library-size normalise each spot to ``target_sum`` counts, then log1p.

    Spots with zero total stay zero.

    Args:
        X: raw counts, dense array or scipy sparse matrix.
        target_sum: counts per spot after normalisation (1e4, scanpy's convention).

    Returns:
        float32, dense if X is dense, CSR if X is sparse.

    Shape:
        X: (N, G) -> (N, G).
    """
    totals = np.asarray(X.sum(axis=1)).reshape(-1)
    return _log1p(_row_scale(X, _library_scale(totals, target_sum)))


def normalize_log1p_columns(X: Matrix, columns: np.ndarray, target_sum: float = 1e4) -> Matrix:
    """Library-size normalise each spot on ALL its genes, keep ``columns``, then log1p.

    The library size is the spot's total over every gene, not only the kept ones, so a
    gene's values do not depend on which other genes are in the panel. Spots with zero
    total stay zero.

    Args:
        X: raw counts of all genes, dense array or scipy sparse matrix.
        columns: integer positions of the genes to keep, in output order.
        target_sum: counts per spot after normalisation.

    Returns:
        float32, dense if X is dense, CSR if X is sparse.

    Shape:
        X: (N, G_all), columns: (G,) -> (N, G).
    """
    totals = np.asarray(X.sum(axis=1)).reshape(-1)
    return _log1p(_row_scale(X[:, columns], _library_scale(totals, target_sum)))


# -- spatial smoothing -------------------------------------------------------------------------


def detect_grid(array_coords: np.ndarray) -> Literal["square", "hex"]:
    """Tell a Visium hex grid from a square grid by its array coordinates.

    Hex when every (row + col) has the same parity and spots in one row are 2 columns
    apart; square otherwise.

    Shape:
        array_coords: (N, 2) integer (row, col).
    """
    rc = np.asarray(array_coords, dtype=np.int64)
    if len(rc) < 2 or len(np.unique((rc[:, 0] + rc[:, 1]) % 2)) != 1:
        return "square"
    order = np.lexsort((rc[:, 1], rc[:, 0]))
    sorted_rc = rc[order]
    same_row = sorted_rc[1:, 0] == sorted_rc[:-1, 0]
    col_steps = np.diff(sorted_rc[:, 1])[same_row]
    if col_steps.size == 0:
        return "square"
    return "hex" if int(col_steps.min()) == 2 else "square"


def _grid_pairs(array_coords: np.ndarray, grid: Literal["square", "hex"]) -> np.ndarray:
    """Ordered (i, j) neighbour pairs by hashing (row, col) into sorted int64 keys."""
    rc = np.asarray(array_coords, dtype=np.int64)
    # shift so that coordinates +-2 stay non-negative and inside one key row
    shifted = rc - rc.min(axis=0) + 2
    width = int(shifted[:, 1].max()) + 3
    key = shifted[:, 0] * width + shifted[:, 1]
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    if np.any(sorted_key[1:] == sorted_key[:-1]):
        dup = rc[order[1:][sorted_key[1:] == sorted_key[:-1]][0]].tolist()
        raise ValueError(
            f"two spots share the array position (row, col) = {tuple(dup)}; array coordinates "
            "must be unique per sample (check array_row/array_col)"
        )
    offsets = _OFFSETS[grid]
    query = key[None, :] + (offsets[:, 0] * width + offsets[:, 1])[:, None]  # (O, N)
    pos = np.searchsorted(sorted_key, query)
    pos_clipped = np.minimum(pos, len(sorted_key) - 1)
    found = sorted_key[pos_clipped] == query
    src = np.broadcast_to(np.arange(len(rc)), query.shape)[found]
    dst = order[pos_clipped[found]]
    return np.stack([src, dst], axis=1)


def _pixel_pairs(pixel_coords: np.ndarray, pitch: float | None) -> np.ndarray:
    """Ordered pairs within 1.5 x pitch; pitch = median nearest-neighbour distance."""
    # scipy.spatial adds ~0.3 s to `import rankbygene.data`; only this fallback needs it.
    from scipy.spatial import cKDTree

    xy = np.asarray(pixel_coords, dtype=np.float64)
    tree = cKDTree(xy)
    if pitch is None:
        if len(xy) < 2:
            return np.empty((0, 2), dtype=np.int64)
        dist, _ = tree.query(xy, k=2)
        pitch = float(np.median(dist[:, 1]))
    pairs = tree.query_pairs(_PIXEL_RADIUS_FACTOR * pitch, output_type="ndarray")
    return np.concatenate([pairs, pairs[:, ::-1]], axis=0).astype(np.int64)


def neighbour_matrix(
    array_coords: np.ndarray | None,
    grid: Grid = "auto",
    *,
    pixel_coords: np.ndarray | None = None,
    pitch: float | None = None,
) -> sp.csr_matrix:
    """Row-normalised averaging matrix over each spot and its present neighbours.

    Args:
        array_coords: (row, col) array coordinates, or None to use pixel coordinates.
        grid: ``"auto"`` (detect), ``"square"`` (8 neighbours) or ``"hex"`` (6).
        pixel_coords: spot centres in pixels, used when ``array_coords`` is None.
        pitch: spot pitch in pixels for the pixel fallback; estimated if None.

    Returns:
        CSR float64 matrix whose row i averages spot i and its neighbours.

    Shape:
        array_coords / pixel_coords: (N, 2); returns (N, N).
    """
    if array_coords is not None:
        if grid not in ("auto", "square", "hex"):
            raise ValueError(f"grid must be 'auto', 'square' or 'hex', got {grid!r}")
        resolved = detect_grid(array_coords) if grid == "auto" else grid
        pairs = _grid_pairs(array_coords, resolved)
        n = len(array_coords)
    elif pixel_coords is not None:
        pairs = _pixel_pairs(pixel_coords, pitch)
        n = len(pixel_coords)
    else:
        raise ValueError(
            "smoothing needs array coordinates (obs array_row/array_col) or pixel coordinates "
            "(obsm['spatial']); pass one of them, or disable smoothing"
        )
    rows = np.concatenate([np.arange(n), pairs[:, 0]])
    cols = np.concatenate([np.arange(n), pairs[:, 1]])
    adj = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    adj.sum_duplicates()
    adj.data[:] = 1.0  # a pair found twice still counts once
    degree = np.asarray(adj.sum(axis=1)).reshape(-1)
    return sp.csr_matrix(sp.diags(1.0 / degree) @ adj)


def smooth_expression(
    X: Matrix,
    array_coords: np.ndarray | None,
    grid: Grid = "auto",
    pixel_coords: np.ndarray | None = None,
    pitch: float | None = None,
) -> Matrix:
    """Replace each spot by the mean of itself and its immediate grid neighbours.

    Missing neighbours are simply absent from the mean. Without array coordinates,
    neighbours are the spots within 1.5 x pitch of ``pixel_coords``.

    Args:
        X: expression (normalised, log), dense or sparse.
        array_coords: (row, col) per spot, or None for the pixel fallback.
        grid: ``"auto"``, ``"square"`` or ``"hex"``.
        pixel_coords: spot centres in pixels (fallback).
        pitch: spot pitch in pixels (fallback; median nearest-neighbour distance if None).

    Returns:
        Smoothed expression of the same kind as X (dense -> ndarray, sparse -> same
        sparse format), float dtype of X (float32 for integer input).

    Shape:
        X: (N, G); array_coords / pixel_coords: (N, 2); returns (N, G).
    """
    n = X.shape[0]
    for name, coords in (("array_coords", array_coords), ("pixel_coords", pixel_coords)):
        if coords is not None and np.asarray(coords).shape != (n, 2):
            raise ValueError(
                f"{name} must be (n_spots, 2) = ({n}, 2), got {np.asarray(coords).shape}"
            )
    dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.dtype(np.float32)
    W = neighbour_matrix(array_coords, grid, pixel_coords=pixel_coords, pitch=pitch).astype(dtype)
    if sp.issparse(X):
        return (W @ sp.csr_matrix(X, dtype=dtype)).asformat(X.format)
    return np.asarray(W @ np.asarray(X, dtype=dtype))


def _spatial_inputs(adata: ad.AnnData) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Array coords if obs has them (HEST h5ads may not), else pixel coords."""
    if keys.OBS_ARRAY_ROW in adata.obs and keys.OBS_ARRAY_COL in adata.obs:
        rc = adata.obs[[keys.OBS_ARRAY_ROW, keys.OBS_ARRAY_COL]].to_numpy()
        if np.isfinite(rc.astype(np.float64)).all():
            return rc.astype(np.int64), None
    if keys.OBSM_SPATIAL in adata.obsm:
        return None, np.asarray(adata.obsm[keys.OBSM_SPATIAL], dtype=np.float64)
    if keys.OBS_PXL_ROW in adata.obs and keys.OBS_PXL_COL in adata.obs:
        return None, adata.obs[[keys.OBS_PXL_COL, keys.OBS_PXL_ROW]].to_numpy(np.float64)
    return None, None


# -- one sample --------------------------------------------------------------------------------


def preprocess_expression(
    adata: ad.AnnData,
    genes: Sequence[str],
    *,
    target_sum: float = 1e4,
    smooth: bool = True,
    grid: Grid = "auto",
    sample_id: str | None = None,
) -> np.ndarray:
    """Model targets for one sample: normalise on all genes, log1p, subset, smooth.

    Args:
        adata: the sample's raw counts (all genes).
        genes: the panel, in output column order.
        target_sum: counts per spot after library-size normalisation.
        smooth: average each spot with its grid neighbours (pixel fallback when the
            h5ad lacks array coordinates).
        grid: grid for smoothing (``"auto"`` detects it).
        sample_id: used in error messages.

    Returns:
        Expression in the spot order of ``adata``, float32.

    Shape:
        returns (N, G) with G = len(genes).
    """
    name = sample_id or "<adata>"
    idx = adata.var_names.get_indexer(list(genes))
    if (idx < 0).any():
        missing = [g for g, i in zip(genes, idx, strict=True) if i < 0]
        raise ValueError(
            f"sample '{name}': {len(missing)} panel genes are missing from var_names (e.g. "
            f"{missing[:5]}); choose the panel with select_panel on samples that all have them"
        )
    sub = normalize_log1p_columns(adata.X, idx, target_sum)
    out = sub.toarray() if sp.issparse(sub) else np.asarray(sub)
    out = out.astype(np.float32, copy=False)
    if smooth:
        array_coords, pixel_coords = _spatial_inputs(adata)
        if array_coords is None:
            if pixel_coords is None:
                raise ValueError(
                    f"sample '{name}': cannot smooth: no obs array_row/array_col and no "
                    f"obsm['{keys.OBSM_SPATIAL}']; add coordinates or pass smooth=False"
                )
            logger.info("sample '%s': no array coordinates, smoothing by pixel radius", name)
        out = smooth_expression(out, array_coords, grid, pixel_coords=pixel_coords)
    return out
