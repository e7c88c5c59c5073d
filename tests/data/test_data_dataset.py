"""Reading the HEST-1k layout (rankbygene.data.dataset): HEST fixtures, defaults, errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from rankbygene import keys
from rankbygene.data import UnknownSampleError, read_dataset


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
