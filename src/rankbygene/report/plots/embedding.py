"""Feature-space views of one sample: t-SNE coloured by expression clusters (paper Fig. 1/10)
and gene- vs image-similarity of random spot pairs (paper Fig. 5)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
from matplotlib.axes import Axes
from scipy.stats import spearmanr
from sklearn.cluster import KMeans
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits  # installed with (and used by) scikit-learn

from rankbygene.features.io import FeatureFile, assert_same_spots, read_features
from rankbygene.report.plots.common import new_axes, require_file, save_figure

logger = logging.getLogger(__name__)

__all__ = [
    "expression_clusters",
    "features_label",
    "pair_similarities",
    "plot_feature_tsne",
    "plot_similarity_scatter",
    "sample_expression",
    "save_feature_tsne",
    "save_similarity_scatter",
]

FeaturesArg = FeatureFile | str | Path
AdataArg = ad.AnnData | str | Path


def _load(features: FeaturesArg, adata: AdataArg) -> tuple[FeatureFile, ad.AnnData]:
    """Read features and AnnData if given as paths, and check they cover the same spots."""
    if not isinstance(features, FeatureFile):
        features = read_features(features)
    if not isinstance(adata, ad.AnnData):
        path = require_file(adata, "spot expression (AnnData)", "rankbygene data synth/import")
        adata = ad.read_h5ad(path)
    sample_id = features.sample_id or "?"
    assert_same_spots(features, adata.obs_names, sample_id)
    return features, adata


def sample_expression(adata: ad.AnnData, n_genes: int = 100) -> np.ndarray:
    """The sample's top-``n_genes`` expressed genes, normalised, log1p and smoothed.

    Shape:
        output: (N, min(n_genes, G)) float32.
    """
    from rankbygene.data import preprocess_expression, select_panel

    genes = select_panel([adata], f"top{n_genes}").genes
    return np.asarray(preprocess_expression(adata, genes), dtype=np.float32)


def expression_clusters(expr: np.ndarray, n_clusters: int = 4, seed: int = 0) -> np.ndarray:
    """KMeans cluster label per spot on its expression profile.

    Shape:
        expr: (N, G); output: (N,) int.
    """
    n_clusters = min(n_clusters, len(expr))
    return KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(expr)


def features_label(feats: FeatureFile) -> str:
    """``name (sample)`` of a feature file, the default title of its views."""
    return f"{feats.name or 'features'} ({feats.sample_id})"


def _subsample(n: int, max_spots: int, seed: int) -> np.ndarray:
    if n <= max_spots:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_spots, replace=False))


def plot_feature_tsne(
    features: FeaturesArg,
    adata: AdataArg,
    *,
    n_clusters: int = 4,
    n_genes: int = 100,
    max_spots: int = 1000,
    seed: int = 0,
    label: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """t-SNE of a sample's image features, coloured by KMeans clusters of its expression.

    Well-separated colours mean the image features follow expression structure.

    Args:
        features: the sample's feature file (path or FeatureFile).
        adata: the sample's AnnData (path or object), same spots in the same order.
        n_clusters: KMeans clusters on the expression.
        n_genes: top expressed genes used for clustering.
        max_spots: random subsample above this many spots (t-SNE cost: ~5 s at 1000).
        seed: seeds subsampling, KMeans and t-SNE.
        label: what the features are, for the title (default: :func:`features_label`).
        ax: axes to draw on; new figure if None.

    Returns:
        The axes.
    """
    feats, adata = _load(features, adata)
    idx = _subsample(len(feats.features), max_spots, seed)
    x = feats.features[idx]
    perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
    # One OpenMP thread: on a loaded 2-core machine the OpenMP barriers of t-SNE's
    # gradient and of KMeans spin and run ~20x slower than a single thread.
    with threadpool_limits(limits=1, user_api="openmp"):
        labels = expression_clusters(sample_expression(adata, n_genes)[idx], n_clusters, seed)
        tsne = TSNE(perplexity=perplexity, init="pca", max_iter=500, random_state=seed)
        emb = tsne.fit_transform(x)
    ax = new_axes(ax, figsize=(5.2, 4.0))
    sc = ax.scatter(emb[:, 0], emb[:, 1], c=labels, cmap="tab10", s=10, linewidths=0)
    # beside the axes: a legend inside would hide points
    ax.legend(
        *sc.legend_elements(),
        title="expression\ncluster",
        fontsize=9,
        title_fontsize=9,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
    )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"t-SNE of {label or features_label(feats)}", fontsize=10)
    return ax


def pair_similarities(
    features: np.ndarray, expr: np.ndarray, n_pairs: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity of expression and of features for random distinct spot pairs.

    Args:
        features: image features per spot.
        expr: expression per spot.
        n_pairs: number of random pairs (i != j).
        seed: pair sampling seed.

    Returns:
        (gene_similarity, image_similarity), one value per pair.

    Shape:
        features: (N, D); expr: (N, G); outputs: (n_pairs,).
    """
    n = len(features)
    if n < 2:
        raise ValueError("Need at least 2 spots to form pairs.")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, n_pairs)
    j = (i + rng.integers(1, n, n_pairs)) % n  # uniform over j != i

    def _unit(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=np.float64)
        norm = np.linalg.norm(a, axis=1, keepdims=True)
        return a / np.where(norm > 0, norm, 1.0)

    e, f = _unit(expr), _unit(features)
    return np.einsum("pd,pd->p", e[i], e[j]), np.einsum("pd,pd->p", f[i], f[j])


def plot_similarity_scatter(
    features: FeaturesArg,
    adata: AdataArg,
    *,
    n_pairs: int = 2000,
    n_genes: int = 100,
    seed: int = 0,
    label: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Gene-expression similarity vs image-feature similarity of random spot pairs.

    The title gives Spearman's rho: a gene-guided encoder should rank pairs the way
    their expression does.

    Args:
        features: the sample's feature file (path or FeatureFile).
        adata: the sample's AnnData (path or object).
        n_pairs: random spot pairs.
        n_genes: top expressed genes for the expression similarity.
        seed: pair sampling seed.
        label: what the features are, for the title (default: :func:`features_label`).
        ax: axes to draw on; new figure if None.

    Returns:
        The axes.
    """
    feats, adata = _load(features, adata)
    gsim, isim = pair_similarities(feats.features, sample_expression(adata, n_genes), n_pairs, seed)
    rho: Any = spearmanr(gsim, isim).statistic
    ax = new_axes(ax, figsize=(5.0, 4.0))
    ax.scatter(gsim, isim, s=5, alpha=0.4, linewidths=0)
    ax.set_xlabel("gene-expression cosine similarity")
    ax.set_ylabel("image-feature cosine similarity")
    ax.set_title(f"{label or features_label(feats)}\nSpearman ρ = {rho:.3f}", fontsize=10)
    return ax


def save_feature_tsne(features: FeaturesArg, adata: AdataArg, out: str | Path, **kw: Any) -> Path:
    """:func:`plot_feature_tsne` written to a PNG."""
    return save_figure(plot_feature_tsne(features, adata, **kw).figure, out)


def save_similarity_scatter(
    features: FeaturesArg, adata: AdataArg, out: str | Path, **kw: Any
) -> Path:
    """:func:`plot_similarity_scatter` written to a PNG."""
    return save_figure(plot_similarity_scatter(features, adata, **kw).figure, out)
