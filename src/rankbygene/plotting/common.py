"""Shared helpers of the plot functions: axes creation, saving, clear missing-file errors.

Figures are built on ``matplotlib.figure.Figure`` directly (not pyplot), so no GUI
backend is ever touched and figures are freed with their last reference; PNGs are
written by the Agg canvas.
"""

from __future__ import annotations

import logging
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

__all__ = ["new_axes", "require_file", "save_figure"]


def new_axes(ax: Axes | None = None, figsize: tuple[float, float] = (5.0, 4.0)) -> Axes:
    """Return ``ax`` or a fresh Axes on a new Agg-backed Figure."""
    if ax is not None:
        return ax
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig.add_subplot()


def require_file(path: str | Path, what: str, command: str) -> Path:
    """Return ``path`` if it exists, else raise a FileNotFoundError naming the command to run.

    Args:
        path: the stored result the plot reads.
        what: what the file is, for the message (e.g. "training metrics").
        command: the command that produces it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No {what} at {path}. Run `{command}` first.")
    return path


def save_figure(fig: Figure, out: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` as PNG (creating parent dirs) and return the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)  # ensure an Agg canvas even for figures made elsewhere
    fig.savefig(out, dpi=dpi, format="png")
    logger.info("wrote %s", out)
    return out
