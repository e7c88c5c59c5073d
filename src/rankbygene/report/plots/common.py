"""Shared helpers of the plot functions: axes creation, saving, clear missing-file errors,
wrapping titles.

Figures are built on ``matplotlib.figure.Figure`` directly (not pyplot), so no GUI
backend is ever touched and figures are freed with their last reference; PNGs are
written by the Agg canvas.

Sizes: the report shows every PNG at its natural size (one image pixel per CSS
pixel) in a page column :data:`PAGE_WIDTH_PX` wide, and figures are saved at
:data:`REPORT_DPI`. A figure at most :data:`PAGE_WIDTH_IN` wide therefore fits the
page unscaled, and a font of ``s`` points shows ``s * REPORT_DPI / 72`` pixels tall
(9 pt → 12.5 px).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

__all__ = [
    "PAGE_WIDTH_IN",
    "PAGE_WIDTH_PX",
    "REPORT_DPI",
    "new_axes",
    "new_figure",
    "require_file",
    "save_figure",
    "wrap_name",
]

PAGE_WIDTH_PX = 1100
"""Width of the report's content column in CSS pixels (``max-width`` of its body)."""
REPORT_DPI = 100
"""Dots per inch of the report's PNGs (shown 1:1 on the page)."""
PAGE_WIDTH_IN = 10.8
"""Widest figure (inches) that fits the page column unscaled, with a little margin."""


def new_figure(figsize: tuple[float, float], layout: str | None = "constrained") -> Figure:
    """A Figure with an Agg canvas (no pyplot)."""
    fig = Figure(figsize=figsize, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def new_axes(ax: Axes | None = None, figsize: tuple[float, float] = (5.0, 4.0)) -> Axes:
    """Return ``ax`` or a fresh Axes on a new Agg-backed Figure."""
    if ax is not None:
        return ax
    return new_figure(figsize).add_subplot()


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


def save_figure(fig: Figure, out: str | Path, dpi: int = REPORT_DPI) -> Path:
    """Write ``fig`` as PNG (creating parent dirs) and return the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)  # ensure an Agg canvas even for figures made elsewhere
    fig.savefig(out, dpi=dpi, format="png")
    logger.info("wrote %s", out)
    return out


def wrap_name(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` characters, broken after a space, ``-``, ``/`` or ``_``
    where possible (run and directory names have no spaces)."""
    lines = [""]
    for token in re.split(r"(?<=[\s/_-])", text):
        while len(token) > width:  # a token longer than a line: cut it
            room = width - len(lines[-1])
            lines[-1] += token[:room]
            lines.append("")
            token = token[room:]
        if len(lines[-1]) + len(token.rstrip()) > width and lines[-1]:
            lines.append("")
        lines[-1] += token
    return [line.rstrip() for line in lines if line.strip()]
