"""Comparison runner, her2st fold logic, fold summaries and the demo, on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rankbygene import keys
from rankbygene.demo import DemoConfig, run_demo, verdict
from rankbygene.experiments import ablation_variants, summarise_folds
from rankbygene.experiments.her2st import (
    Her2stExperimentConfig,
    outer_folds,
    run_her2st_experiment,
)


def test_outer_folds_by_patient_when_possible():
    folds, unit = outer_folds({"A1": "A", "A2": "A", "B1": "B"})
    assert unit == "patient"
    assert folds == [(["B1"], ["A1", "A2"]), (["A1", "A2"], ["B1"])]


def test_outer_folds_by_section_for_one_patient():
    folds, unit = outer_folds({"C2": "C", "C3": "C", "C4": "C"})
    assert unit == "section"
    assert folds == [(["C3", "C4"], ["C2"]), (["C2", "C4"], ["C3"]), (["C2", "C3"], ["C4"])]


def test_ablation_grid():
    grid = {(v.overrides["lambda_rank"], v.overrides["lambda_dist"]) for v in ablation_variants()}
    assert grid == {(0.0, 0.0), (0.0, 1.0), (5.0, 0.0), (5.0, 1.0)}


def _fold(pcc_a: float, pcc_b: float) -> dict:
    def res(pcc: float) -> dict:
        return {"summary": {m: {"mean": pcc, "std": 0.0} for m in ("pcc", "mse", "mae")}}

    return {"top250": {"a": res(pcc_a), "b": res(pcc_b)}}


def test_summarise_folds_mean_and_std_over_outer_folds():
    table = summarise_folds([_fold(0.1, 0.3), _fold(0.3, 0.3)])
    assert table["top250"]["a"]["pcc"]["mean"] == pytest.approx(0.2)
    assert table["top250"]["a"]["pcc"]["std"] == pytest.approx(0.1)
    assert table["top250"]["b"]["pcc"] == {"mean": 0.3, "std": 0.0, "folds": [0.3, 0.3]}


def test_verdict_is_honest_when_rankbygene_loses():
    s = {
        name: {"pcc": {"mean": v, "std": 0.0}}
        for name, v in {"frozen": 0.1, "hest-ft": 0.3, "rankbygene": 0.2}.items()
    }
    text = verdict(s)
    assert "hest-ft" in text and "2 of 2 gene-guided rows" in text and "did not come first" in text


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    config = DemoConfig(
        out=tmp_path / "demo",
        n_samples=3,
        n_spots=96,
        n_genes=60,
        patch_px=32,
        epochs=1,
        probe_epochs=2,
        panel="top20",
    )
    results = run_demo(config)
    saved = json.loads((tmp_path / "demo" / keys.RESULTS_JSON).read_text())
    assert set(saved["methods"]) == {
        "frozen", "stnet", "histogene", "hest-ft", "bleep", "rankbygene",
        "bleep-retrieval", "stnet-head", "histogene-head",
    }  # fmt: skip
    for summary in saved["methods"].values():
        assert {"pcc", "mse", "mae"} <= set(summary) and "mean" in summary["pcc"]
    assert saved["test_samples"] == ["SYN02"] and "SYN02" not in saved["train_samples"]
    assert results["verdict"] == saved["verdict"]
    html = (tmp_path / "demo" / keys.REPORT_HTML).read_text()
    assert "rankbygene" in html and "data:image/png;base64" in html
    assert "| rankbygene |" in (tmp_path / "demo" / keys.RESULTS_MD).read_text()


HER2ST = Path(__file__).resolve().parents[3] / "shared" / "data" / "her2st"


@pytest.mark.slow
@pytest.mark.skipif(not HER2ST.exists(), reason="real her2st data not beside the repository")
def test_her2st_experiment_one_fold_on_real_sections(tmp_path):
    config = Her2stExperimentConfig(
        root=HER2ST,
        sections=["C2", "C3"],
        out=tmp_path / "her2st",
        patch_px=32,
        epochs=1,
        probe_epochs=1,
        ablation=False,
        folds=1,
    )
    results = run_her2st_experiment(config)
    assert results["split_unit"] == "section"  # one patient: leave-one-section-out
    assert results["folds"] == [{"train": ["C3"], "test": ["C2"]}]
    rows = results["summary"]["top250"]
    assert set(rows) == {
        "frozen", "stnet", "histogene", "hest-ft", "bleep", "rankbygene",
        "bleep-retrieval", "stnet-head", "histogene-head", "position-only",
    }  # fmt: skip
    assert all(-1.0 <= r["pcc"]["mean"] <= 1.0 for r in rows.values() if r["pcc"]["mean"])
    text = (tmp_path / "her2st" / keys.RESULTS_MD).read_text()
    assert "within-patient" in text and "| rankbygene |" in text
