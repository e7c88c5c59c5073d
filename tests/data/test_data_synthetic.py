"""The synthetic generator: shapes, determinism, sparsity, shared image/expression signal."""

from __future__ import annotations

import numpy as np
import pytest

from rankbygene import keys
from rankbygene.data import make_synthetic_dataset, read_dataset
from rankbygene.data.synthetic import OBSM_MIXTURE, UNS_PROGRAMS


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    ds = make_synthetic_dataset(out, n_samples=3, n_spots=120, n_genes=60, patch_px=32, seed=5)
    return ds


def test_shapes_and_metadata(synth):
    assert synth.ids == ["SYN00", "SYN01", "SYN02"]
    assert len(set(synth.patients().values())) == 3  # one patient per sample by default
    for s in synth:
        adata = s.read_adata()
        assert adata.shape == (120, 60)
        assert s.n_spots == 120 and s.n_genes == 60 and s.patch_px == 32
        assert s.technology == "Visium" and s.spot_pitch_um == 100.0
        assert adata.obsm[OBSM_MIXTURE].shape == (120, 4)
        np.testing.assert_allclose(adata.obsm[OBSM_MIXTURE].sum(1), 1.0, rtol=1e-5)
        assert adata.uns[UNS_PROGRAMS].shape == (4, 60)
        assert adata.obsm[keys.OBSM_SPATIAL].shape == (120, 2)
        # Visium-like hex grid: row + col has one parity, same-row neighbours 2 apart
        r = adata.obs[keys.OBS_ARRAY_ROW].to_numpy()
        c = adata.obs[keys.OBS_ARRAY_COL].to_numpy()
        assert len(np.unique((r + c) % 2)) == 1
        assert np.all(np.diff(c[r == 0]) == 2)
        assert any(name.startswith("TYPE0_M") for name in adata.var_names)
        x = adata.X.toarray()
        assert np.all(x == np.round(x)) and x.min() >= 0


def test_about_80_percent_zeros(synth):
    zeros = [np.mean(s.read_adata().X.toarray() == 0) for s in synth]
    assert all(0.72 < z < 0.88 for z in zeros), zeros


def test_deterministic_for_a_seed(tmp_path, synth):
    kw = {"n_samples": 1, "n_spots": 40, "n_genes": 30, "patch_px": 16}
    a = make_synthetic_dataset(tmp_path / "a", seed=1, **kw)["SYN00"]
    b = make_synthetic_dataset(tmp_path / "b", seed=1, **kw)["SYN00"]
    c = make_synthetic_dataset(tmp_path / "c", seed=2, **kw)["SYN00"]
    xa, xb, xc = (s.read_adata().X.toarray() for s in (a, b, c))
    np.testing.assert_array_equal(xa, xb)
    assert not np.array_equal(xa, xc)
    with a.patches() as pa, b.patches() as pb, c.patches() as pc:
        np.testing.assert_array_equal(pa[:], pb[:])
        assert not np.array_equal(pa[:], pc[:])


def _image_stats(img: np.ndarray) -> np.ndarray:
    """Mean colour (3) and crude nucleus morphology: dark-pixel shares, boundary/area."""
    x = img.astype(np.float64)
    lum = x.mean(-1)
    dark = lum < 150
    vertical = (dark[:, 1:] != dark[:, :-1]).mean((1, 2))
    horizontal = (dark[:, :, 1:] != dark[:, :, :-1]).mean((1, 2))
    edges = vertical + horizontal
    share = dark.mean((1, 2))
    return np.column_stack(
        [x.mean((1, 2)), share, edges, edges / (share + 1e-3), (lum < 120).mean((1, 2))]
    )


def _r2(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    design = np.column_stack([features, np.ones(len(features))])
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    return 1 - (target - design @ coef).var(axis=0) / target.var(axis=0)


def test_image_carries_type_signal_mostly_in_morphology(synth):
    """Simple image statistics predict every type proportion; colour alone much less."""
    for s in synth:
        mix = s.read_adata().obsm[OBSM_MIXTURE]
        with s.patches() as store:
            stats = _image_stats(store[:])
        r2_colour = _r2(stats[:, :3], mix)
        r2_all = _r2(stats, mix)
        assert r2_colour.max() > 0.3, r2_colour  # mean colour follows some type
        assert r2_all.min() > 0.1 and r2_all.mean() > 0.4, r2_all
        assert r2_all.mean() > r2_colour.mean() + 0.1, (r2_all, r2_colour)


def test_markers_follow_their_type(synth):
    adata = synth["SYN01"].read_adata()
    mix = adata.obsm[OBSM_MIXTURE]
    x = adata.X.toarray()
    logx = np.log1p(x / x.sum(1, keepdims=True) * 1e4)
    for t in range(mix.shape[1]):
        cols = [i for i, g in enumerate(adata.var_names) if g.startswith(f"TYPE{t}_M")]
        score = logx[:, cols].mean(1)
        assert np.corrcoef(score, mix[:, t])[0, 1] > 0.4


def test_patients_square_grid_and_bad_args(tmp_path):
    ds = make_synthetic_dataset(
        tmp_path / "sq",
        n_samples=4,
        n_spots=30,
        n_genes=40,
        patch_px=16,
        n_patients=2,
        grid="square",
    )
    assert ds.patients() == {"SYN00": "PAT00", "SYN01": "PAT01", "SYN02": "PAT00", "SYN03": "PAT01"}
    s = read_dataset(tmp_path / "sq")["SYN00"]
    assert s.technology == "Spatial Transcriptomics"
    with pytest.raises(ValueError, match="grid must be one of"):
        make_synthetic_dataset(tmp_path / "x", grid="tri")
    with pytest.raises(ValueError, match="n_patients"):
        make_synthetic_dataset(tmp_path / "x", n_samples=2, n_patients=3)
    with pytest.raises(ValueError, match="too small"):
        make_synthetic_dataset(tmp_path / "x", n_genes=3)
