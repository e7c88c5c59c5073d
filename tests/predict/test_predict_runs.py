"""A run's own predictors exported with fit --run and predicted with predict --run:
ST-Net's head, BLEEP's retrieval (with its reference spots) and HisToGene's head on its
in-context spot features; each equals evaluate genes' prediction with the same run."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pytest
from typer.testing import CliRunner

from rankbygene import keys
from rankbygene.cli.main import app
from rankbygene.evaluation import GeneEvalConfig, evaluate_genes
from rankbygene.features import extract_run_features
from rankbygene.training import TrainConfig, train

EXTRA = {"histogene": {"dim": 32, "depth": 1, "heads": 2, "patch_px": 16, "n_pos": 64}}


@pytest.mark.slow
@pytest.mark.parametrize(("method", "probe"), [("stnet", "head"), ("bleep", "retrieval"),
                                               ("histogene", "head")])  # fmt: skip
def test_a_runs_own_predictor_is_saved_and_predicts_what_evaluation_does(
    setup, tmp_path, method, probe
):
    train_ids, (sid,) = list(setup.train), setup.test
    run = train(
        TrainConfig(
            data=str(setup.data), out=str(tmp_path / "run"), method=method, encoder="tiny",
            panel="top10", batch_size=32, epochs=1, accelerator="cpu", val_split="none",
            train_samples=train_ids, extra=EXTRA.get(method, {}),
        )
    )  # fmt: skip
    feats = tmp_path / "feats"
    extract_run_features(run, setup.data, feats)
    config = GeneEvalConfig(probe=probe, run=str(run))
    evaluate_genes(setup.data, feats, train_ids, [sid], config=config, out=tmp_path / "eval")
    runner = CliRunner()
    fitted = runner.invoke(
        app, ["fit", "--data", str(setup.data), "--features", str(feats), "--train-samples",
              ",".join(train_ids), "--probe", probe, "--run", str(run), "--out",
              str(tmp_path / "predictor")],
    )  # fmt: skip
    assert fitted.exit_code == 0, fitted.output
    card = json.loads((tmp_path / "predictor" / keys.PREDICTOR_CARD).read_text())
    assert card["encoder"]["source_run"] == str(run.resolve())
    assert card["encoder"]["encoder"] == ("histogene" if method == "histogene" else "tiny")
    predicted = runner.invoke(
        app, ["predict", "--data", str(setup.data), "--samples", sid, "--run", str(run),
              "--predictor", str(tmp_path / "predictor"), "--out", str(tmp_path / "pred")],
    )  # fmt: skip
    assert predicted.exit_code == 0, predicted.output
    got = ad.read_h5ad(tmp_path / "pred" / f"{sid}.h5ad")
    want = ad.read_h5ad(tmp_path / "eval" / keys.PREDICTIONS_DIR / f"{sid}.h5ad")
    assert list(got.var_names) == list(want.var_names) == (run / keys.RUN_GENES).read_text().split()
    np.testing.assert_allclose(got.X, want.layers[keys.LAYER_PREDICTED], rtol=1e-5, atol=1e-6)
    if method == "histogene":  # no per-tile encoder: slides are refused with the reason
        slide = runner.invoke(
            app, ["predict", "--slides", str(tmp_path), "--run", str(run), "--predictor",
                  str(tmp_path / "predictor"), "--out", str(tmp_path / "s")],
        )  # fmt: skip
        assert slide.exit_code == 2 and "is a HisToGene run" in slide.output
