"""BLEEP retrieval from a trained run, on the run's panel: API, outputs, CLI and errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
from typer.testing import CliRunner

from rankbygene import keys
from rankbygene.cli.main import app
from rankbygene.data import make_synthetic_dataset, preprocess_expression
from rankbygene.evaluation import GeneEvalConfig, evaluate_genes, run_gene_evaluation
from rankbygene.features import extract_run_features
from rankbygene.training import TrainConfig, load_run, train

TRAIN, TEST = ["SYN00", "SYN01"], ["SYN02"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    """Dataset, a 4-epoch BLEEP run trained on SYN00/SYN01, its features, a scratch dir."""
    root = tmp_path_factory.mktemp("retrieval_run")
    ds = make_synthetic_dataset(
        root / "data", n_samples=3, n_spots=64, n_genes=40, patch_px=32, n_patients=3
    )
    run = train(
        TrainConfig(
            data=str(ds.root),
            out=str(root / "run"),
            method="bleep",
            encoder="tiny",
            panel="top20",
            batch_size=32,
            # after 1 epoch the image embeddings still share one direction: every spot
            # retrieves the same neighbours and no PCC is defined
            epochs=4,
            accelerator="cpu",
            val_split="none",
            train_samples=TRAIN,
        )
    )
    feats = root / "feats"
    extract_run_features(run, ds, feats)
    return Path(ds.root), run, feats, root


def _config(run: Path, k: int = 50, weighting: str = "mean") -> GeneEvalConfig:
    return GeneEvalConfig(
        probe="retrieval", run=str(run), retrieval={"k": k, "weighting": weighting}
    )


def _reference(data: Path, genes: list[str], ids: list[str]) -> np.ndarray:
    """Preprocessed training expression on the evaluation panel. Shape: (R, G)."""
    from rankbygene.data import read_dataset

    ds = read_dataset(data)
    return np.concatenate(
        [preprocess_expression(ds[s].read_adata(), genes, target_sum=1e4, smooth=True) for s in ids]
    )


def test_results_outputs_and_convex_predictions(setup) -> None:
    data, run, feats, root = setup
    out = root / "eval"
    res = evaluate_genes(data, feats, TRAIN, TEST, config=_config(run, k=10), out=out)
    block = res["probes"]["retrieval"]
    assert (res["probe"], block["config"]["k"], block["folds"][0]["k"]) == ("retrieval", 10, 10)
    # scored on the run's own panel (its genes.txt), whatever the panel spec
    assert res["genes"] == load_run(run).genes and len(res["genes"]) == 20
    assert (res["train_samples"], res["test_samples"]) == (TRAIN, TEST)
    assert res["n_train_spots"] == 128 and res["n_test_spots"] == 64
    for metric in ("pcc", "mse", "mae"):
        assert set(res["summary"][metric]) >= {"mean", "std"}
    assert np.isfinite(res["summary"]["mse"]["mean"])
    assert res["features"]["dim"] == load_run(run).encoder().embed_dim

    assert json.loads((out / keys.RESULTS_JSON).read_text())["probe"] == "retrieval"
    assert "| retrieval |" in (out / keys.RESULTS_MD).read_text()
    pred = ad.read_h5ad(out / keys.PREDICTIONS_DIR / f"SYN02{keys.ST_SUFFIX}")
    assert list(pred.var_names) == res["genes"]
    predicted = pred.layers[keys.LAYER_PREDICTED]
    assert predicted.shape == (64, 20)
    np.testing.assert_array_equal(predicted, pred.layers[f"{keys.LAYER_PREDICTED}_retrieval"])
    # A convex combination of reference rows lies inside their per-gene range.
    ref = _reference(data, res["genes"], TRAIN)
    assert (predicted >= ref.min(0) - 1e-5).all() and (predicted <= ref.max(0) + 1e-5).all()


def test_k_covering_all_references_predicts_their_mean(setup) -> None:
    data, run, feats, _ = setup
    ev = run_gene_evaluation(data, feats, TRAIN, TEST, _config(run, k=10_000))
    pred = ev.predictions["retrieval"]["SYN02"]
    ref = _reference(data, ev.results["genes"], TRAIN)
    np.testing.assert_allclose(pred, np.broadcast_to(ref.mean(0), pred.shape), atol=1e-5)


def test_cli_summary_is_spread_across_test_samples(setup) -> None:
    data, run, feats, root = setup
    out = root / "eval_cli"
    args = ["evaluate", "genes", "--data", str(data), "--features", str(feats)]
    args += ["--train-samples", "SYN00", "--test-samples", "SYN01,SYN02", "--out", str(out)]
    args += ["--probe", "retrieval", "--run", str(run), "--k", "5"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "(retrieval, 20 genes)" in r.output
    res = json.loads((out / keys.RESULTS_JSON).read_text())
    assert res["config"]["retrieval"]["k"] == 5 and res["folds"][0]["k"] == 5
    per = [res["per_sample"][s]["pcc"]["mean"] for s in ("SYN01", "SYN02")]
    assert res["summary"]["pcc"]["n"] == 2
    assert res["summary"]["pcc"]["mean"] == pytest.approx(np.mean(per))
    assert res["summary"]["pcc"]["std"] == pytest.approx(np.std(per))


def test_cli_refuses_retrieval_without_run_and_run_without_retrieval(setup) -> None:
    data, run, feats, root = setup
    base = ["evaluate", "genes", "--data", str(data), "--features", str(feats)]
    base += ["--train-samples", "SYN00", "--test-samples", "SYN02", "--out", str(root / "x")]
    r = CliRunner().invoke(app, [*base, "--probe", "retrieval"])
    assert r.exit_code == 2 and "error: --probe retrieval" in r.output and "--run" in r.output
    r = CliRunner().invoke(app, [*base, "--probe", "ridge", "--run", str(run)])
    assert r.exit_code == 2 and "scored only with probe head or retrieval" in r.output


def test_missing_run_panel_genes_are_named(setup) -> None:
    data, run, feats, root = setup
    data2 = root / "data_missing"
    shutil.copytree(data, data2)
    lost = (run / keys.RUN_GENES).read_text().split()[:3]
    path = data2 / keys.ST_DIR / f"SYN00{keys.ST_SUFFIX}"
    adata = ad.read_h5ad(path)
    adata[:, ~adata.var_names.isin(lost)].copy().write_h5ad(path)
    with pytest.raises(ValueError, match="SYN00") as err:
        evaluate_genes(data2, feats, TRAIN, TEST, config=_config(run))
    assert all(g in str(err.value) for g in lost)
    assert "SYN01" not in str(err.value)
