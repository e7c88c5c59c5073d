"""The report's tables: the method comparison and one row per evaluation and probe."""

from __future__ import annotations

import contextlib
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rankbygene import keys
from rankbygene.report.discover import read_json

__all__ = ["evals_table", "html_table", "methods_table"]


def _fmt(stat: Any) -> str:
    """A number or ``{"mean", "std"}`` as HTML kept on one line."""
    if isinstance(stat, Mapping):
        if stat.get("mean") is None:
            return "n/a"
        std = stat.get("std")
        text = f"{stat['mean']:.4f}" + (f" ± {std:.4f}" if std is not None else "")
    elif isinstance(stat, int | float):
        text = f"{stat:.4f}"
    else:
        return html.escape(str(stat)) if stat is not None else "n/a"
    return f'<span class="n">{text}</span>'


def _text(value: Any, root: Path | None = None) -> str:
    """Escaped text that may break after a ``/``; a path under ``root`` is shown relative."""
    if isinstance(value, Mapping):
        value = ", ".join(f"{k}: {v}" for k, v in value.items())
    text = str(value)
    if root is not None and Path(text).is_absolute():
        with contextlib.suppress(ValueError):  # not under root: kept whole
            text = Path(text).resolve().relative_to(root.resolve()).as_posix()
    return html.escape(text).replace("/", "/<wbr>")


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table; ``header`` is escaped here, ``rows`` hold HTML already."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>'  # a wide table scrolls, not the page


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
        [_text(name), *(_fmt(entry.get(m)) for m in metrics)] for name, entry in methods.items()
    ]
    return html_table(["method", *metrics], rows)


def _row_notes(res: Mapping[str, Any], block: Mapping[str, Any]) -> str:
    """What results.md says beside the numbers: the features' run, the split unit, what
    ± is over, dropped genes, and why per-sample and pooled PCC may be equal."""
    feats = res.get("features") or {}
    notes = []
    if feats.get("encoder"):
        notes.append(f"run: {feats.get('source_run') or 'none, frozen encoder'}")
    else:
        notes.append("no image features")
    if res.get("split_unit"):
        notes.append(f"split by {res['split_unit']}")
    if block.get("summary_spread"):
        notes.append(f"± over {block['summary_spread']}")
    if res.get("dropped_genes"):
        notes.append(f"{len(res['dropped_genes'])} genes dropped")
    if len(res.get("test_samples", [])) == 1:
        notes.append("one test sample: per-sample mean and pooled PCC are the same number")
    return _text("; ".join(notes))


def evals_table(evals: Mapping[str, Path], root: Path | None = None) -> str:
    """One row per evaluation and probe, from each EVAL's ``results.json``: the scores,
    the split (training and test samples) and the notes results.md gives.

    Paths (a panel read from a gene-list file) under ``root`` are shown relative to it.
    """
    results = {name: read_json(d / keys.RESULTS_JSON) or {} for name, d in evals.items()}
    # ``panel_source`` (where the gene panel came from) is shown when any result has it.
    with_source = any("panel_source" in res for res in results.values())
    rows = []
    for name, res in results.items():
        feats = res.get("features", {})
        probes = res.get("probes") or {res.get("probe", "?"): res}
        for probe, block in probes.items():
            panel = [_text(res.get("panel", "?"), root)]
            if with_source:
                source = res.get("panel_source")
                panel.append("n/a" if source is None else _text(source, root))
            rows.append(
                [
                    _text(name),
                    _text(feats.get("encoder", "?")),
                    *panel,
                    str(len(res.get("genes", []))),
                    _text(probe),
                    _fmt(block.get("summary", {}).get("pcc")),
                    _fmt(block.get("pooled", {}).get("pcc")),
                    _fmt(block.get("summary", {}).get("mse")),
                    _fmt(block.get("summary", {}).get("mae")),
                    html.escape(", ".join(res.get("train_samples", []))) or "?",
                    html.escape(", ".join(res.get("test_samples", []))),
                    _row_notes(res, block),
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
        "train samples",
        "test samples",
        "notes",
    ]
    return html_table(header, rows)
