"""Lazy random access to a patch file (rankbygene.data.patches.PatchStore)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from rankbygene.data import PatchStore, write_sample


@pytest.fixture()
def store_and_img(tmp_path, sample_inputs):
    adata, img, coords, barcodes, meta = sample_inputs(n=20, px=4, seed=3)
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
