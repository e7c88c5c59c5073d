"""Reader and writer of the HEST-1k layout: HEST fixtures, round-trips, random access, atomicity."""

from __future__ import annotations

import json
import logging
import os
import pickle
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from rankbygene import keys
from rankbygene.data import (
    PatchStore,
    UnknownSampleError,
    read_dataset,
    write_sample,
)
from rankbygene.data import writer as writer_mod


def _hest_sample(root: Path, sample_id: str, n: int, *, patient: str | None, with_array: bool):
    """Write one sample exactly as HEST-1k ships it (no rankbygene code involved)."""
    rng = np.random.default_rng(len(sample_id) + n)
    barcodes = [f"{sample_id}-AACG{i:04d}-1" for i in range(n)]
    obs = pd.DataFrame(
        {
            keys.OBS_IN_TISSUE: np.ones(n, dtype=np.int64),
            keys.OBS_PXL_COL: rng.uniform(0, 5000, n),
            keys.OBS_PXL_ROW: rng.uniform(0, 5000, n),
        },
        index=barcodes,
    )
    if with_array:
        obs[keys.OBS_ARRAY_ROW] = np.arange(n) // 4
        obs[keys.OBS_ARRAY_COL] = 2 * (np.arange(n) % 4) + (np.arange(n) // 4) % 2
    counts = rng.poisson(0.5, size=(n, 7)).astype(np.float32)
    adata = ad.AnnData(
        X=sp.csr_matrix(counts), obs=obs, var=pd.DataFrame(index=[f"G{j}" for j in range(7)])
    )
    adata.obsm["spatial"] = obs[[keys.OBS_PXL_COL, keys.OBS_PXL_ROW]].to_numpy()
    (root / "st").mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(root / "st" / f"{sample_id}.h5ad")

    (root / "patches").mkdir(exist_ok=True)
    img = rng.integers(0, 256, size=(n, 16, 16, 3), dtype=np.uint8)
    with h5py.File(root / "patches" / f"{sample_id}.h5", "w") as f:
        dimg = f.create_dataset("img", data=img)
        dimg.attrs["patch_size"] = 16
        dimg.attrs["pixel_size"] = 0.5
        f.create_dataset("coords", data=adata.obsm["spatial"].astype(np.int64))
        f.create_dataset("barcode", data=np.array(barcodes, dtype="S").reshape(-1, 1))

    (root / "metadata").mkdir(exist_ok=True)
    meta = {
        "dataset_title": "fixture",
        "id": sample_id,
        "organ": "Breast",
        "patient": patient,
        "st_technology": "Visium",
        "species": "Homo sapiens",
        "pixel_size_um_estimated": 0.2737,
        "spot_diameter": 55.0,
        "inter_spot_dist": 100.0,
        "spots_under_tissue": n,
    }
    (root / "metadata" / f"{sample_id}.json").write_text(json.dumps(meta))
    return adata, img


@pytest.fixture()
def hest_dir(tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "hest"
    made = {
        "TENX95": _hest_sample(root, "TENX95", 12, patient="P1", with_array=True),
        "NCBI783": _hest_sample(root, "NCBI783", 9, patient=None, with_array=False),
    }
    return root, made


def test_reads_hest_layout_unchanged(hest_dir, caplog):
    root, made = hest_dir
    with caplog.at_level(logging.WARNING):
        ds = read_dataset(root)
    assert ds.ids == ["NCBI783", "TENX95"]
    assert len(ds) == 2
    # null patient falls back to the sample id, with a warning naming the sample
    assert ds.patients() == {"NCBI783": "NCBI783", "TENX95": "P1"}
    assert "NCBI783" in caplog.text and "patient" in caplog.text
    s = ds["TENX95"]
    assert s.technology == "Visium" and s.organ == "Breast"
    assert s.pixel_size_um == pytest.approx(0.2737)
    assert s.spot_diameter_um == 55.0 and s.spot_pitch_um == 100.0
    assert s.n_spots == 12 and s.n_genes == 7 and s.patch_px == 16
    adata = s.read_adata()
    ref, img = made["TENX95"]
    np.testing.assert_array_equal(adata.X.toarray(), ref.X.toarray())
    with s.patches() as store:
        assert len(store) == 12 and store.patch_size == 16
        assert store.pixel_size_um == 0.5  # attr stored on the img dataset, as HEST does
        np.testing.assert_array_equal(store.barcodes, np.asarray(ref.obs_names))
        assert store.barcodes.dtype.kind == "U"
        np.testing.assert_array_equal(store.coords, ref.obsm["spatial"].astype(np.int64))
        np.testing.assert_array_equal(store[3], img[3])
    assert s.wsi_path is None


def test_missing_metadata_fields_get_defaults(tmp_path):
    root = tmp_path / "d"
    _hest_sample(root, "S1", 4, patient="P", with_array=True)
    (root / "metadata" / "S1.json").write_text(json.dumps({"patient": "P"}))
    s = read_dataset(root)["S1"]
    assert s.technology == "unknown" and s.organ == "unknown"
    assert s.pixel_size_um is None and s.spot_diameter_um is None


def test_unknown_sample_id_names_known_ids(hest_dir):
    root, _ = hest_dir
    ds = read_dataset(root)
    with pytest.raises(KeyError, match=r"unknown sample id 'NOPE'.*NCBI783, TENX95"):
        ds["NOPE"]
    with pytest.raises(ValueError, match="NOPE"):
        ds.subset(["TENX95", "NOPE"])
    assert isinstance(UnknownSampleError("x"), ValueError)
    assert ds.subset(["TENX95"]).ids == ["TENX95"]


def test_missing_file_of_listed_sample_is_an_error_naming_the_path(hest_dir):
    root, _ = hest_dir
    (root / "patches" / "TENX95.h5").unlink()
    with pytest.raises(ValueError, match=r"TENX95.*patches/TENX95\.h5"):
        read_dataset(root)


def test_not_a_dataset_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_dataset(tmp_path / "nope")
    with pytest.raises(ValueError, match="not a HEST-layout dataset"):
        read_dataset(tmp_path)


# -- write_sample ---------------------------------------------------------------------------


def _sample_inputs(n: int = 10, g: int = 5, px: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    barcodes = np.array([f"BC{i:03d}" for i in range(n)])
    adata = ad.AnnData(
        X=rng.poisson(1.0, size=(n, g)).astype(np.float32),
        obs=pd.DataFrame(
            {keys.OBS_ARRAY_ROW: np.arange(n) // 3, keys.OBS_ARRAY_COL: np.arange(n) % 3},
            index=barcodes,
        ),
        var=pd.DataFrame(index=[f"G{j}" for j in range(g)]),
    )
    img = rng.integers(0, 256, size=(n, px, px, 3), dtype=np.uint8)
    coords = rng.uniform(0, 1000, size=(n, 2))
    meta = {keys.META_PATIENT: "P7", keys.META_TECHNOLOGY: "ST", "custom": np.float32(1.5)}
    return adata, img, coords, barcodes, meta


def test_write_read_round_trip(tmp_path):
    adata, img, coords, barcodes, meta = _sample_inputs()
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


def test_write_lzf_and_overwrite(tmp_path):
    adata, img, coords, barcodes, meta = _sample_inputs()
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
def test_crash_mid_write_leaves_no_sample(tmp_path, monkeypatch, where):
    adata, img, coords, barcodes, meta = _sample_inputs()
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


def _write(tmp_path, **changes):
    adata, img, coords, barcodes, meta = _sample_inputs()
    args = {"adata": adata, "img": img, "coords": coords, "barcodes": barcodes, "metadata": meta}
    args.update(changes)
    write_sample(tmp_path, "BAD", **args, pixel_size_um=0.5, patch_size_src=16)


def test_write_rejects_bad_input(tmp_path):
    adata, img, coords, barcodes, _ = _sample_inputs()
    other = barcodes.copy()
    other[:3] = ["X1", "X2", "X3"]
    with pytest.raises(ValueError, match=r"'BAD'.*3 spots have counts but no patch, 3 have"):
        _write(tmp_path, barcodes=other)
    with pytest.raises(ValueError, match="different order"):
        _write(tmp_path, barcodes=barcodes[::-1])
    dup = barcodes.copy()
    dup[1] = dup[0]
    with pytest.raises(ValueError, match=r"duplicate barcodes in the patch barcodes.*BC000"):
        _write(tmp_path, barcodes=dup)
    dup_adata = adata.copy()
    dup_adata.obs_names = dup
    with pytest.raises(ValueError, match=r"duplicate barcodes in adata\.obs_names"):
        _write(tmp_path, adata=dup_adata, barcodes=dup)
    nan = adata.copy()
    nan.X[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"'BAD'.*counts \(X\) hold 1 NaN"):
        _write(tmp_path, adata=nan)
    neg = adata.copy()
    neg.X = sp.csr_matrix(neg.X)
    neg.X[0, 0] = -1
    with pytest.raises(ValueError, match="1 negative values"):
        _write(tmp_path, adata=neg)
    with pytest.raises(ValueError, match=r"number of spots disagrees.*'img': 9"):
        _write(tmp_path, img=img[:9])
    with pytest.raises(ValueError, match="uint8"):
        _write(tmp_path, img=img.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        _write(tmp_path, img=img[..., :2])
    with pytest.raises(ValueError, match="not usable as a file name"):
        write_sample(
            tmp_path, "../x", adata, img, coords, barcodes, {}, pixel_size_um=1, patch_size_src=8
        )
    assert not (tmp_path / "metadata").exists() or not list((tmp_path / "metadata").iterdir())


# -- PatchStore random access ----------------------------------------------------------------


@pytest.fixture()
def store_and_img(tmp_path):
    adata, img, coords, barcodes, meta = _sample_inputs(n=20, px=4, seed=3)
    write_sample(
        tmp_path, "R", adata, img, coords, barcodes, meta, pixel_size_um=1, patch_size_src=4
    )
    return PatchStore(tmp_path / "patches" / "R.h5"), img


@pytest.mark.parametrize(
    "idx",
    [
        [5, 1, 17, 1, 0, 5],  # unsorted with duplicates
        [19, 18, 17],
        [3, 4, 5, 6],  # contiguous fast path
        [-1, 2],
        [],
    ],
)
def test_random_access_returns_patches_in_order(store_and_img, idx):
    store, img = store_and_img
    with store:
        got = store[np.array(idx, dtype=np.int64)]
        np.testing.assert_array_equal(got, img[np.array(idx, dtype=np.int64)])
        assert got.shape == (len(idx), 4, 4, 3) and got.dtype == np.uint8
        np.testing.assert_array_equal(store.read(idx), img[idx] if idx else img[:0])


def test_random_access_int_slice_mask_and_bounds(store_and_img):
    store, img = store_and_img
    with store:
        np.testing.assert_array_equal(store[7], img[7])
        np.testing.assert_array_equal(store[-2], img[-2])
        np.testing.assert_array_equal(store[2:9:3], img[2:9:3])
        mask = np.zeros(20, dtype=bool)
        mask[[2, 11]] = True
        np.testing.assert_array_equal(store[mask], img[mask])
        with pytest.raises(IndexError, match=r"\[20\] out of range for 20 patches"):
            store[np.array([1, 20])]
        with pytest.raises(IndexError, match="out of range"):
            store[25]


def test_store_pickles_and_reopens(store_and_img):
    store, img = store_and_img
    _ = store[0]  # opens the file
    clone = pickle.loads(pickle.dumps(store))
    assert clone._file is None
    np.testing.assert_array_equal(clone[[4, 2]], img[[4, 2]])
    clone.close()
    store.close()
