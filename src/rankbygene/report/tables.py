"""The report's tables: the method comparison and one row per evaluation and probe."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rankbygene import keys
from rankbygene.report.discover import read_json

__all__ = ["evals_table", "html_table", "methods_table"]


def _fmt(stat: Any) -> str:
    if isinstance(stat, Mapping):
        if stat.get("mean") is None:
            return "n/a"
        std = stat.get("std")
        return f"{stat['mean']:.4f}" + (f" ± {std:.4f}" if std is not None else "")
    if isinstance(stat, int | float):
        return f"{stat:.4f}"
    return html.escape(str(stat)) if stat is not None else "n/a"


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table; ``header`` is escaped here, ``rows`` hold HTML already."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def methods_table(path: Path) -> str:
    """``{"methods": {name: {metric: {"mean", "std"}}}}`` as one row per method."""
    data = read_json(path) or {}
    methods: Mapping[str, Any] = data.get("methods", {})
    metrics: list[str] = []
    for entry in methods.values():
        for key, value in entry.items():
            if isinstance(value, Mapping) and "mean" in value and key not in metrics:
                metrics.append(key)
    rows = [
        [html.escape(name), *(_fmt(entry.get(m)) for m in metrics)]
        for name, entry in methods.items()
    ]
    return html_table(["method", *metrics], rows)


def evals_table(evals: Mapping[str, Path]) -> str:
    """One row per evaluation and probe, from each EVAL's ``results.json``."""
    results = {name: read_json(d / keys.RESULTS_JSON) or {} for name, d in evals.items()}
    # ``panel_source`` (where the gene panel came from) is shown when any result has it.
    with_source = any("panel_source" in res for res in results.values())
    rows = []
    for name, res in results.items():
        feats = res.get("features", {})
        probes = res.get("probes") or {res.get("probe", "?"): res}
        for probe, block in probes.items():
            panel = [html.escape(str(res.get("panel", "?")))]
            if with_source:
                panel.append(html.escape(str(res.get("panel_source", "n/a"))))
            rows.append(
                [
                    html.escape(name),
                    html.escape(str(feats.get("encoder", "?"))),
                    *panel,
                    str(len(res.get("genes", []))),
                    html.escape(str(probe)),
                    _fmt(block.get("summary", {}).get("pcc")),
                    _fmt(block.get("pooled", {}).get("pcc")),
                    _fmt(block.get("summary", {}).get("mse")),
                    _fmt(block.get("summary", {}).get("mae")),
                    html.escape(", ".join(res.get("test_samples", []))),
                ]
            )
    header = [
        "evaluation",
        "encoder",
        "panel",
        *(["panel source"] if with_source else []),
        "genes",
        "probe",
        "PCC (per-sample mean)",
        "PCC (pooled)",
        "MSE",
        "MAE",
        "test samples",
    ]
    return html_table(header, rows)
