"""Finding a report's inputs and naming them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from rankbygene import keys
from rankbygene.report import discover_report_inputs
from rankbygene.report.discover import read_json, short_names


def test_discovers_evaluations_runs_and_comparison(tmp_path: Path) -> None:
    (tmp_path / keys.RESULTS_JSON).write_text(json.dumps({"methods": {"a": {}}}))
    for name in ("bleep", "stnet"):
        ev = tmp_path / "eval" / "top100" / name
        ev.mkdir(parents=True)
        (ev / keys.RESULTS_JSON).write_text(json.dumps({"summary": {}}))
    run = tmp_path / "runs" / "rbg"
    run.mkdir(parents=True)
    pd.DataFrame({"epoch": [0]}).to_csv(run / keys.RUN_METRICS, index=False)
    hidden = tmp_path / ".venv" / "x"
    hidden.mkdir(parents=True)
    (hidden / keys.RESULTS_JSON).write_text(json.dumps({"summary": {}}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / keys.RESULTS_JSON).write_text("{not json")
    sections = discover_report_inputs(tmp_path)
    assert sections.methods == tmp_path / keys.RESULTS_JSON
    assert list(sections.evals) == ["eval/top100/bleep", "eval/top100/stnet"]
    assert list(sections.runs) == ["runs/rbg"]
    assert read_json(tmp_path / "broken" / keys.RESULTS_JSON) is None


def test_short_names_drop_the_common_leading_directories() -> None:
    assert short_names(["eval/top100/bleep", "eval/top100/stnet"]) == ["bleep", "stnet"]
    assert short_names(["eval/a/x", "eval/b/x"]) == ["a/x", "b/x"]
    assert short_names(["runs/rbg"]) == ["runs/rbg"]  # one name: kept whole
    assert short_names(["a/b", "a/b/c"]) == ["b", "b/c"]
    assert short_names(["eval", "eval/x"]) == ["eval", "eval/x"]
