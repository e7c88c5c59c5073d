"""Training curves from a run's metrics.csv: rank accuracy and losses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rankbygene import keys
from rankbygene.report.plots import (
    plot_loss_curves,
    plot_rank_accuracy,
    read_metrics,
    save_loss_curves,
    save_rank_accuracy,
)
from rankbygene.report.plots.curves import MIN_RELATIVE_SPAN


def _run(tmp_path: Path, name: str = "run") -> Path:
    run = tmp_path / name
    run.mkdir()
    # Lightning-style CSV: epoch rows interleaved with step rows holding NaN.
    rows = []
    for e in range(3):
        losses = {"train_total": 3.0 - e, "train_ranking": 1.0 / (e + 1)}
        accs = {"rank_acc_paper": 0.5 + 0.1 * e, "val_rank_acc_full": 0.55 + 0.1 * e}
        rows.append({"epoch": e, "step": 2 * e, **losses})
        rows.append({"epoch": e, "step": 2 * e + 1, **accs})
    pd.DataFrame(rows).to_csv(run / keys.RUN_METRICS, index=False)
    return run


def test_read_metrics_collapses_step_rows(tmp_path: Path) -> None:
    df = read_metrics(_run(tmp_path))
    assert df.index.tolist() == [0, 1, 2]
    assert df["rank_acc_paper"].tolist() == pytest.approx([0.5, 0.6, 0.7])
    assert df["train_total"].tolist() == [3.0, 2.0, 1.0]


def _lines(fig) -> dict[str, list[str]]:
    """Labels of the lines of each panel, by panel title."""
    return {ax.get_title(): sorted(ln.get_label() for ln in ax.get_lines()) for ax in fig.axes}


def test_rank_accuracy_plots_the_chosen_estimates(tmp_path: Path) -> None:
    fig = plot_rank_accuracy(_run(tmp_path), estimate="both")
    assert _lines(fig) == {"training": ["rank_acc_paper"], "validation": ["val_rank_acc_full"]}
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_xdata(), [0, 1, 2])
    # Default: the low-variance estimate only, when it is logged.
    fig = plot_rank_accuracy(_run(tmp_path, "full"))
    assert _lines(fig) == {"validation": ["val_rank_acc_full"]}
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(), [0.55, 0.65, 0.75])
    fig = plot_rank_accuracy(_run(tmp_path, "paper-only"), estimate="paper")
    assert _lines(fig) == {"training": ["rank_acc_paper"]}
    out = save_rank_accuracy(_run(tmp_path, "b"), tmp_path / "fig" / "rank.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert save_loss_curves(tmp_path / "b", tmp_path / "loss.png").stat().st_size > 0


def test_several_runs_keep_their_legend_off_the_curves(tmp_path: Path) -> None:
    """One colour per run, named in a legend of the figure (below the panels), not of an
    axes that it could cover; the title is the figure's and fits it."""
    fig = plot_rank_accuracy({"a": _run(tmp_path, "a"), "b": _run(tmp_path, "b")})
    assert all(ax.get_legend() is None for ax in fig.axes)
    (legend,) = fig.legends
    assert {t.get_text() for t in legend.get_texts()} >= {"a", "b"}
    fig.canvas.draw()
    title = fig._suptitle.get_window_extent()
    assert title.y1 <= fig.bbox.y1 and title.x0 >= 0 and title.x1 <= fig.bbox.x1


def _metrics(tmp_path: Path, rows: list[dict]) -> Path:
    run = tmp_path / "losses"
    run.mkdir()
    pd.DataFrame(rows).to_csv(run / keys.RUN_METRICS, index=False)
    return run


def test_loss_plot_shows_training_beside_validation(tmp_path: Path) -> None:
    rows = [
        {"epoch": e, "train_mse": 1.0 - 0.2 * e, "val_mse": 1.1 - 0.1 * e, "train_global_batch": 64}
        for e in range(3)
    ]
    fig = plot_loss_curves(_metrics(tmp_path, rows), title="stnet (run)")
    assert _lines(fig) == {"training": ["train_mse"], "validation": ["val_mse"]}
    assert fig._suptitle.get_text() == "stnet (run)"


def test_a_flat_loss_is_drawn_flat_and_says_its_range(tmp_path: Path) -> None:
    """0.0008 of change around 4.16 must not fill the axis as if it were learning."""
    rows = [{"epoch": e, "train_contrastive": 4.1600 - 0.0004 * e} for e in range(3)]
    fig = plot_loss_curves(_metrics(tmp_path, rows))
    low, high = fig.axes[0].get_ylim()
    assert high - low >= MIN_RELATIVE_SPAN * 4.16 * 0.999
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["flat: range 0.0008"]


def test_a_real_change_keeps_matplotlib_limits(tmp_path: Path) -> None:
    rows = [{"epoch": e, "train_contrastive": 4.0 - 0.5 * e} for e in range(3)]
    fig = plot_loss_curves(_metrics(tmp_path, rows))
    assert not fig.axes[0].texts
    low, high = fig.axes[0].get_ylim()
    assert low < 3.0 and high > 4.0 and high - low < 1.5


def test_missing_metrics_names_train_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="rankbygene train"):
        plot_rank_accuracy(tmp_path / "missing")
