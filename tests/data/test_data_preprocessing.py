"""Normalisation and smoothing (vs brute force), and one sample's model targets."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from rankbygene import keys
from rankbygene.data import (
    detect_grid,
    normalize_total_log1p,
    preprocess_expression,
    smooth_expression,
)

HEX = [(0, -2), (0, 2), (-1, -1), (-1, 1), (1, -1), (1, 1)]
SQUARE = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]


def _brute_grid(X: np.ndarray, rc: np.ndarray, offsets) -> np.ndarray:
    """The per-spot loop research code uses: find neighbours, average."""
    pos = {tuple(p): i for i, p in enumerate(rc.tolist())}
    out = np.empty_like(X, dtype=np.float64)
    for i, (r, c) in enumerate(rc.tolist()):
        members = [i] + [pos[(r + dr, c + dc)] for dr, dc in offsets if (r + dr, c + dc) in pos]
        out[i] = X[members].mean(axis=0)
    return out


def _brute_pixel(X: np.ndarray, xy: np.ndarray) -> np.ndarray:
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    pitch = np.median(np.sort(d, axis=1)[:, 1])
    out = np.empty_like(X, dtype=np.float64)
    for i in range(len(X)):
        out[i] = X[d[i] <= 1.5 * pitch].mean(axis=0)
    return out


def _hex_grid(rows: int, per_row: int) -> np.ndarray:
    r, k = np.divmod(np.arange(rows * per_row), per_row)
    return np.stack([r, 2 * k + r % 2], axis=1)


def _square_grid(rows: int, cols: int) -> np.ndarray:
    r, c = np.divmod(np.arange(rows * cols), cols)
    return np.stack([r, c], axis=1)


@pytest.fixture()
def rng():
    return np.random.default_rng(0)


def _holey_shuffled(rc: np.ndarray, rng) -> np.ndarray:
    keep = rng.random(len(rc)) > 0.2  # missing spots = absent neighbours
    rc = rc[keep] + np.array([3, 5])  # offsets must not matter
    return rc[rng.permutation(len(rc))]


@pytest.mark.parametrize("grid", ["hex", "square"])
@pytest.mark.parametrize("sparse", [False, True])
def test_grid_smoothing_matches_brute_force(grid, sparse, rng):
    rc = _holey_shuffled(_hex_grid(7, 6) if grid == "hex" else _square_grid(6, 7), rng)
    assert detect_grid(rc) == grid
    X = rng.poisson(1.0, size=(len(rc), 5)).astype(np.float32)
    ref = _brute_grid(X, rc, HEX if grid == "hex" else SQUARE)
    inp = sp.csr_matrix(X) if sparse else X
    for mode in ("auto", grid):
        out = smooth_expression(inp, rc, mode)
        assert sp.issparse(out) == sparse
        assert out.dtype == np.float32
        dense = out.toarray() if sparse else out
        np.testing.assert_allclose(dense, ref, rtol=1e-5, atol=1e-6)


def test_hex_grid_has_six_neighbours_square_eight():
    hexes = _hex_grid(5, 5)
    centre = np.flatnonzero((hexes[:, 0] == 2) & (hexes[:, 1] == 4))[0]
    X = np.zeros((len(hexes), 1))
    X[centre] = 7.0
    out = smooth_expression(X, hexes)
    assert np.count_nonzero(out) == 7  # itself + 6 neighbours
    np.testing.assert_allclose(out[centre], 1.0)
    sq = _square_grid(5, 5)
    X = np.zeros((25, 1))
    X[12] = 9.0
    out = smooth_expression(X, sq)
    assert np.count_nonzero(out) == 9
    np.testing.assert_allclose(out[12], 1.0)
    # a corner spot of the square grid averages 4 spots (3 neighbours present)
    np.testing.assert_allclose(smooth_expression(np.eye(25)[:, :1], sq)[0], 0.25)


@pytest.mark.parametrize("sparse", [False, True])
def test_pixel_fallback_matches_brute_force(sparse, rng):
    rc = _holey_shuffled(_hex_grid(6, 6), rng)
    xy = np.stack([rc[:, 1] * 50.0, rc[:, 0] * 50.0 * np.sqrt(3)], axis=1)
    xy += rng.normal(0, 2.0, size=xy.shape)  # pixel positions are never exact
    X = rng.random((len(xy), 4))
    ref = _brute_pixel(X, xy)
    inp = sp.csc_matrix(X) if sparse else X
    out = smooth_expression(inp, None, pixel_coords=xy)
    if sparse:
        assert out.format == "csc"
        out = out.toarray()
    np.testing.assert_allclose(out, ref, rtol=1e-10)
    # on a clean hex layout the pixel fallback finds exactly the 6 grid neighbours
    clean = np.stack([rc[:, 1] * 50.0, rc[:, 0] * 50.0 * np.sqrt(3)], axis=1)
    np.testing.assert_allclose(
        smooth_expression(X, None, pixel_coords=clean), _brute_grid(X, rc, HEX), rtol=1e-10
    )


def test_smoothing_errors():
    with pytest.raises(ValueError, match="array coordinates"):
        smooth_expression(np.ones((3, 2)), None)
    with pytest.raises(ValueError, match=r"share the array position \(row, col\) = \(1, 1\)"):
        smooth_expression(np.ones((3, 2)), np.array([[0, 0], [1, 1], [1, 1]]))
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        smooth_expression(np.ones((3, 2)), np.zeros((4, 2)))


def test_normalize_total_log1p_reference_values():
    X = np.array([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [5.0, 0.0, 5.0]], dtype=np.float32)
    out = normalize_total_log1p(X, target_sum=1e4)
    expect = np.log1p(np.array([[2500, 7500, 0], [0, 0, 0], [5000, 0, 5000]], dtype=np.float64))
    np.testing.assert_allclose(out, expect, rtol=1e-6)
    assert out.dtype == np.float32 and isinstance(out, np.ndarray)
    out_sp = normalize_total_log1p(sp.csr_matrix(X), target_sum=1e4)
    assert sp.issparse(out_sp)
    np.testing.assert_allclose(out_sp.toarray(), expect, rtol=1e-6)
    np.testing.assert_allclose(normalize_total_log1p(X, target_sum=4)[0], np.log1p([1, 3, 0]))


def _adata(counts, genes, rc=None):
    a = ad.AnnData(
        X=sp.csr_matrix(np.asarray(counts, dtype=np.float32)),
        var=pd.DataFrame(index=genes),
        obs=pd.DataFrame(index=[f"s{i}" for i in range(len(counts))]),
    )
    if rc is not None:
        a.obs[keys.OBS_ARRAY_ROW] = rc[:, 0]
        a.obs[keys.OBS_ARRAY_COL] = rc[:, 1]
    return a


def test_preprocess_expression_normalises_on_all_genes_then_smooths(rng):
    rc = _square_grid(4, 5)
    counts = rng.poisson(3.0, size=(20, 6)).astype(np.float32)
    genes = ["g0", "g1", "g2", "g3", "g4", "g5"]
    a = _adata(counts, genes, rc)
    out = preprocess_expression(a, ["g4", "g1"], smooth=False)
    lib = counts.sum(1, keepdims=True)
    ref = np.log1p(counts / lib * 1e4)[:, [4, 1]]
    np.testing.assert_allclose(out, ref, rtol=1e-5)
    assert out.dtype == np.float32 and out.shape == (20, 2)
    smoothed = preprocess_expression(a, ["g4", "g1"])
    np.testing.assert_allclose(smoothed, _brute_grid(ref, rc, SQUARE), rtol=1e-5)
    # a HEST h5ad without array coordinates falls back to pixel smoothing
    b = _adata(counts, genes)
    b.obsm[keys.OBSM_SPATIAL] = rc[:, ::-1] * 100.0
    np.testing.assert_allclose(
        preprocess_expression(b, ["g4", "g1"]), _brute_pixel(ref, rc[:, ::-1] * 100.0), rtol=1e-5
    )
    with pytest.raises(ValueError, match=r"sample 'S9': 1 panel genes are missing.*nope"):
        preprocess_expression(a, ["g1", "nope"], sample_id="S9")
    with pytest.raises(ValueError, match="cannot smooth"):
        preprocess_expression(_adata(counts, genes), ["g1"], sample_id="S9")
