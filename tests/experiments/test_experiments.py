"""Comparison runner, her2st fold logic, fold summaries and the demo, on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import pytest

from rankbygene import keys
from rankbygene.evaluation.metrics import gene_metrics
from rankbygene.experiments import ablation_variants, summarise_folds
from rankbygene.experiments.demo import run_demo, verdict
from rankbygene.experiments.her2st import outer_folds, run_her2st_experiment
from rankbygene.experiments.settings import DemoConfig, Her2stExperimentConfig
from rankbygene.text import format_mean_std


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
    assert saved["test_samples"] == ["SYN02"] and saved["train_samples"] == ["SYN00", "SYN01"]
    table = (tmp_path / "demo" / keys.RESULTS_MD).read_text()
    eval_dir = tmp_path / "demo" / keys.COMPARISON_EVAL / "top20"
    for name, summary in saved["methods"].items():
        # each row is its evaluation's summary, and the table prints those numbers
        row = json.loads((eval_dir / name / keys.RESULTS_JSON).read_text())
        assert summary == row["summary"], name
        cells = " | ".join(format_mean_std(summary[m]) for m in ("pcc", "mse", "mae"))
        assert f"| {name} | {cells} |" in table
        # the own predictors (one model) are scored on their run's panel
        if name.endswith(("-head", "-retrieval")):
            run = tmp_path / "demo" / keys.COMPARISON_RUNS / name.rsplit("-", 1)[0]
            assert row["genes"] == (run / keys.RUN_GENES).read_text().split(), name
            assert row["probes"][row["primary_probe"]]["summary_spread"] == "test samples"
    best = max(saved["methods"], key=lambda m: saved["methods"][m]["pcc"]["mean"] or -1)
    assert saved["verdict"].startswith(f"Best mean PCC: {best} (")
    assert results["verdict"] == saved["verdict"]
    html = (tmp_path / "demo" / keys.REPORT_HTML).read_text()
    assert "rankbygene" in html and "data:image/png;base64" in html


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
    # every row's score is the per-sample PCC of the predictions it wrote (one test section)
    fold_eval = tmp_path / "her2st" / keys.EXPERIMENT_FOLDS / "C2" / keys.COMPARISON_EVAL
    for name, row in rows.items():
        pred = ad.read_h5ad(fold_eval / "top250" / name / keys.PREDICTIONS_DIR / "C2.h5ad")
        per_fold_models = json.loads((fold_eval / "top250" / name / keys.RESULTS_JSON).read_text())
        assert row["pcc"]["mean"] == pytest.approx(per_fold_models["summary"]["pcc"]["mean"])
        ensemble = gene_metrics(pred.layers[keys.LAYER_PREDICTED], pred.layers[keys.LAYER_TARGET])
        assert per_fold_models["per_sample"]["C2"]["ensemble"]["pcc"] == pytest.approx(
            ensemble["pcc"], rel=1e-5
        ), name
    # each row scores its own predictions (no two rows share a file or a number)
    scores = [row["pcc"]["mean"] for row in rows.values()]
    assert len(set(scores)) == len(scores), scores
    text = (tmp_path / "her2st" / keys.RESULTS_MD).read_text()
    assert "within-patient" in text and "| rankbygene |" in text


def test_a_job_directory_of_other_settings_is_refused_unless_overwritten(tmp_path):
    from rankbygene.experiments.comparison import check_same_settings

    out = tmp_path / "job"
    check_same_settings(out, {"epochs": 3, "seed": 0}, overwrite=False)
    (out / keys.COMPARISON_RUNS / "rankbygene").mkdir(parents=True)
    check_same_settings(out, {"epochs": 3, "seed": 0}, overwrite=False)  # same: resumes
    with pytest.raises(ValueError, match=r"other settings \(epochs differ\).*--overwrite"):
        check_same_settings(out, {"epochs": 5, "seed": 0}, overwrite=False)
    assert (out / keys.COMPARISON_RUNS / "rankbygene").is_dir()  # nothing deleted
    check_same_settings(out, {"epochs": 5, "seed": 0}, overwrite=True)
    assert not (out / keys.COMPARISON_RUNS).exists()
    assert json.loads((out / keys.JOB_SETTINGS).read_text()) == {"epochs": 5, "seed": 0}
    legacy = tmp_path / "legacy"
    (legacy / keys.COMPARISON_RUNS).mkdir(parents=True)
    with pytest.raises(ValueError, match="recorded no settings"):
        check_same_settings(legacy, {"epochs": 3}, overwrite=False)


def _tiny_cnn_output(omp_threads: str, fixed: bool) -> str:
    """The tiny encoder's train-mode output sum in a fresh process (channels-last convs and
    batch norm split their sums across threads, so this number depends on the count)."""
    import os
    import subprocess
    import sys

    code = (
        "import torch; from rankbygene.experiments.comparison import fix_threads;"
        "from rankbygene.models import create_encoder;"
        f"{'fix_threads(2);' if fixed else ''}"
        "g = torch.Generator().manual_seed(0); torch.manual_seed(0);"
        "enc = create_encoder('tiny').train().to(memory_format=torch.channels_last);"
        "x = torch.randn(64, 3, 64, 64, generator=g).contiguous(memory_format=torch.channels_last);"
        "print(repr(float(enc(x).detach().double().sum())))"
    )
    env = {**os.environ, "OMP_NUM_THREADS": omp_threads}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.slow
def test_fixed_threads_give_the_same_numbers_whatever_the_environment():
    """The demo and the her2st experiment fix torch's thread count: without it the same
    computation gives other numbers under another OMP_NUM_THREADS (the control), with it
    the same numbers."""
    assert _tiny_cnn_output("1", fixed=False) != _tiny_cnn_output("2", fixed=False)
    assert _tiny_cnn_output("1", fixed=True) == _tiny_cnn_output("2", fixed=True)
