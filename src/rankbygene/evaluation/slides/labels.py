"""Slide label CSVs: one row per slide, classification labels or survival times.

Columns: ``slide_id`` (feature file stem), optional ``case_id`` (patient; defaults to
the slide id; slides of one case always fall in the same fold); classification: a
label column (``label`` by default, any values); survival: ``time`` and ``event``
(1 = observed), or MCAT's ``survival_months`` and ``censorship`` (1 = censored).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rankbygene.evaluation.slides.config import TASKS, SlideEvalConfig

__all__ = ["SlideLabels", "read_slide_labels"]


@dataclass(frozen=True)
class SlideLabels:
    """Labels of S slides, aligned by row.

    Attributes:
        slide_ids: (S,) feature file stems.
        case_ids: (S,) patient / case of each slide.
        labels: (S,) integer class codes (classification) or None.
        classes: class names, index = code (classification) or [].
        times: (S,) follow-up times (survival) or None.
        events: (S,) 1 observed / 0 censored (survival) or None.
    """

    slide_ids: np.ndarray
    case_ids: np.ndarray
    labels: np.ndarray | None = None
    classes: list[str] | None = None
    times: np.ndarray | None = None
    events: np.ndarray | None = None

    def strata(self) -> np.ndarray:
        """What folds are stratified on: the class, or whether the event was observed."""
        return self.labels if self.labels is not None else self.events


def read_slide_labels(
    path: str | Path, task: str, label_column: str = SlideEvalConfig.label_column
) -> SlideLabels:
    """Read and validate a slide label CSV (see the module docstring for columns)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No label file {path}.")
    table = pd.read_csv(path)
    if "slide_id" not in table:
        raise ValueError(f"{path}: no 'slide_id' column (columns: {', '.join(table.columns)}).")
    table["slide_id"] = table["slide_id"].astype(str)
    dup = table["slide_id"][table["slide_id"].duplicated()].unique()
    if dup.size:
        raise ValueError(f"{path}: duplicate slide_id(s) {', '.join(dup[:5])}; one row per slide.")
    slides = table["slide_id"].to_numpy()
    cases = table["case_id"].astype(str).to_numpy() if "case_id" in table else slides.copy()
    if task == "classification":
        if label_column not in table:
            raise ValueError(
                f"{path}: no label column {label_column!r} (columns: "
                f"{', '.join(table.columns)}); pass --label-column."
            )
        column = table[label_column]
        if column.isna().any():
            raise ValueError(f"{path}: {int(column.isna().sum())} slide(s) without a label.")
        codes, classes = pd.factorize(column.astype(str), sort=True)
        if len(classes) < 2:
            raise ValueError(f"{path}: column {label_column!r} has one class only ({classes[0]}).")
        return SlideLabels(slides, cases, labels=codes, classes=[str(c) for c in classes])
    if task == "survival":
        if {"time", "event"} <= set(table):
            time_column = "time"
            times, events = table["time"].to_numpy(float), table["event"].to_numpy()
        elif {"survival_months", "censorship"} <= set(table):
            time_column = "survival_months"
            times = table["survival_months"].to_numpy(float)
            events = 1 - table["censorship"].to_numpy()
        else:
            raise ValueError(
                f"{path}: survival needs columns 'time' and 'event' (1 = observed), or MCAT's "
                f"'survival_months' and 'censorship' (columns: {', '.join(table.columns)})."
            )
        # a follow-up time of 0 or less is a data error (e.g. a date mix-up), and the
        # time bins, cut at quantiles, would start at it
        bad = ~np.isfinite(times) | (times <= 0)
        if bad.any():
            pairs = zip(slides[bad][:5], times[bad][:5], strict=True)
            examples = ", ".join(f"{s} ({t:g})" for s, t in pairs)
            raise ValueError(
                f"{path}: column '{time_column}' must hold survival times > 0; "
                f"{int(bad.sum())} slide(s) do not: {examples}. Fix or drop those rows."
            )
        if not np.isin(events, (0, 1)).all():
            raise ValueError(f"{path}: event/censorship values must be 0 or 1.")
        return SlideLabels(slides, cases, times=times, events=events.astype(np.int64))
    raise ValueError(f"Unknown slide task {task!r}; choose one of {', '.join(TASKS)}.")
