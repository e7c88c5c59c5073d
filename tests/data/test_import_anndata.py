"""The generic AnnData + image importer (rankbygene.data.importers.anndata)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import tifffile

from rankbygene import keys
from rankbygene.data import read_dataset
from rankbygene.data.importers import base, import_anndata


def _adata(n: int = 12, g: int = 5, seed: int = 0) -> tuple[ad.AnnData, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, size=(80, 100, 3), dtype=np.uint8)
    adata = ad.AnnData(
        X=sp.csr_matrix(rng.poisson(2.0, size=(n, g)).astype(np.float64)),
        obs=pd.DataFrame(
            {
                keys.OBS_ARRAY_ROW: np.arange(n) // 4,
                keys.OBS_ARRAY_COL: np.arange(n) % 4,
                "region": pd.Categorical(["tumour", "stroma"] * (n // 2)),
            },
            index=[f"s{i}" for i in range(n)],
        ),
        var=pd.DataFrame({"chrom": ["1"] * g}, index=[f"g{j}" for j in range(g)]),
    )
    xy = np.c_[10 + (np.arange(n) % 4) * 20, 10 + (np.arange(n) // 4) * 25].astype(float)
    adata.obsm[keys.OBSM_SPATIAL] = xy
    return adata, image


def _snapshot(adata: ad.AnnData) -> tuple:
    return (
        adata.X.toarray().copy(),
        adata.obs.copy(),
        adata.var.copy(),
        {k: np.array(v, copy=True) for k, v in adata.obsm.items()},
        dict(adata.uns),
    )


def test_import_anndata_round_trip_and_input_untouched(tmp_path):
    adata, image = _adata()
    image_before = image.copy()
    snap = _snapshot(adata)
    summary = import_anndata(
        adata, image, 0.5, tmp_path / "ds", "S1", patient="P", patch_um=8, patch_px=16
    )
    after = _snapshot(adata)
    np.testing.assert_array_equal(after[0], snap[0])
    pd.testing.assert_frame_equal(after[1], snap[1])
    pd.testing.assert_frame_equal(after[2], snap[2])
    assert after[3].keys() == snap[3].keys() and after[4] == snap[4]
    np.testing.assert_array_equal(image, image_before)
    assert summary.window_px == 16 and summary.n_spots == 12

    sample = read_dataset(tmp_path / "ds")["S1"]
    assert sample.patient == "P" and sample.technology == "unknown"
    out = sample.read_adata()
    assert out.X.dtype == np.int32  # integral float counts stored as int32
    np.testing.assert_array_equal(out.X.toarray(), snap[0])
    assert list(out.obs["region"]) == list(adata.obs["region"])
    assert isinstance(out.obs["region"].dtype, pd.CategoricalDtype)
    np.testing.assert_array_equal(out.obs[keys.OBS_ARRAY_ROW], adata.obs[keys.OBS_ARRAY_ROW])
    np.testing.assert_array_equal(out.obs[keys.OBS_PXL_COL], snap[3]["spatial"][:, 0])
    assert list(out.var["chrom"]) == ["1"] * 5
    assert out.uns[base.UNS_IMPORT]["importer"] == "anndata"
    with sample.patches() as store:
        x0, y0 = (snap[3]["spatial"][5] - 8).astype(int)
        np.testing.assert_array_equal(store[5], image[y0 : y0 + 16, x0 : x0 + 16])
        assert store.pixel_size_um == pytest.approx(0.5)
    padded = out.obs[keys.OBS_PATCH_PADDED].to_numpy()
    # centres at x = 10 / y = 10 with a 16 px window stay inside; none cross the far edges
    assert not padded.any()


def test_import_anndata_from_tiff_and_default_patient(tmp_path, caplog):
    adata, image = _adata()
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, image, tile=(32, 32), photometric="rgb")
    with caplog.at_level("WARNING"):
        import_anndata(adata, path, 0.5, tmp_path / "ds", "S1", patch_um=12, patch_px=24)
    assert "using the sample id as patient" in caplog.text
    assert "leave the image" in caplog.text  # 24 px windows at x = 10 start at -2
    sample = read_dataset(tmp_path / "ds")["S1"]
    assert sample.patient == "S1"
    padded = sample.read_adata().obs[keys.OBS_PATCH_PADDED].to_numpy()
    np.testing.assert_array_equal(padded, (np.arange(12) % 4 == 0) | (np.arange(12) < 4))
    with sample.patches() as store:
        first = store[0]
    assert (first[:2] == 255).all() and (first[:, :2] == 255).all()  # white border
    np.testing.assert_array_equal(first[2:, 2:], image[:22, :22])


def test_import_anndata_bad_inputs(tmp_path):
    adata, image = _adata()
    no_spatial = adata.copy()
    del no_spatial.obsm[keys.OBSM_SPATIAL]
    with pytest.raises(ValueError, match=r"sample S1: adata\.obsm\['spatial'\] is missing"):
        import_anndata(no_spatial, image, 0.5, tmp_path / "ds", "S1")
    dup = adata.copy()
    dup.obs_names = ["s0"] * 2 + list(dup.obs_names[2:])
    with pytest.raises(ValueError, match=r"sample S1: 1 duplicate barcode value\(s\)"):
        import_anndata(dup, image, 0.5, tmp_path / "ds", "S1")
    bad = adata.copy()
    bad.X = bad.X.toarray()
    bad.X[0, 0] = -1
    with pytest.raises(ValueError, match="1 negative value"):
        import_anndata(bad, image, 0.5, tmp_path / "ds", "S1")
    with pytest.raises(ValueError, match="must be positive"):
        import_anndata(adata, image, 0.0, tmp_path / "ds", "S1")
    with pytest.raises(ValueError, match="outside the image"):
        import_anndata(adata, image[:10, :10], 0.5, tmp_path / "ds", "S1")
    assert not (tmp_path / "ds").exists()


def test_failure_before_writing_leaves_nothing(tmp_path, monkeypatch):
    adata, image = _adata()

    def boom(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(base, "cut_patches", boom)
    with pytest.raises(RuntimeError):
        import_anndata(adata, image, 0.5, tmp_path / "ds", "S1")
    assert not (tmp_path / "ds").exists()
