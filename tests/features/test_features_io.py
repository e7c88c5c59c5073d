"""Feature-file round trip, atomic write, alignment check."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from rankbygene import keys
from rankbygene.features import (
    assert_same_spots,
    feature_path,
    list_feature_files,
    read_features,
    write_features,
)


def test_round_trip_with_attrs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(5, 3))
    coords = rng.integers(0, 100, size=(5, 2))
    codes = [f"AAC-{i}" for i in range(5)]
    path = write_features(
        feature_path(tmp_path, "s1"),
        feats,
        coords,
        codes,
        {
            keys.FEAT_ATTR_ENCODER: "tiny",
            keys.FEAT_ATTR_SOURCE_RUN: None,
            keys.FEAT_ATTR_TRANSFORM: {"input_size": 64, "mean": [0.5] * 3, "std": [0.2] * 3},
        },
    )
    assert path == tmp_path / "s1.h5"
    with h5py.File(path) as f:  # HEST/CLAM layout on disk
        assert f[keys.FEAT_BARCODE].shape == (5, 1) and f[keys.FEAT_BARCODE].dtype.kind == "S"
        assert f[keys.FEAT_FEATURES].dtype == np.float32
    ff = read_features(path)
    np.testing.assert_allclose(ff.features, feats.astype(np.float32))
    np.testing.assert_array_equal(ff.coords, coords)
    assert ff.barcodes.tolist() == codes
    assert ff.encoder == "tiny" and ff.source_run is None and ff.sample_id == "s1"
    assert ff.attrs[keys.FEAT_ATTR_TRANSFORM]["input_size"] == 64
    assert list(list_feature_files(tmp_path)) == ["s1"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no tmp left


def test_write_rejects_inconsistent_arrays(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="same N spots"):
        write_features(tmp_path / "x.h5", np.zeros((3, 2)), np.zeros((2, 2)), ["a", "b", "c"])
    assert not (tmp_path / "x.h5").exists()


def test_missing_file_names_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="rankbygene extract"):
        read_features(tmp_path / "nope.h5")


def test_assert_same_spots(tmp_path: Path) -> None:
    path = write_features(tmp_path / "s2.h5", np.zeros((3, 2)), np.zeros((3, 2)), ["a", "b", "c"])
    ff = read_features(path)
    assert_same_spots(ff, ["a", "b", "c"], "s2")
    with pytest.raises(ValueError, match=r"Sample 's2'.*'barcode'.*spot 1 is 'b'.*'x'"):
        assert_same_spots(ff, ["a", "x", "c"], "s2")
    with pytest.raises(ValueError, match=r"3 spots in .* but 2 in the dataset"):
        assert_same_spots(ff, ["a", "b"], "s2")
