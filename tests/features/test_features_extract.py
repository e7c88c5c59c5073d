"""extract_features with the tiny encoder on a tiny synthetic dataset."""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import torch

from rankbygene import keys
from rankbygene.data import make_synthetic_dataset
from rankbygene.features import (
    FEATURES_SUMMARY,
    extract_features,
    obsm_key,
    read_features,
)
from rankbygene.models import create_encoder, weights_sha256


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("extract")
    return make_synthetic_dataset(
        root / "data", n_samples=2, n_spots=20, n_genes=12, patch_px=16, seed=0
    )


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return create_encoder("tiny")


def test_round_trip_matches_direct_forward(ds, encoder, tmp_path: Path) -> None:
    paths = extract_features(ds, encoder, tmp_path, batch_size=8, write_obsm=True)
    assert [p.name for p in paths] == ["SYN00.h5", "SYN01.h5"]
    ff = read_features(paths[0])
    sample = ds["SYN00"]
    adata = sample.read_adata()
    assert ff.features.shape == (20, encoder.embed_dim) and ff.features.dtype == np.float32
    assert ff.barcodes.tolist() == list(adata.obs_names)
    with sample.patches() as store:
        np.testing.assert_array_equal(ff.coords, store.coords)
        x = torch.from_numpy(store[:]).permute(0, 3, 1, 2)
    with torch.inference_mode():
        direct = encoder.eval()(encoder.transform.normalize(x)).numpy()
    np.testing.assert_allclose(ff.features, direct, rtol=1e-4, atol=1e-5)
    assert ff.encoder == "tiny" and ff.source_run is None
    assert ff.attrs[keys.FEAT_ATTR_TRANSFORM] == encoder.transform.to_dict()
    assert ff.weights_sha256 == weights_sha256(encoder)  # which weights made them
    summary = json.loads((tmp_path / FEATURES_SUMMARY).read_text())
    assert summary[keys.FEAT_ATTR_WEIGHTS_SHA256] == ff.weights_sha256
    assert summary["encoder"] == "tiny" and summary["embed_dim"] == encoder.embed_dim
    assert summary["samples"]["SYN01"]["n_spots"] == 20
    # obsm copy under FEATS; the dataset's own h5ad is untouched
    copy = ad.read_h5ad(tmp_path / keys.ST_DIR / "SYN00.h5ad")
    np.testing.assert_allclose(copy.obsm[obsm_key("tiny")], ff.features)
    assert obsm_key("tiny") not in sample.read_adata().obsm


def test_skip_overwrite_and_encoder_mismatch(ds, encoder, tmp_path: Path) -> None:
    extract_features(ds, encoder, tmp_path, sample_ids=["SYN00"])
    path = tmp_path / "SYN00.h5"
    mtime = path.stat().st_mtime_ns
    extract_features(ds, encoder, tmp_path, sample_ids=["SYN00"])  # skipped
    assert path.stat().st_mtime_ns == mtime
    assert not (tmp_path / "SYN01.h5").exists()
    other = create_encoder("tiny")
    other.name = "tiny-other"
    with pytest.raises(ValueError, match=r"holds features of encoder 'tiny'.*--overwrite"):
        extract_features(ds, other, tmp_path, sample_ids=["SYN00"])
    extract_features(
        ds, other, tmp_path, sample_ids=["SYN00"], overwrite=True, source_run=tmp_path / "my_run"
    )
    ff = read_features(path)
    assert ff.encoder == "tiny-other" and ff.source_run == str(tmp_path / "my_run")


def test_batch_size_and_speed_options_agree(ds, encoder, tmp_path: Path) -> None:
    a = extract_features(
        ds, encoder, tmp_path / "a", sample_ids=["SYN01"], batch_size=3, channels_last=False
    )
    b = extract_features(
        ds, encoder, tmp_path / "b", sample_ids=["SYN01"], batch_size=64, bf16=True
    )
    fa, fb = read_features(a[0]).features, read_features(b[0]).features
    assert fb.dtype == np.float32
    np.testing.assert_allclose(fa, fb, rtol=0.05, atol=0.05)  # bf16 tolerance


def test_workers_give_same_features(ds, encoder, tmp_path: Path) -> None:
    a = extract_features(ds, encoder, tmp_path / "a", sample_ids=["SYN00"], num_workers=0)
    b = extract_features(
        ds, encoder, tmp_path / "b", sample_ids=["SYN00"], num_workers=2, batch_size=7
    )
    np.testing.assert_allclose(
        read_features(a[0]).features, read_features(b[0]).features, rtol=1e-4, atol=1e-5
    )


def test_unknown_sample_is_refused(ds, encoder, tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="SYN00"):
        extract_features(ds, encoder, tmp_path, sample_ids=["NOPE"])
