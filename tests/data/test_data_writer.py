"""Writing one sample (rankbygene.data.writer): round-trips, compression, atomicity, checks."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.sparse as sp

from rankbygene import keys
from rankbygene.data import read_dataset, write_sample
from rankbygene.data import writer as writer_mod


def test_write_read_round_trip(tmp_path, sample_inputs):
    adata, img, coords, barcodes, meta = sample_inputs()
    write_sample(
        tmp_path, "A1", adata, img, coords, barcodes, meta, pixel_size_um=0.5, patch_size_src=16
    )
    ds = read_dataset(tmp_path)
    s = ds["A1"]
    assert s.patient == "P7" and s.technology == "ST"
    assert s.metadata["custom"] == 1.5 and s.metadata[keys.META_ID] == "A1"
    back = s.read_adata()
    np.testing.assert_array_equal(back.X, adata.X)
    np.testing.assert_array_equal(back.obs_names, barcodes)
    np.testing.assert_array_equal(back.obs[keys.OBS_ARRAY_COL], adata.obs[keys.OBS_ARRAY_COL])
    # spatial and pixel columns are filled from the patch centres
    np.testing.assert_array_equal(back.obsm[keys.OBSM_SPATIAL], np.rint(coords))
    np.testing.assert_array_equal(back.obs[keys.OBS_PXL_COL], np.rint(coords[:, 0]))
    assert keys.OBSM_SPATIAL not in adata.obsm  # caller's object untouched
    with s.patches() as store:
        np.testing.assert_array_equal(store[:], img)
        np.testing.assert_array_equal(store.coords, np.rint(coords).astype(np.int64))
        np.testing.assert_array_equal(store.barcodes, barcodes)
        assert store.pixel_size_um == 0.5 and store.patch_size_src == 16
    with h5py.File(s.patches_path, "r") as f:
        assert f["img"].chunks == (1, 8, 8, 3)
        assert f["img"].compression is None
        assert f["barcode"].shape == (10, 1) and f["barcode"].dtype.kind == "S"
        assert f["coords"].dtype.kind == "i"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_write_lzf_and_overwrite(tmp_path, sample_inputs):
    adata, img, coords, barcodes, meta = sample_inputs()
    kw = {"pixel_size_um": 0.5, "patch_size_src": 16}
    write_sample(tmp_path, "A", adata, img, coords, barcodes, meta, compression="lzf", **kw)
    with h5py.File(tmp_path / "patches" / "A.h5", "r") as f:
        assert f["img"].compression == "lzf"
    with pytest.raises(ValueError, match="'A' already exists"):
        write_sample(tmp_path, "A", adata, img, coords, barcodes, meta, **kw)
    write_sample(
        tmp_path, "A", adata, img[::-1].copy(), coords, barcodes, meta, overwrite=True, **kw
    )
    with read_dataset(tmp_path)["A"].patches() as store:
        np.testing.assert_array_equal(store[0], img[-1])


@pytest.mark.parametrize("where", ["patches", "metadata"])
def test_crash_mid_write_leaves_no_sample(tmp_path, monkeypatch, where, sample_inputs):
    adata, img, coords, barcodes, meta = sample_inputs()
    kw = {"pixel_size_um": 0.5, "patch_size_src": 16}
    write_sample(tmp_path, "OK", adata, img, coords, barcodes, meta, **kw)
    real_replace = os.replace

    def crashing_replace(src, dst):
        if Path(dst).parent.name == where:
            raise OSError("disk full (simulated)")
        return real_replace(src, dst)

    monkeypatch.setattr(writer_mod.os, "replace", crashing_replace)
    with pytest.raises(OSError, match="simulated"):
        write_sample(tmp_path, "BROKEN", adata, img, coords, barcodes, meta, **kw)
    monkeypatch.undo()
    ds = read_dataset(tmp_path)
    assert ds.ids == ["OK"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def _write(tmp_path, sample_inputs, **changes):
    adata, img, coords, barcodes, meta = sample_inputs()
    args = {"adata": adata, "img": img, "coords": coords, "barcodes": barcodes, "metadata": meta}
    args.update(changes)
    write_sample(tmp_path, "BAD", **args, pixel_size_um=0.5, patch_size_src=16)


def test_write_rejects_bad_input(tmp_path, sample_inputs):
    adata, img, coords, barcodes, _ = sample_inputs()
    other = barcodes.copy()
    other[:3] = ["X1", "X2", "X3"]
    with pytest.raises(ValueError, match=r"'BAD'.*3 spots have counts but no patch, 3 have"):
        _write(tmp_path, sample_inputs, barcodes=other)
    with pytest.raises(ValueError, match="different order"):
        _write(tmp_path, sample_inputs, barcodes=barcodes[::-1])
    dup = barcodes.copy()
    dup[1] = dup[0]
    with pytest.raises(ValueError, match=r"duplicate barcodes in the patch barcodes.*BC000"):
        _write(tmp_path, sample_inputs, barcodes=dup)
    dup_adata = adata.copy()
    dup_adata.obs_names = dup
    with pytest.raises(ValueError, match=r"duplicate barcodes in adata\.obs_names"):
        _write(tmp_path, sample_inputs, adata=dup_adata, barcodes=dup)
    nan = adata.copy()
    nan.X[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"'BAD'.*counts \(X\) hold 1 NaN"):
        _write(tmp_path, sample_inputs, adata=nan)
    neg = adata.copy()
    neg.X = sp.csr_matrix(neg.X)
    neg.X[0, 0] = -1
    with pytest.raises(ValueError, match="1 negative values"):
        _write(tmp_path, sample_inputs, adata=neg)
    with pytest.raises(ValueError, match=r"number of spots disagrees.*'img': 9"):
        _write(tmp_path, sample_inputs, img=img[:9])
    with pytest.raises(ValueError, match="uint8"):
        _write(tmp_path, sample_inputs, img=img.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        _write(tmp_path, sample_inputs, img=img[..., :2])
    with pytest.raises(ValueError, match="not usable as a file name"):
        write_sample(
            tmp_path, "../x", adata, img, coords, barcodes, {}, pixel_size_um=1, patch_size_src=8
        )
    assert not (tmp_path / "metadata").exists() or not list((tmp_path / "metadata").iterdir())
