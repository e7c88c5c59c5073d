"""Spatial maps of measured vs predicted expression (paper Fig. 6).

Reads ``EVAL/predictions/{id}.h5ad`` written by ``rankbygene evaluate genes``:
layers ``target`` and ``predicted``, ``obsm["spatial"]`` (x, y pixels).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import anndata as ad
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rankbygene import keys
from rankbygene.evaluation.metrics import pearson_per_gene
from rankbygene.plotting.common import new_axes, require_file, save_figure

__all__ = ["plot_gene_maps", "plot_spatial_expression", "read_predictions", "save_gene_maps"]

EvalDirs = str | Path | Sequence[str | Path] | Mapping[str, str | Path]


def read_predictions(eval_dir: str | Path, sample_id: str) -> ad.AnnData:
    """Read ``eval_dir/predictions/{sample_id}.h5ad``.

    Raises:
        FileNotFoundError: naming the ``rankbygene evaluate genes`` command to run first.
    """
    path = Path(eval_dir) / keys.PREDICTIONS_DIR / f"{sample_id}{keys.ST_SUFFIX}"
    require_file(
        path,
        f"predictions of sample {sample_id!r}",
        f"rankbygene evaluate genes ... --test-samples {sample_id} --out {eval_dir}",
    )
    return ad.read_h5ad(path)


def _gene_column(adata: ad.AnnData, gene: str, layer: str, where: str) -> np.ndarray:
    if gene not in adata.var_names:
        raise ValueError(
            f"Gene {gene!r} is not in the panel of {where}; choose one of "
            f"{', '.join(map(str, adata.var_names[:10]))}{'…' if adata.n_vars > 10 else ''}."
        )
    if layer not in adata.layers:
        raise ValueError(f"{where} has no layer {layer!r}; it has {list(adata.layers)}.")
    return np.asarray(adata[:, gene].layers[layer]).ravel()


def plot_spatial_expression(
    eval_dir: str | Path,
    sample_id: str,
    gene: str,
    *,
    layer: str = keys.LAYER_PREDICTED,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """One spatial map of one gene: truth (``layer="target"``) or a prediction.

    Args:
        eval_dir: an ``evaluate genes`` output directory.
        sample_id: a test sample of that evaluation.
        gene: gene name in the evaluated panel.
        layer: ``"target"``, ``"predicted"`` or ``"predicted_<probe>"``.
        ax: axes to draw on; new figure if None.
        title: panel title; defaults to gene and layer (with the PCC for predictions).

    Returns:
        The axes.
    """
    adata = read_predictions(eval_dir, sample_id)
    where = f"{eval_dir}/{keys.PREDICTIONS_DIR}/{sample_id}{keys.ST_SUFFIX}"
    values = _gene_column(adata, gene, layer, where)
    xy = np.asarray(adata.obsm[keys.OBSM_SPATIAL], dtype=float)
    ax = new_axes(ax, figsize=(4.0, 4.0))
    # Marker area shrinks with the spot count so dense Visium slides stay readable.
    size = float(np.clip(4000.0 / max(len(values), 1), 1.0, 60.0))
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=values, s=size, cmap="viridis", linewidths=0)
    ax.invert_yaxis()  # image convention: y grows downwards
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is None:
        title = f"{gene} ({layer})"
        if layer != keys.LAYER_TARGET and keys.LAYER_TARGET in adata.layers:
            truth = _gene_column(adata, gene, keys.LAYER_TARGET, where)
            r = pearson_per_gene(values, truth)[0]
            title += f"\nPCC {r:.3f}"
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(sc, ax=ax, shrink=0.7)
    return ax


def _named_dirs(eval_dirs: EvalDirs) -> dict[str, Path]:
    if isinstance(eval_dirs, Mapping):
        return {str(k): Path(v) for k, v in eval_dirs.items()}
    if isinstance(eval_dirs, str | Path):
        eval_dirs = [eval_dirs]
    return {Path(d).name or str(d): Path(d) for d in eval_dirs}


def plot_gene_maps(
    eval_dirs: EvalDirs,
    sample_id: str,
    genes: Sequence[str],
    *,
    axes: np.ndarray | None = None,
) -> Figure:
    """Grid of maps: one row per gene, columns = truth then each method's prediction.

    Args:
        eval_dirs: one EVAL dir, a list (named by directory) or name → EVAL dir.
        sample_id: test sample to show (must be in every EVAL dir).
        genes: genes to show (e.g. ``["FASN"]``).
        axes: optional (len(genes), 1 + n_methods) array of axes to draw on.

    Returns:
        The figure.
    """
    named = _named_dirs(eval_dirs)
    if not named or not genes:
        raise ValueError("plot_gene_maps needs at least one EVAL dir and one gene.")
    n_rows, n_cols = len(genes), 1 + len(named)
    if axes is None:
        fig = Figure(figsize=(3.2 * n_cols, 3.0 * n_rows), layout="constrained")
        FigureCanvasAgg(fig)
        axes = np.asarray(fig.subplots(n_rows, n_cols, squeeze=False))
    axes = np.asarray(axes).reshape(n_rows, n_cols)
    first_dir = next(iter(named.values()))
    for i, gene in enumerate(genes):
        plot_spatial_expression(
            first_dir,
            sample_id,
            gene,
            layer=keys.LAYER_TARGET,
            ax=axes[i, 0],
            title=f"{gene}: measured",
        )
        for j, (name, eval_dir) in enumerate(named.items(), start=1):
            ax = plot_spatial_expression(eval_dir, sample_id, gene, ax=axes[i, j])
            ax.set_title(f"{gene}: {name}\n{ax.get_title().splitlines()[-1]}", fontsize=9)
    fig = axes[0, 0].figure
    fig.suptitle(f"Sample {sample_id}")
    return fig


def save_gene_maps(
    eval_dirs: EvalDirs, sample_id: str, genes: Sequence[str], out: str | Path
) -> Path:
    """:func:`plot_gene_maps` written to a PNG."""
    return save_figure(plot_gene_maps(eval_dirs, sample_id, genes), out)
