"""Training curves from a run's metrics.csv: rank accuracy and losses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rankbygene import keys
from rankbygene.report.plots import (
    plot_rank_accuracy,
    read_metrics,
    save_loss_curves,
    save_rank_accuracy,
)
from rankbygene.report.plots.common import new_axes


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


def test_rank_accuracy_plots_the_chosen_estimates(tmp_path: Path) -> None:
    ax = plot_rank_accuracy(_run(tmp_path), estimate="both")
    labels = sorted(line.get_label() for line in ax.get_lines())
    assert labels == ["rank_acc_paper", "val_rank_acc_full"]
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [0, 1, 2])
    # Default: the low-variance estimate only, when it is logged.
    ax = plot_rank_accuracy(_run(tmp_path, "full"))
    assert [line.get_label() for line in ax.get_lines()] == ["val_rank_acc_full"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [0.55, 0.65, 0.75])
    ax = plot_rank_accuracy(_run(tmp_path, "paper-only"), estimate="paper")
    assert [line.get_label() for line in ax.get_lines()] == ["rank_acc_paper"]
    given = new_axes()
    assert plot_rank_accuracy({"a": _run(tmp_path, "a")}, ax=given) is given
    out = save_rank_accuracy(_run(tmp_path, "b"), tmp_path / "fig" / "rank.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert save_loss_curves(tmp_path / "b", tmp_path / "loss.png").stat().st_size > 0


def test_missing_metrics_names_train_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="rankbygene train"):
        plot_rank_accuracy(tmp_path / "missing")
