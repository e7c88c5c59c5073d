"""Spatial maps of measured vs predicted expression (paper Fig. 6).

(Over 350 lines: one panel, the grid's layout and its two entry points draw one figure.)

Reads ``EVAL/predictions/{id}.h5ad`` written by ``rankbygene evaluate genes``:
layers ``target`` and ``predicted``, ``obsm["spatial"]`` (x, y pixels);
:func:`plot_gene_map_grid` takes such predictions already read (``rankbygene predict
--data`` writes the same layers to ``PRED/{id}.h5ad``).

Spots are drawn as circles of their real diameter in the units of
``obsm["spatial"]`` (see :mod:`rankbygene.report.plots.spots`). :func:`plot_gene_maps`
lays panels out in a grid of at most four columns sized for the report page, with
one colour scale per gene shared by the measured map and every prediction.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anndata as ad
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from rankbygene import keys
from rankbygene.evaluation.metrics import pearson_per_gene
from rankbygene.report.plots.common import (
    PAGE_WIDTH_IN,
    REPORT_DPI,
    new_axes,
    new_figure,
    require_file,
    save_figure,
    wrap_name,
)
from rankbygene.report.plots.spots import draw_spots, resolve_spot_diameter

__all__ = [
    "EXPRESSION_LABEL",
    "LIMITS_TEXT",
    "gene_map_limits",
    "plot_gene_map_grid",
    "plot_gene_maps",
    "plot_spatial_expression",
    "read_predictions",
    "save_gene_maps",
]

EvalDirs = str | Path | Sequence[str | Path] | Mapping[str, str | Path]
Limits = Literal["measured", "all"]

EXPRESSION_LABEL = "log1p(norm.) expression, smoothed"
LIMITS_TEXT = {
    "measured": "1st–99th percentile of the measured values",
    "all": "widest 1st–99th percentile range of the measured and predicted values",
}
"""How :func:`gene_map_limits` sets the colour scale, for captions."""
# Type sizes (points) of the gene maps; at REPORT_DPI 9 pt shows 12.5 px tall.
_TITLE_PT, _GENE_PT, _TICK_PT = 10.0, 13.0, 9.0
_LINE_IN = 1.3 / 72  # line height per point of type, inches


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
    return np.asarray(adata[:, gene].layers[layer], dtype=float).ravel()


def _where(eval_dir: str | Path, sample_id: str) -> str:
    return f"{eval_dir}/{keys.PREDICTIONS_DIR}/{sample_id}{keys.ST_SUFFIX}"


# -- one panel ------------------------------------------------------------------------------


def _pcc(values: np.ndarray, truth: np.ndarray) -> float:
    return float(pearson_per_gene(values, truth)[0])


def plot_spatial_expression(
    eval_dir: str | Path,
    sample_id: str,
    gene: str,
    *,
    layer: str = keys.LAYER_PREDICTED,
    ax: Axes | None = None,
    title: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    spot_diameter: float | None = None,
    colorbar: bool = True,
) -> Axes:
    """One spatial map of one gene: truth (``layer="target"``) or a prediction.

    Args:
        eval_dir: an ``evaluate genes`` output directory.
        sample_id: a test sample of that evaluation.
        gene: gene name in the evaluated panel.
        layer: ``"target"``, ``"predicted"`` or ``"predicted_<probe>"``.
        ax: axes to draw on; new figure if None.
        title: panel title; defaults to gene and layer (with the PCC for predictions).
        vmin, vmax: colour limits (default: this panel's range).
        spot_diameter: in ``obsm["spatial"]`` units (default:
            :func:`resolve_spot_diameter`).
        colorbar: add a colour bar beside the panel.

    Returns:
        The axes.
    """
    adata = read_predictions(eval_dir, sample_id)
    where = _where(eval_dir, sample_id)
    values = _gene_column(adata, gene, layer, where)
    xy = np.asarray(adata.obsm[keys.OBSM_SPATIAL], dtype=float)
    diameter, _ = resolve_spot_diameter(adata, spot_diameter)
    ax = new_axes(ax, figsize=(4.0, 4.0))
    spots = draw_spots(ax, xy, values, diameter, Normalize(vmin, vmax))
    if title is None:
        title = f"{gene} ({layer})"
        if layer != keys.LAYER_TARGET and keys.LAYER_TARGET in adata.layers:
            truth = _gene_column(adata, gene, keys.LAYER_TARGET, where)
            title += f"\nPCC {_pcc(values, truth):.3f}"
    ax.set_title(title, fontsize=_TITLE_PT)
    if colorbar:
        bar = ax.figure.colorbar(spots, ax=ax, shrink=0.7)
        bar.set_label(EXPRESSION_LABEL, fontsize=_TICK_PT)
    return ax


# -- the grid -------------------------------------------------------------------------------


def _named_dirs(eval_dirs: EvalDirs) -> dict[str, Path]:
    if isinstance(eval_dirs, Mapping):
        return {str(k): Path(v) for k, v in eval_dirs.items()}
    if isinstance(eval_dirs, str | Path):
        eval_dirs = [eval_dirs]
    return {Path(d).name or str(d): Path(d) for d in eval_dirs}


def gene_map_limits(
    truth: np.ndarray, predictions: Sequence[np.ndarray] = (), limits: Limits = "measured"
) -> tuple[float, float]:
    """Colour limits shared by a gene's panels.

    ``measured``: 1st–99th percentile of the measured values; ``all``: the widest
    1st–99th percentile range over the measured values and every prediction.
    """
    arrays = [truth] if limits == "measured" else [truth, *predictions]
    lows, highs = [], []
    for a in arrays:
        a = np.asarray(a, dtype=float)
        a = a[np.isfinite(a)]
        if a.size:
            lo, hi = np.percentile(a, [1, 99])
            lows.append(lo)
            highs.append(hi)
    if not lows:
        return 0.0, 1.0
    lo, hi = float(min(lows)), float(max(highs))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


@dataclass
class _Panel:
    title: str
    xy: np.ndarray
    values: np.ndarray


def _gene_panels(
    gene: str, named: Mapping[str, tuple[ad.AnnData, str]], wrap: int
) -> tuple[np.ndarray, list[_Panel]]:
    """Measured panel then one per method (title with the PCC) for one gene.

    ``named``: method name → (predictions, their path for error messages).
    """
    first, first_where = next(iter(named.values()))
    truth = _gene_column(first, gene, keys.LAYER_TARGET, first_where)
    panels = [_Panel(f"{gene}: measured", _xy(first), truth)]
    for name, (adata, where) in named.items():
        values = _gene_column(adata, gene, keys.LAYER_PREDICTED, where)
        own_truth = _gene_column(adata, gene, keys.LAYER_TARGET, where)
        label = "\n".join(wrap_name(f"{gene}: {name}", wrap))
        panels.append(_Panel(f"{label}\nPCC {_pcc(values, own_truth):.3f}", _xy(adata), values))
    return truth, panels


def _xy(adata: ad.AnnData) -> np.ndarray:
    return np.asarray(adata.obsm[keys.OBSM_SPATIAL], dtype=float)


@dataclass
class _Grid:
    """Where a gene-map figure's pieces go, in inches from the figure's top left."""

    width: float
    height: float
    headers: list[tuple[float, float, float]]  # per gene: x, top, width of its header
    panels: list[list[tuple[float, float, float, float]]]  # per gene: x, top, w, h

    def rect(self, x: float, top: float, w: float, h: float) -> list[float]:
        """An inch box as figure fractions (left, bottom, width, height)."""
        return [x / self.width, 1 - (top + h) / self.height, w / self.width, h / self.height]


_PAD, _GAP = 0.1, 0.2  # figure margin and gap between panels, inches


def _panel_width(cols: int, width: float) -> float:
    """Panel width (inches) for ``cols`` columns in a figure ``width`` wide (≤ 3.6)."""
    return min(3.6, (width - 2 * _PAD - (cols - 1) * _GAP) / cols)


def _layout(
    titles: Sequence[Sequence[str]], cols: int, panel_w: float, aspect: float, note: bool
) -> _Grid:
    """Rows of at most ``cols`` panels per gene below a header (name and colour bar)."""
    gap, pad, head_h, row_gap = _GAP, _PAD, 0.62, 0.12
    fig_w = 2 * pad + cols * panel_w + (cols - 1) * gap
    headers, panels = [], []
    y = 0.45  # below the figure's title line
    for i, gene_titles in enumerate(titles):
        y += 0.2 if i else 0.0  # space between genes
        headers.append((pad, y, fig_w - 2 * pad))
        y += head_h
        boxes = []
        for r in range(math.ceil(len(gene_titles) / cols)):
            row = gene_titles[r * cols : (r + 1) * cols]
            y += max(t.count("\n") + 1 for t in row) * _TITLE_PT * _LINE_IN + 0.06
            boxes += [
                (pad + c * (panel_w + gap), y, panel_w, panel_w * aspect) for c in range(len(row))
            ]
            y += panel_w * aspect + row_gap
        panels.append(boxes)
    return _Grid(fig_w, y + (0.45 if note else 0.05), headers, panels)


def _panel_aspect(xy: np.ndarray, diameter: float) -> float:
    """Height / width of a panel: the tissue's, within [0.4, 1.5]."""
    w, h = (np.ptp(xy, axis=0) + 1.5 * diameter) if len(xy) else (1.0, 1.0)
    return float(np.clip(h / w if w > 0 else 1.0, 0.4, 1.5))


def plot_gene_maps(
    eval_dirs: EvalDirs,
    sample_id: str,
    genes: Sequence[str],
    *,
    max_cols: int = 4,
    limits: Limits = "measured",
    spot_diameter: float | None = None,
    width: float = PAGE_WIDTH_IN,
    note: bool = True,
) -> Figure:
    """Per gene: the measured map then each method's prediction, in a wrapping grid.

    Every panel of a gene shares one colour scale (``limits``, see
    :func:`gene_map_limits`) shown by one colour bar above the gene's panels. Spots
    are circles of their real diameter (:func:`resolve_spot_diameter`).

    Args:
        eval_dirs: one EVAL dir, a list (named by directory) or name → EVAL dir; the
            names are the panel titles.
        sample_id: test sample to show (must be in every EVAL dir).
        genes: genes to show (e.g. ``["FASN"]``).
        max_cols: panels per row (at most); a gene's panels wrap to further rows.
        limits: ``"measured"`` or ``"all"``.
        spot_diameter: in ``obsm["spatial"]`` units (e.g. from
            :func:`spot_diameter_from_metadata`).
        width: figure width in inches at most (default: the report page's).
        note: end with a line on the colour scale and the spot size (a page that
            says so in its caption can leave it out).

    Returns:
        The figure; saved at ``REPORT_DPI`` it is at most ``width × REPORT_DPI`` px wide.
    """
    named = _named_dirs(eval_dirs)
    if not named or not genes:
        raise ValueError("plot_gene_maps needs at least one EVAL dir and one gene.")
    located = {n: (read_predictions(d, sample_id), _where(d, sample_id)) for n, d in named.items()}
    return plot_gene_map_grid(
        located,
        sample_id,
        genes,
        max_cols=max_cols,
        limits=limits,
        spot_diameter=spot_diameter,
        width=width,
        note=note,
    )


def plot_gene_map_grid(
    located: Mapping[str, tuple[ad.AnnData, str]],
    sample_id: str,
    genes: Sequence[str],
    *,
    max_cols: int = 4,
    limits: Limits = "measured",
    spot_diameter: float | None = None,
    width: float = PAGE_WIDTH_IN,
    note: bool = True,
) -> Figure:
    """:func:`plot_gene_maps` from predictions already read.

    Args:
        located: panel name → (predictions with layers ``target`` and ``predicted``,
            where they were read from, for messages); the first gives the measured map.
        sample_id, genes, max_cols, limits, spot_diameter, width, note: as
            :func:`plot_gene_maps`.
    """
    if not located or not genes:
        raise ValueError("plot_gene_map_grid needs at least one prediction and one gene.")
    first = next(iter(located.values()))[0]
    diameter, source = resolve_spot_diameter(first, spot_diameter)
    cols = max(1, min(max_cols, 1 + len(located)))
    panel_w = _panel_width(cols, width)
    wrap = max(12, int(panel_w * 72 / (0.6 * _TITLE_PT)))  # ~0.6 em a character
    per_gene = [_gene_panels(gene, located, wrap) for gene in genes]
    titles = [[p.title for p in panels] for _, panels in per_gene]
    grid = _layout(titles, cols, panel_w, _panel_aspect(_xy(first), diameter), note)
    fig = new_figure((grid.width, grid.height), layout=None)
    title = f"Sample {sample_id}: measured vs predicted expression"
    fig.text(_PAD / grid.width, 1 - 0.12 / grid.height, title, fontsize=_GENE_PT - 1, va="top")
    for gene, (truth, panels), (x, top, w), boxes in zip(
        genes, per_gene, grid.headers, grid.panels, strict=True
    ):
        norm = Normalize(*gene_map_limits(truth, [p.values for p in panels[1:]], limits))
        fig.text(
            x / grid.width, 1 - (top + 0.2) / grid.height, gene, fontsize=_GENE_PT, weight="bold"
        )
        for panel, box in zip(panels, boxes, strict=True):
            ax = fig.add_axes(grid.rect(*box))
            spots = draw_spots(ax, panel.xy, panel.values, diameter, norm)
            ax.set_title(panel.title, fontsize=_TITLE_PT, pad=3)
        cax = fig.add_axes(grid.rect(x + 0.3 * w, top + 0.26, 0.7 * w, 0.13))
        bar = fig.colorbar(spots, cax=cax, orientation="horizontal", extend="both")
        bar.ax.tick_params(labelsize=_TICK_PT)
        bar.ax.xaxis.set_label_position("top")
        bar.set_label(f"{gene}: {EXPRESSION_LABEL}", fontsize=_TICK_PT)
    if note:
        text = (
            f"Colour scale shared by all panels of a gene: {LIMITS_TEXT[limits]} (clipped "
            f"beyond). Spots drawn at their diameter, {diameter:.0f} px ({source})."
        )
        # 150 characters fill the page-wide figure; a narrower figure wraps sooner
        wrapped = "\n".join(textwrap.wrap(text, min(150, int(150 * grid.width / PAGE_WIDTH_IN))))
        fig.text(_PAD / grid.width, 0.15 / grid.height, wrapped, fontsize=_TICK_PT)
    fig.set_dpi(REPORT_DPI)
    return fig


def save_gene_maps(
    eval_dirs: EvalDirs, sample_id: str, genes: Sequence[str], out: str | Path, **kw: Any
) -> Path:
    """:func:`plot_gene_maps` written to a PNG."""
    return save_figure(plot_gene_maps(eval_dirs, sample_id, genes, **kw), out)
