"""Training curves from a run's ``metrics.csv`` (paper Fig. 7: rank accuracy over epochs)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes

from rankbygene import keys
from rankbygene.plotting.common import new_axes, require_file, save_figure

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


def _plot_columns(
    runs: RunsArg,
    columns: Callable[[str], bool],
    what: str,
    ylabel: str,
    ax: Axes | None,
) -> Axes:
    """Plot the columns selected by ``columns`` per run: one colour per run, validation
    columns solid and training columns dashed."""
    ax = new_axes(ax)
    named = _named_runs(runs)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    n_lines = 0
    for i, (name, run) in enumerate(named.items()):
        df = read_metrics(run)
        for col in filter(columns, df.columns):
            series = df[col].dropna()
            if series.empty:
                continue
            label = col if len(named) == 1 else f"{name}: {col}"
            ax.plot(
                series.index,
                series.to_numpy(),
                marker="o",
                ms=3,
                label=label,
                color=colours[i % len(colours)] if len(named) > 1 else None,
                linestyle="--" if col.startswith("train_") and len(named) > 1 else "-",
            )
            n_lines += 1
    if n_lines == 0:
        raise ValueError(f"No {what} column with values in {', '.join(map(str, named.values()))}.")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
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
    ax.set_title("Cross-modal rank accuracy (solid: validation, dashed: training)")
    return ax


def plot_loss_curves(runs: RunsArg, ax: Axes | None = None) -> Axes:
    """Plot every ``train_*`` loss term of one or several runs against the epoch."""
    ax = _plot_columns(
        runs,
        lambda c: c.startswith("train_") and "rank_acc" not in c and "global_batch" not in c,
        "'train_*' loss",
        "loss",
        ax,
    )
    ax.set_title("Training losses")
    return ax


def save_rank_accuracy(runs: RunsArg, out: str | Path) -> Path:
    """:func:`plot_rank_accuracy` written to a PNG."""
    return save_figure(plot_rank_accuracy(runs).figure, out)


def save_loss_curves(runs: RunsArg, out: str | Path) -> Path:
    """:func:`plot_loss_curves` written to a PNG."""
    return save_figure(plot_loss_curves(runs).figure, out)
