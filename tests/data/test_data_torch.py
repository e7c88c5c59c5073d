"""SpotDataset: items, fast batches, given expression, alignment by barcode, workers."""

from __future__ import annotations

import logging

import anndata as ad
import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from rankbygene import keys
from rankbygene.data import (
    SpotDataset,
    make_synthetic_dataset,
    preprocess_expression,
    read_dataset,
    select_panel,
)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("spots")
    ds = make_synthetic_dataset(out, n_samples=2, n_spots=25, n_genes=30, patch_px=16, seed=2)
    genes = select_panel([ds["SYN00"].read_adata()], "top8").genes
    return ds, genes


def test_items_match_store_and_preprocessing(small):
    ds, genes = small
    spots = SpotDataset(ds, ["SYN00", "SYN01"], genes)
    assert len(spots) == 50
    expr1 = preprocess_expression(ds["SYN01"].read_adata(), genes)
    with ds["SYN01"].patches() as store:
        patch = store[4]
    item = spots[25 + 4]
    assert item["sample"] == "SYN01" and item["index"] == 4
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, 16, 16)
    np.testing.assert_array_equal(item["image"].permute(1, 2, 0).numpy(), patch)
    assert item["expr"].dtype == torch.float32 and item["expr"].shape == (8,)
    np.testing.assert_allclose(item["expr"].numpy(), expr1[4], rtol=1e-6)
    with pytest.raises(IndexError):
        spots[50]


def test_get_batch_equals_items_in_order(small):
    ds, genes = small
    spots = SpotDataset(ds, ["SYN01", "SYN00"], genes)
    idx = [30, 2, 49, 2, 0, 26]  # unsorted, duplicate, both samples
    batch = spots.get_batch(idx)
    assert batch["image"].shape == (6, 3, 16, 16) and batch["expr"].shape == (6, 8)
    for row, i in enumerate(idx):
        item = spots[i]
        assert torch.equal(batch["image"][row], item["image"])
        assert torch.equal(batch["expr"][row], item["expr"])
        assert batch["sample"][row] == item["sample"]
        assert int(batch["index"][row]) == item["index"]
    assert batch["sample"][:2] == ["SYN00", "SYN01"]
    everything = spots.load_all_patches()
    assert everything.shape == (50, 3, 16, 16)
    assert torch.equal(spots.get_batch(idx)["image"], batch["image"])
    assert torch.equal(everything[idx], batch["image"])


def test_given_expression_and_errors(small):
    ds, genes = small
    given = {
        "SYN00": np.arange(25 * 8, dtype=np.float32).reshape(25, 8),
        "SYN01": -np.ones((25, 8), dtype=np.float32),
    }
    spots = SpotDataset(ds, ["SYN00", "SYN01"], genes, expression=given)
    np.testing.assert_array_equal(spots[3]["expr"].numpy(), given["SYN00"][3])
    np.testing.assert_array_equal(spots[30]["expr"].numpy(), -1.0)
    with pytest.raises(ValueError, match=r"sample 'SYN00': expression has shape \(25, 3\)"):
        SpotDataset(ds, ["SYN00"], genes, expression={"SYN00": np.zeros((25, 3))})
    with pytest.raises(ValueError, match="no entry for sample 'SYN01'"):
        SpotDataset(ds, ["SYN01"], genes, expression={"SYN00": given["SYN00"]})
    with pytest.raises(KeyError, match="unknown sample id 'NOPE'"):
        SpotDataset(ds, ["NOPE"], genes)


def test_patches_align_to_counts_by_barcode(tmp_path, caplog):
    """A HEST file whose patches are reordered and include an extra barcode."""
    ds = make_synthetic_dataset(tmp_path, n_samples=1, n_spots=12, n_genes=20, patch_px=8, seed=4)
    sample = ds["SYN00"]
    with sample.patches() as store:
        img, coords, barcodes = store[:], store.coords, store.barcodes
    order = np.r_[np.arange(12)[::-1], 0]
    extra = barcodes[order].astype("S32")
    extra[-1] = b"NOT_IN_COUNTS"
    with h5py.File(sample.patches_path, "w") as f:
        f.create_dataset(keys.H5_IMG, data=img[order])
        f.create_dataset(keys.H5_COORDS, data=coords[order])
        f.create_dataset(keys.H5_BARCODE, data=extra.reshape(-1, 1))
    genes = list(ad.read_h5ad(sample.st_path).var_names[:4])
    with caplog.at_level(logging.WARNING):
        spots = SpotDataset(read_dataset(tmp_path), ["SYN00"], genes)
    assert "1 patches have no counts row" in caplog.text
    assert len(spots) == 12
    expr = preprocess_expression(sample.read_adata(), genes)
    item = spots[0]  # patch row 0 is spot 11
    assert item["index"] == 0
    np.testing.assert_allclose(item["expr"].numpy(), expr[11], rtol=1e-6)
    np.testing.assert_array_equal(item["image"].permute(1, 2, 0).numpy(), img[11])


def test_dataloader_with_forked_workers(small):
    ds, genes = small
    spots = SpotDataset(ds, ["SYN00", "SYN01"], genes)
    _ = spots[0]  # the parent opened a handle: workers must not reuse it
    loader = DataLoader(
        spots, batch_size=10, num_workers=2, multiprocessing_context="fork", shuffle=False
    )
    images = torch.cat([b["image"] for b in loader])
    assert torch.equal(images, spots.get_batch(np.arange(50))["image"])
