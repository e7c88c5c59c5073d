"""extract → evaluate genes → report through the CLI on a tiny synthetic dataset."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import anndata as ad
import pytest
import typer
from typer.testing import CliRunner

from rankbygene import keys
from rankbygene.cli import evaluate as evaluate_cli
from rankbygene.cli import extract as extract_cli
from rankbygene.cli import report as report_cli
from rankbygene.data import make_synthetic_dataset, read_dataset, select_panel
from rankbygene.evaluation.metrics import gene_metrics
from rankbygene.text import format_mean_std
from rankbygene.training import TrainConfig, train


def root_of(eval_dir: Path) -> Path:
    """The fixture's root directory (EVAL is ROOT/results/eval)."""
    return eval_dir.parent.parent


def _app() -> typer.Typer:
    # The same mounting as rankbygene.cli.main, on a local app so this test does not
    # depend on the root command's other groups.
    app = typer.Typer()
    app.command("extract")(extract_cli.extract)
    app.add_typer(evaluate_cli.app, name="evaluate")
    app.command("report")(report_cli.report)
    return app


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("cli")
    make_synthetic_dataset(root / "data", n_samples=3, n_spots=40, n_genes=20, patch_px=16, seed=1)
    runner = CliRunner()
    app = _app()
    # a finished two-epoch training run (its metrics feed the report's curves)
    run = root / "results" / "runs" / "rbg"
    train(
        TrainConfig(
            data=str(root / "data"),
            out=str(run),
            train_samples=["SYN00", "SYN01"],
            panel="top8",
            epochs=2,
            batch_size=16,
            val_split="none",
            accelerator="cpu",
        )
    )
    feats = root / "results" / "features"
    r = runner.invoke(
        app,
        [
            "extract",
            "--data",
            str(root / "data"),
            "--out",
            str(feats),
            "--run",
            str(run),
            "--batch-size",
            "16",
        ],
    )
    assert r.exit_code == 0, r.output
    ev = root / "results" / "eval"
    r = runner.invoke(
        app,
        [
            "evaluate",
            "genes",
            "--data",
            str(root / "data"),
            "--features",
            str(feats),
            "--train-samples",
            "SYN00,SYN01",
            "--test-samples",
            "SYN02",
            "--panel",
            "top8",
            "--probe",
            "both",
            "--epochs",
            "2",
            "--folds",
            "2",
            "--out",
            str(ev),
        ],
    )
    assert r.exit_code == 0, r.output
    return root, run, feats, ev, r.output


def test_extract_from_run(pipeline) -> None:
    _, run, feats, _, _ = pipeline
    summary = json.loads((feats / "features.json").read_text())
    assert summary["source_run"] == str(run) and summary["name"] == "rbg"
    assert sorted(summary["samples"]) == ["SYN00", "SYN01", "SYN02"]


def test_evaluate_writes_required_keys(pipeline) -> None:
    _, run, _, ev, output = pipeline
    assert "PCC" in output and str(ev / keys.RESULTS_JSON) in output
    res = json.loads((ev / keys.RESULTS_JSON).read_text())
    for key in (
        "panel",
        "genes",
        "dropped_genes",
        "probe",
        "summary",
        "pooled",
        "per_sample",
        "folds",
        "train_samples",
        "test_samples",
        "features",
        "probes",
    ):
        assert key in res, key
    assert res["features"]["source_run"] == str(run)
    assert res["config"]["mlp"]["epochs"] == 2 and len(res["folds"]) == 2
    # the panel: top8 chosen on the training samples only
    ds = read_dataset(root_of(ev) / "data")
    assert (
        res["genes"] == select_panel([ds[s].read_adata() for s in ("SYN00", "SYN01")], "top8").genes
    )
    # the scores in results.json are those of the predictions written beside them
    pred = ad.read_h5ad(ev / keys.PREDICTIONS_DIR / "SYN02.h5ad")
    assert list(pred.var_names) == res["genes"]
    recomputed = gene_metrics(pred.layers[keys.LAYER_PREDICTED], pred.layers[keys.LAYER_TARGET])
    ensemble = res["per_sample"]["SYN02"]["ensemble"]
    assert ensemble["pcc"] == pytest.approx(recomputed["pcc"], rel=1e-5)
    assert ensemble["mse"] == pytest.approx(recomputed["mse"], rel=1e-5)
    ridge = res["probes"]["ridge"]["per_sample"]["SYN02"]["pcc"]["mean"]
    ridge_pred = pred.layers["predicted_ridge"]
    assert ridge == pytest.approx(gene_metrics(ridge_pred, pred.layers[keys.LAYER_TARGET])["pcc"])
    table = (ev / keys.RESULTS_MD).read_text()
    assert f"| mlp | {format_mean_std(res['summary']['pcc'], 4)} |" in table


def test_evaluate_cli_reports_leak_and_missing_args(pipeline) -> None:
    root, _, feats, _, _ = pipeline
    runner = CliRunner()
    r = runner.invoke(
        _app(),
        [
            "evaluate",
            "genes",
            "--data",
            str(root / "data"),
            "--features",
            str(feats),
            "--train-samples",
            "SYN00",
            "--test-samples",
            "SYN00",
            "--out",
            str(root / "x"),
        ],
    )
    assert r.exit_code == 2 and "error: Samples ['SYN00'] are in both the training" in r.output
    r = runner.invoke(_app(), ["extract", "--data", str(root / "data"), "--out", str(feats)])
    assert r.exit_code != 0 and "exactly one of --run RUN or --encoder NAME" in r.output


def test_report_embeds_every_figure(pipeline) -> None:
    root, _, _, _, _ = pipeline
    results = root / "results"
    (results / keys.RESULTS_JSON).write_text(
        json.dumps(
            {
                "methods": {
                    "rankbygene": {
                        "pcc": {"mean": 0.2, "std": 0.01},
                        "mse": {"mean": 1.0, "std": 0.1},
                    },
                    "tiny-frozen": {
                        "pcc": {"mean": 0.1, "std": 0.02},
                        "mse": {"mean": 1.2, "std": 0.1},
                    },
                }
            }
        )
    )
    gene = json.loads((results / "eval" / keys.RESULTS_JSON).read_text())["genes"][0]
    r = CliRunner().invoke(_app(), ["report", str(results), "--genes", gene])
    assert r.exit_code == 0, r.output
    page = (results / keys.REPORT_HTML).read_text()
    pngs = sorted((results / keys.FIGURES_DIR).glob("*.png"))
    names = {p.name for p in pngs}
    # maps, rank accuracy, losses of the run, t-SNE and similarity of the features on the
    # evaluation's held-out sample (SYN02), not a training one
    assert names == {
        "gene_maps_SYN02.png",
        "rank_accuracy.png",
        "losses_runs_rbg.png",
        "tsne_features_SYN02.png",
        "similarity_features_SYN02.png",
    }
    imgs = re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"', page)
    assert len(imgs) == len(pngs)
    for png in pngs:
        assert base64.b64encode(png.read_bytes()).decode() in imgs
    assert "Skipped" not in page
    assert "tiny-frozen" in page and "0.2000 ± 0.0100" in page  # comparison table
    assert "<td>eval</td>" in page  # evaluations table row


def test_report_notes_a_figure_it_cannot_make(pipeline, tmp_path: Path) -> None:
    root, _, _, _, _ = pipeline
    out = tmp_path / "r.html"
    r = CliRunner().invoke(
        _app(), ["report", str(root / "results"), "--genes", "NOTAGENE", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert "Skipped" in out.read_text() and "NOTAGENE" in out.read_text()


def test_report_missing_dir(tmp_path: Path) -> None:
    r = CliRunner().invoke(_app(), ["report", str(tmp_path / "none")])
    assert r.exit_code == 2 and "error: No results directory" in r.output
    assert "rankbygene demo" in r.output
