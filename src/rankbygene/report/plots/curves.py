"""Training curves from a run's ``metrics.csv`` (paper Fig. 7: rank accuracy over epochs)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib import rcParams
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from rankbygene import keys
from rankbygene.report.plots.common import new_axes, require_file, save_figure

__all__ = [
    "plot_loss_curves",
    "plot_rank_accuracy",
    "read_metrics",
    "save_loss_curves",
    "save_rank_accuracy",
]

RunsArg = str | Path | Sequence[str | Path] | Mapping[str, str | Path]


def read_metrics(run: str | Path) -> pd.DataFrame:
    """One row per epoch of a run's metrics.

    Lightning's CSV logger writes step rows and epoch rows with NaN in the columns
    not logged at that step; per epoch we keep the last non-missing value of each
    column.

    Args:
        run: a run directory or its ``metrics.csv``.

    Returns:
        DataFrame indexed by ``epoch``.
    """
    run = Path(run)
    path = run if run.suffix == ".csv" else run / keys.RUN_METRICS
    require_file(path, "training metrics", f"rankbygene train --out {path.parent}")
    df = pd.read_csv(path)
    if "epoch" not in df.columns:
        raise ValueError(f"{path} has no 'epoch' column; expected a rankbygene run's metrics.")
    return df.groupby("epoch").last().sort_index()


def _named_runs(runs: RunsArg) -> dict[str, Path]:
    """Normalise a run, a list of runs or a name → run mapping to name → Path."""
    if isinstance(runs, Mapping):
        return {str(k): Path(v) for k, v in runs.items()}
    if isinstance(runs, str | Path):
        runs = [runs]
    named = {}
    for r in runs:
        p = Path(r)
        named[(p.parent.name if p.suffix == ".csv" else p.name) or str(p)] = p
    return named


_STYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P")
_LEGEND_PT = 9.0


def _column_order(col: str) -> tuple[int, str]:
    """Validation columns first, then the rest by name."""
    return (0 if col.startswith("val_") else 1, col)


def _log_scale_helps(values: list[np.ndarray]) -> bool:
    """All positive and spanning more than two orders of magnitude (e.g. loss terms)."""
    flat = np.concatenate(values) if values else np.array([])
    return bool(flat.size and (flat > 0).all() and flat.max() / flat.min() > 100)


def _plot_columns(
    runs: RunsArg,
    columns: Callable[[str], bool],
    what: str,
    ylabel: str,
    ax: Axes | None,
    log_if_wide: bool = False,
) -> Axes:
    """Plot the columns selected by ``columns`` per run.

    One run: one colour per column. Several runs: one colour per run and one line
    style per column (validation columns first: solid), with a legend of runs and
    one of columns beside the axes. ``log_if_wide``: log y-axis when the values span
    more than two orders of magnitude.
    """
    named = _named_runs(runs)
    frames = {name: read_metrics(run) for name, run in named.items()}
    selected = {
        name: sorted(filter(columns, df.columns), key=_column_order) for name, df in frames.items()
    }
    kinds = sorted({c for cols in selected.values() for c in cols}, key=_column_order)
    many = len(named) > 1
    ax = new_axes(ax, figsize=(7.6, 4.0) if many else (5.0, 3.8))
    colours = rcParams["axes.prop_cycle"].by_key()["color"]
    drawn: list[np.ndarray] = []
    run_handles = []
    for i, (name, df) in enumerate(frames.items()):
        colour = colours[i % len(colours)]
        for col in selected[name]:
            series = df[col].dropna()
            if series.empty:
                continue
            k = kinds.index(col)
            if many:
                style = {"color": colour, "marker": _MARKERS[k % len(_MARKERS)]}
                style["linestyle"] = _STYLES[k % len(_STYLES)]
            elif col.endswith("_total"):  # a wide grey band under its terms, which it may equal
                style = {"color": "0.55", "lw": 5, "alpha": 0.45, "zorder": 1}
            else:
                style = {"marker": "o"}
            ax.plot(
                series.index,
                series.to_numpy(),
                ms=3.5,
                label=f"{name}: {col}" if many else col,
                **style,
            )
            drawn.append(series.to_numpy(dtype=float))
        if many and selected[name]:
            run_handles.append(Line2D([], [], color=colour, lw=2, label=name))
    if not drawn:
        raise ValueError(f"No {what} column with values in {', '.join(map(str, named.values()))}.")
    if log_if_wide and _log_scale_helps(drawn):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if many:
        style_handles = [
            Line2D(
                [],
                [],
                color="#555555",
                linestyle=_STYLES[k % len(_STYLES)],
                marker=_MARKERS[k % len(_MARKERS)],
                ms=3.5,
                label=col,
            )
            for k, col in enumerate(kinds)
        ]
        legend = ax.legend(
            handles=run_handles,
            title="run",
            fontsize=_LEGEND_PT,
            title_fontsize=_LEGEND_PT,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
        )
        ax.add_artist(legend)
        ax.legend(
            handles=style_handles,
            title="column",
            fontsize=_LEGEND_PT,
            title_fontsize=_LEGEND_PT,
            loc="lower left",
            bbox_to_anchor=(1.02, 0.0),
        )
    elif len(drawn) <= 2:
        ax.legend(fontsize=_LEGEND_PT)
    else:  # below the axes: inside, several lines leave no free corner
        ax.legend(fontsize=_LEGEND_PT, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2)
    return ax


def plot_rank_accuracy(
    runs: RunsArg,
    ax: Axes | None = None,
    estimate: Literal["auto", "full", "paper", "both"] = "auto",
) -> Axes:
    """Plot the rank-accuracy columns of one or several runs against the epoch.

    Args:
        runs: a run dir (or its metrics.csv), a list of them, or name → run dir.
        ax: axes to draw on; a new figure if None.
        estimate: ``full`` (low-variance estimate over all anchors), ``paper`` (the
            paper's 8-draw estimate), ``both``, or ``auto`` (default: ``full`` when the
            runs log it, else ``paper``).

    Returns:
        The axes (``ax.figure`` is the figure).
    """
    if estimate == "auto":
        logged = (c for run in _named_runs(runs).values() for c in read_metrics(run).columns)
        estimate = "full" if any(c.endswith("rank_acc_full") for c in logged) else "paper"
    wanted = ("full", "paper") if estimate == "both" else (estimate,)
    ax = _plot_columns(
        runs,
        lambda c: any(c.endswith(f"rank_acc_{e}") for e in wanted),
        f"'*rank_acc_{estimate}'",
        "rank accuracy",
        ax,
    )
    ax.set_title("Cross-modal rank accuracy", fontsize=11)
    return ax


def plot_loss_curves(runs: RunsArg, ax: Axes | None = None) -> Axes:
    """Plot every ``train_*`` loss term of one or several runs against the epoch."""
    ax = _plot_columns(
        runs,
        lambda c: c.startswith("train_") and "rank_acc" not in c and "global_batch" not in c,
        "'train_*' loss",
        "loss",
        ax,
        log_if_wide=True,
    )
    ax.set_title("Training losses", fontsize=11)
    return ax


def save_rank_accuracy(runs: RunsArg, out: str | Path) -> Path:
    """:func:`plot_rank_accuracy` written to a PNG."""
    return save_figure(plot_rank_accuracy(runs).figure, out)


def save_loss_curves(runs: RunsArg, out: str | Path) -> Path:
    """:func:`plot_loss_curves` written to a PNG."""
    return save_figure(plot_loss_curves(runs).figure, out)
