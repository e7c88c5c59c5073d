"""Fixtures shared across the test tree: a tiny synthetic dataset (generated once per session)."""

from __future__ import annotations

import pytest

from rankbygene.data import make_synthetic_dataset


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """3 samples from 3 patients, 96 spots each, 32 px patches, 60 genes."""
    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_dataset(root, n_samples=3, n_spots=96, n_genes=60, patch_px=32, seed=1)
    return root
