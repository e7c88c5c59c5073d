"""Fixtures of the data tests: the inputs of one sample as an importer hands them over."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from rankbygene import keys


def sample_inputs(n: int = 10, g: int = 5, px: int = 8, seed: int = 0):
    """AnnData (raw counts, array coordinates), patches, coords, barcodes and metadata
    of one sample.

    Shape:
        X (n, g); img (n, px, px, 3) uint8; coords (n, 2); barcodes (n,).
    """
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


@pytest.fixture(name="sample_inputs")
def sample_inputs_fixture():
    """:func:`sample_inputs`, for tests to call with their own sizes."""
    return sample_inputs
