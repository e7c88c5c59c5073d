"""t-SNE and gene-vs-image similarity plots, and the pair-similarity helper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from rankbygene.data import make_synthetic_dataset
from rankbygene.features import feature_path, read_features, write_features
from rankbygene.report.plots import (
    pair_similarities,
    plot_similarity_scatter,
    save_feature_tsne,
    save_similarity_scatter,
)
from rankbygene.report.plots.embedding import sample_expression


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("emb")
    ds = make_synthetic_dataset(
        root / "data", n_samples=1, n_spots=40, n_genes=20, patch_px=16, seed=0
    )
    s = ds["SYN00"]
    adata = s.read_adata()
    # "features" = the expression itself plus noise: image similarity follows gene similarity
    expr = sample_expression(adata, 20)
    feats = expr + 0.01 * np.random.default_rng(0).normal(size=expr.shape)
    with s.patches() as st:
        path = write_features(
            feature_path(root / "f", s.id), feats, st.coords, st.barcodes, {"encoder": "oracle"}
        )
    return path, adata, root


def test_pair_similarities_brute_force() -> None:
    rng = np.random.default_rng(0)
    f, e = rng.normal(size=(10, 4)), rng.normal(size=(10, 3))
    gs, fs = pair_similarities(f, e, n_pairs=50, seed=3)
    rng2 = np.random.default_rng(3)
    i = rng2.integers(0, 10, 50)
    j = (i + rng2.integers(1, 10, 50)) % 10
    assert (i != j).all()

    def cos(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    np.testing.assert_allclose(gs, [cos(e[a], e[b]) for a, b in zip(i, j, strict=True)])
    np.testing.assert_allclose(fs, [cos(f[a], f[b]) for a, b in zip(i, j, strict=True)])


def test_similarity_scatter_title_has_spearman(sample) -> None:
    path, adata, _ = sample
    ax = plot_similarity_scatter(path, adata, n_pairs=300, n_genes=20)
    gs, fs = pair_similarities(read_features(path).features, sample_expression(adata, 20), 300)
    rho = spearmanr(gs, fs).statistic
    assert rho > 0.9  # oracle features
    assert f"Spearman ρ = {rho:.3f}" in ax.get_title()


def test_saves_png_files(sample, tmp_path: Path) -> None:
    path, adata, _ = sample
    a = save_feature_tsne(path, adata, tmp_path / "tsne.png", n_clusters=3)
    b = save_similarity_scatter(path, adata, tmp_path / "sim.png")
    for p in (a, b):
        assert p.read_bytes()[:4] == b"\x89PNG"


def test_misaligned_features_refused(sample, tmp_path: Path) -> None:
    path, adata, _ = sample
    ff = read_features(path)
    bad = write_features(tmp_path / "SYN00.h5", ff.features, ff.coords, ff.barcodes[::-1])
    with pytest.raises(ValueError, match=r"'SYN00'.*barcode"):
        plot_similarity_scatter(bad, adata)
