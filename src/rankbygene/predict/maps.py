"""PNG maps of predicted expression: ``PRED/maps/{id}_{gene}.png``.

A slide's map is its thumbnail (the 16 µm/px view tissue was segmented on) with the
predicted values as a semi-transparent heatmap over the tissue tiles, a colour bar in
the predictor's units and a scale bar in mm. A section's map (``predict --data``) is
the report's spot map: measured and predicted side by side with the PCC when the
section has measurements (:func:`rankbygene.report.plots.plot_gene_map_grid`), else
the prediction alone.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import anndata as ad
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar
from PIL import Image

from rankbygene import keys
from rankbygene.data.images import ArrayReader, RegionReader
from rankbygene.data.wsi import TiledSlide, pyramid_thumbnail, read_thumbnail
from rankbygene.fileio import atomic_path
from rankbygene.report.plots.common import REPORT_DPI, new_axes, new_figure
from rankbygene.report.plots.spatial import gene_map_limits, plot_gene_map_grid
from rankbygene.report.plots.spots import CMAP, draw_spots, resolve_spot_diameter

logger = logging.getLogger(__name__)

__all__ = [
    "map_background",
    "plot_section_map",
    "plot_slide_map",
    "save_map",
    "scale_bar_mm",
    "tile_grid_image",
]

_TITLE_PT, _LABEL_PT = 11.0, 9.0
_MAX_W_IN, _MAX_H_IN = 6.6, 6.0  # a map sits beside text in the report and on a screen
BACKGROUND_PX = 600
"""Width (px) of a map's slide background when it can be had cheaply (see map_background):
a little more than a map's width, as finer detail is not shown and costs PNG bytes."""


def map_background(tiles: TiledSlide, reader: RegionReader) -> tuple[np.ndarray, int]:
    """The slide at about :data:`BACKGROUND_PX` wide for the maps, and its downsample.

    Finer than the segmentation thumbnail only when that costs no extra pass over a
    level 0 on disk: from a pyramid level, or from an image already in memory (JPEG,
    PNG). Otherwise the segmentation thumbnail itself.

    Shape:
        returns (h, w, 3) uint8 and the level-0 pixels per background pixel.
    """
    d = max(1, math.ceil(tiles.shape[1] / BACKGROUND_PX))
    if d >= tiles.downsample:
        return tiles.thumbnail, tiles.downsample
    finer = pyramid_thumbnail(tiles.path, tiles.shape, d)
    if finer is None and isinstance(reader, ArrayReader):
        finer = read_thumbnail(reader, tiles.shape, d)
    return (finer, d) if finer is not None else (tiles.thumbnail, tiles.downsample)


def scale_bar_mm(width_mm: float) -> float:
    """A round scale-bar length (1, 2 or 5 × 10ⁿ mm) of about a fifth of the width."""
    target = max(width_mm / 5, 1e-3)
    exponent = math.floor(math.log10(target))
    return min((m * 10**exponent for m in (1, 2, 5, 10)), key=lambda v: abs(v - target))


def tile_grid_image(tiles: TiledSlide, values: np.ndarray) -> np.ndarray:
    """The tile values on the slide's tile grid (NaN off tissue), one pixel per tile.

    Tiles sit on a grid of ``window_px`` from the slide's corner (as ``tile_grid``
    places them), so each tile's grid cell is its corner divided by the window.

    Shape:
        values (T,); returns (ceil(H / window), ceil(W / window)) float32.
    """
    height, width = tiles.shape
    w = tiles.window_px
    grid = np.full((math.ceil(height / w), math.ceil(width / w)), np.nan, dtype=np.float32)
    cells = tiles.origins // w
    grid[cells[:, 1], cells[:, 0]] = values
    return grid


def _tissue_view(tiles: TiledSlide) -> tuple[tuple[float, float], tuple[float, float]]:
    """The map's view in mm: the tissue tiles' bounding box with a margin (two tiles or
    5 % of its side), within the slide; the whole slide when it has no tile."""
    mm = tiles.mpp / 1000.0
    height, width = tiles.shape[0] * mm, tiles.shape[1] * mm
    if tiles.n_tiles == 0:
        return (0.0, width), (0.0, height)
    low = tiles.origins.min(axis=0) * mm
    high = (tiles.origins.max(axis=0) + tiles.window_px) * mm
    margin = np.maximum(2 * tiles.window_px * mm, 0.05 * (high - low))
    low, high = np.maximum(low - margin, 0.0), np.minimum(high + margin, [width, height])
    return (float(low[0]), float(high[0])), (float(low[1]), float(high[1]))


def plot_slide_map(
    tiles: TiledSlide,
    values: np.ndarray,
    gene: str,
    *,
    units: str,
    alpha: float,
    subtitle: str = "",
    background: tuple[np.ndarray, int] | None = None,
) -> Figure:
    """The slide thumbnail with one gene's predicted values over its tissue tiles.

    Args:
        tiles: the slide's tiling (thumbnail, tiles, pixel size).
        values: the gene's prediction per tile.
        gene: its name (title, colour bar).
        units: what the values are (colour-bar label).
        alpha: heatmap opacity.
        subtitle: a second title line (tile size, predictor).
        background: the slide image and its downsample (:func:`map_background`);
            default: the segmentation thumbnail.

    Returns:
        The figure; the colour scale spans the 1st–99th percentile of ``values``.

    Shape:
        values (T,), T = tiles.n_tiles.
    """
    image, downsample = background or (tiles.thumbnail, tiles.downsample)
    mm_per_px = tiles.mpp / 1000.0
    extent_w = image.shape[1] * downsample * mm_per_px
    extent_h = image.shape[0] * downsample * mm_per_px
    (x0, x1), (y0, y1) = _tissue_view(tiles)
    aspect = (y1 - y0) / (x1 - x0)
    panel_w = min(_MAX_W_IN - 1.4, (_MAX_H_IN - 0.8) / aspect)
    fig = new_figure((panel_w + 1.4, panel_w * aspect + 0.8))
    ax = fig.add_subplot()
    ax.imshow(image, extent=(0, extent_w, extent_h, 0), interpolation="antialiased")
    grid = tile_grid_image(tiles, values)
    gh, gw = grid.shape
    cell_mm = tiles.window_px * mm_per_px
    norm = Normalize(*gene_map_limits(values))
    cmap = colormaps[CMAP].with_extremes(bad=(0, 0, 0, 0))
    ax.imshow(
        np.ma.masked_invalid(grid),
        extent=(0, gw * cell_mm, gh * cell_mm, 0),
        cmap=cmap,
        norm=norm,
        alpha=alpha,
        interpolation="nearest",
    )
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)
    ax.set_xticks([])
    ax.set_yticks([])
    length = scale_bar_mm(x1 - x0)
    bar = AnchoredSizeBar(
        ax.transData, length, f"{length:g} mm", "lower right", pad=0.4, sep=4,
        frameon=True, size_vertical=(y1 - y0) / 150, fontproperties={"size": _LABEL_PT},
    )  # fmt: skip
    bar.patch.set_alpha(0.8)
    ax.add_artist(bar)
    title = f"{tiles.slide_id}: {gene}, predicted"
    ax.set_title(title + (f"\n{subtitle}" if subtitle else ""), fontsize=_TITLE_PT)
    cbar = fig.colorbar(ScalarMappable(norm, CMAP), ax=ax, shrink=0.8, extend="both")
    cbar.set_label(f"{gene}: {units}", fontsize=_LABEL_PT)
    cbar.ax.tick_params(labelsize=_LABEL_PT)
    return fig


def plot_section_map(adata: ad.AnnData, sample_id: str, gene: str, where: str) -> Figure:
    """A section's map of one gene: measured beside predicted (with the PCC) when the
    predictions hold measurements (layer ``target``), else the prediction alone."""
    if keys.LAYER_TARGET in adata.layers:
        return plot_gene_map_grid({"predicted": (adata, where)}, sample_id, [gene])
    values = np.asarray(adata[:, gene].X, dtype=float).ravel()
    xy = np.asarray(adata.obsm[keys.OBSM_SPATIAL], dtype=float)
    diameter, _ = resolve_spot_diameter(adata)
    ax = new_axes(figsize=(5.0, 4.4))
    spots = draw_spots(ax, xy, values, diameter, Normalize(*gene_map_limits(values)))
    ax.set_title(f"{sample_id}: {gene}, predicted (no measurement)", fontsize=_TITLE_PT)
    bar = ax.figure.colorbar(spots, ax=ax, shrink=0.8, extend="both")
    bar.set_label(f"{gene}: predicted log1p(norm.) expression", fontsize=_LABEL_PT)
    return ax.figure


def save_map(fig: Figure, path: Path) -> Path:
    """Write a map PNG atomically (a half-written map is never left).

    Saved as RGB without the alpha channel matplotlib writes, with Pillow's optimised
    compression: a slide background does not compress, so this keeps maps small.
    """
    fig.set_dpi(REPORT_DPI)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    image = Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", optimize=True)
    logger.debug("wrote %s", path)
    return path
