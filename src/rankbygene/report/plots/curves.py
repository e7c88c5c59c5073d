"""Training curves from a run's ``metrics.csv`` (paper Fig. 7: rank accuracy over epochs),
training and validation side by side."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib import rcParams
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from rankbygene import keys
from rankbygene.report.plots.common import new_figure, require_file, save_figure

__all__ = [
    "MIN_RELATIVE_SPAN",
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
_PHASES = {"train": "training", "val": "validation"}
MIN_RELATIVE_SPAN = 0.05
"""A linear y-axis spans at least this fraction of the curves' level (their largest
absolute value): a loss that moves by 0.0008 around 4.16 is drawn flat, not zoomed
until it looks like learning, and the figure says its range."""


def _phase(col: str) -> str:
    """``val_*`` columns are validation; every other column (``train_*``, or unprefixed
    in older runs) is training."""
    return "val" if col.startswith("val_") else "train"


def _term(col: str) -> str:
    """The column without its phase prefix: ``val_rank_acc_full`` -> ``rank_acc_full``."""
    for prefix in ("train_", "val_"):
        if col.startswith(prefix):
            return col[len(prefix) :]
    return col


def _log_scale_helps(values: list[np.ndarray]) -> bool:
    """All positive and spanning more than two orders of magnitude (e.g. loss terms)."""
    flat = np.concatenate(values) if values else np.array([])
    return bool(flat.size and (flat > 0).all() and flat.max() / flat.min() > 100)


def _honest_limits(values: list[np.ndarray]) -> tuple[float, float, float] | None:
    """(low, high, data range) of a y-axis widened to :data:`MIN_RELATIVE_SPAN` of the
    level when the curves are flatter than that; None when they are not."""
    flat = np.concatenate(values)
    low, high = float(flat.min()), float(flat.max())
    level = float(np.abs(flat).max()) or 1.0
    span = MIN_RELATIVE_SPAN * level
    if high - low >= span:
        return None
    centre = (high + low) / 2
    return centre - span / 2, centre + span / 2, high - low


def _plot_phases(
    runs: RunsArg,
    columns: Callable[[str], bool],
    what: str,
    ylabel: str,
    title: str,
    log_if_wide: bool = False,
) -> Figure:
    """The columns selected by ``columns``, training and validation side by side.

    One panel per phase present (training: ``train_*``, validation: ``val_*``), sharing
    the y-axis so that the two read on one scale. One run: one colour per term (the
    same in both panels; a ``total`` that its terms may equal is a wide grey band). Several
    runs: one colour per run and one line style per term. The legend sits below the
    panels, never over a curve. ``log_if_wide``: log y-axis when the values span more
    than two orders of magnitude; a linear axis is never narrower than
    :data:`MIN_RELATIVE_SPAN` of the level, and says "flat: range ..." when widened.
    """
    named = _named_runs(runs)
    frames = {name: read_metrics(run) for name, run in named.items()}
    selected = {name: sorted(filter(columns, df.columns)) for name, df in frames.items()}
    present = {_phase(c) for cols in selected.values() for c in cols}
    phases = [p for p in _PHASES if p in present]
    terms = sorted({_term(c) for cols in selected.values() for c in cols})
    many = len(named) > 1
    fig = new_figure((10.4 if len(phases) > 1 else 5.6, 4.4))
    axes = fig.subplots(1, max(len(phases), 1), sharey=True, squeeze=False)[0]
    colours = rcParams["axes.prop_cycle"].by_key()["color"]
    drawn: list[np.ndarray] = []
    panel_values: dict[Axes, list[np.ndarray]] = {ax: [] for ax in axes}
    run_handles: dict[str, Line2D] = {}  # several runs: a colour each
    term_handles: dict[str, Line2D] = {}  # a line style (several runs) or colour per term
    for ax, phase in zip(axes, phases, strict=False):
        for i, (name, df) in enumerate(frames.items()):
            for col in (c for c in selected[name] if _phase(c) == phase):
                series = df[col].dropna()
                if series.empty:
                    continue
                k = terms.index(_term(col))
                if many:
                    style = {
                        "color": colours[i % len(colours)],
                        "marker": _MARKERS[k % len(_MARKERS)],
                    }
                    style["linestyle"] = _STYLES[k % len(_STYLES)]
                elif _term(col) == "total":
                    style = {"color": "0.55", "lw": 5, "alpha": 0.45, "zorder": 1}
                else:
                    style = {"color": colours[k % len(colours)], "marker": "o"}
                (line,) = ax.plot(series.index, series.to_numpy(), ms=3.5, label=col, **style)
                drawn.append(series.to_numpy(dtype=float))
                panel_values[ax].append(drawn[-1])
                if many:
                    run_handles.setdefault(name, Line2D([], [], color=style["color"], lw=2))
                term_handles.setdefault(
                    _term(col),
                    Line2D([], [], color="#555555", ls=style["linestyle"], marker=style["marker"],
                           ms=3.5)
                    if many else line,
                )  # fmt: skip
        ax.set_title(_PHASES[phase], fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if not drawn:
        raise ValueError(f"No {what} column with values in {', '.join(map(str, named.values()))}.")
    axes[0].set_ylabel(ylabel)
    if log_if_wide and _log_scale_helps(drawn):
        axes[0].set_yscale("log")
    elif (widened := _honest_limits(drawn)) is not None:
        axes[0].set_ylim(widened[0], widened[1])
        for ax, values in panel_values.items():  # each panel: the range of its own values
            flat = np.concatenate(values) if values else np.zeros(1)
            ax.text(0.02, 0.04, f"flat: range {np.ptp(flat):.2g}", transform=ax.transAxes,
                    fontsize=_LEGEND_PT, color="#a33")  # fmt: skip
    # runs first; the terms too unless one term is all there is beside several runs
    handles = run_handles | (term_handles if len(term_handles) > 1 or not many else {})
    labels = list(handles)
    fig.legend(
        [handles[h] for h in labels],
        labels,
        loc="outside lower center",
        ncols=min(len(labels), 5),
        fontsize=_LEGEND_PT,
    )
    fig.suptitle(title, fontsize=11)
    return fig


def plot_rank_accuracy(
    runs: RunsArg,
    estimate: Literal["auto", "full", "paper", "both"] = "auto",
    title: str | None = None,
) -> Figure:
    """Rank accuracy of one or several runs against the epoch, training beside validation.

    Args:
        runs: a run dir (or its metrics.csv), a list of them, or name → run dir.
        estimate: ``full`` (low-variance estimate over all anchors), ``paper`` (the
            paper's 8-draw estimate), ``both``, or ``auto`` (default: ``full`` when the
            runs log it, else ``paper``).
        title: figure title (default: "Cross-modal rank accuracy").

    Returns:
        The figure (one axes per phase logged).
    """
    if estimate == "auto":
        logged = (c for run in _named_runs(runs).values() for c in read_metrics(run).columns)
        estimate = "full" if any(c.endswith("rank_acc_full") for c in logged) else "paper"
    wanted = ("full", "paper") if estimate == "both" else (estimate,)
    return _plot_phases(
        runs,
        lambda c: any(c.endswith(f"rank_acc_{e}") for e in wanted),
        f"'*rank_acc_{estimate}'",
        "rank accuracy",
        title or "Cross-modal rank accuracy",
    )


def _is_loss(col: str) -> bool:
    return col.startswith(("train_", "val_")) and not any(
        s in col for s in ("rank_acc", "global_batch")
    )


def plot_loss_curves(runs: RunsArg, title: str | None = None) -> Figure:
    """Every loss term of one or several runs against the epoch, training beside validation."""
    return _plot_phases(runs, _is_loss, "loss", "loss", title or "Losses", log_if_wide=True)


def save_rank_accuracy(runs: RunsArg, out: str | Path) -> Path:
    """:func:`plot_rank_accuracy` written to a PNG."""
    return save_figure(plot_rank_accuracy(runs), out)


def save_loss_curves(runs: RunsArg, out: str | Path) -> Path:
    """:func:`plot_loss_curves` written to a PNG."""
    return save_figure(plot_loss_curves(runs), out)
