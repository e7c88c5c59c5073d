"""rankbygene fit: the saved predictor, its card, and reading it back."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from rankbygene import keys
from rankbygene.cli.main import app
from rankbygene.evaluation import GeneEvalConfig
from rankbygene.evaluation.genes import fit_gene_predictors
from rankbygene.features import read_features
from rankbygene.models import create_encoder, weights_sha256
from rankbygene.predict.fit import fit_predictor
from rankbygene.predict.saved import load_predictor

TRAIN = ["SYN00", "SYN01"]  # the conftest predictor's training samples


def test_the_card_states_scale_panel_training_and_the_encoder(setup):
    card = json.loads((setup.predictor / keys.PREDICTOR_CARD).read_text())
    assert card["format"] == "rankbygene-predictor/1" and card["probe"] == "mlp"
    assert card["n_members"] == 2  # the two fold models of the inner split
    assert card["scale"] == {
        "units": "log1p(norm.) expression",
        "target_sum": 10000.0,
        "log1p": True,
        "smooth": True,
        "description": card["scale"]["description"],
    }
    assert card["panel"]["spec"] == "top12" and card["training"]["samples"] == TRAIN
    ff = read_features(setup.features / "SYN00.h5")
    encoder = create_encoder("tiny", setup.weights)
    assert card["encoder"] == {
        "encoder": "tiny",
        "source_run": None,
        "weights_sha256": weights_sha256(encoder),
        "transform": encoder.transform.to_dict(),
        "embed_dim": 128,
        "patch_um": pytest.approx(112.0),  # the synthetic data's 112 µm windows
    }
    assert ff.weights_sha256 == card["encoder"]["weights_sha256"]
    members = card["predictor"]["members"]
    assert [m["fold"] for m in members] == [0, 1] and all(len(m["val_curve"]) == 3 for m in members)


def test_the_saved_predictor_is_the_evaluations_fitted_one(setup):
    """Same panel, same fold models: the loaded members predict what fitting gives."""
    fitted = fit_gene_predictors(
        setup.data, setup.features, TRAIN, (), setup.config, require_test=False
    )
    saved = load_predictor(setup.predictor)
    assert saved.genes == fitted.inputs.genes
    assert saved.genes == (setup.predictor / keys.PREDICTOR_GENES).read_text().split()
    feats = read_features(setup.features / "SYN02.h5").features
    (predictor,) = fitted.predictors
    members = [p.predict(feats) for p in predictor.probes]
    np.testing.assert_array_equal(saved.predict(feats), np.mean(members, axis=0))


def test_refusals_name_the_fix(setup, tmp_path):
    with pytest.raises(ValueError, match=r"already holds a predictor.*--overwrite"):
        fit_predictor(setup.data, setup.features, TRAIN, setup.predictor, config=setup.config)
    with pytest.raises(ValueError, match="--probe position cannot be saved"):
        fit_predictor(
            setup.data,
            setup.features,
            TRAIN,
            tmp_path / "p",
            config=GeneEvalConfig(probe="position"),
        )
    with pytest.raises(ValueError, match=r"--train-samples need at least one sample id"):
        fit_predictor(setup.data, setup.features, [], tmp_path / "p", config=setup.config)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"holds other files \(notes.txt\): it is not a predictor"):
        fit_predictor(setup.data, setup.features, TRAIN, tmp_path, config=setup.config)
    with pytest.raises(FileNotFoundError, match=r"not a saved predictor.*rankbygene fit"):
        load_predictor(tmp_path)
    (tmp_path / "bad").mkdir()
    card = json.loads((setup.predictor / keys.PREDICTOR_CARD).read_text())
    (tmp_path / "bad" / keys.PREDICTOR_CARD).write_text(json.dumps({**card, "format": "x/0"}))
    with pytest.raises(ValueError, match="format 'x/0', expected 'rankbygene-predictor/1'"):
        load_predictor(tmp_path / "bad")
    cut = tmp_path / "cut"
    shutil.copytree(setup.predictor, cut)
    data = (cut / keys.PREDICTOR_WEIGHTS).read_bytes()
    (cut / keys.PREDICTOR_WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"weights.safetensors: not a complete safetensors file"):
        load_predictor(cut)


def test_cli_fit_writes_a_ridge_predictor(setup, tmp_path):
    out = tmp_path / "ridge"
    args = ["fit", "--data", str(setup.data), "--features", str(setup.features)]
    args += ["--train-samples", ",".join(TRAIN), "--panel", "top5", "--probe", "ridge"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Saved a ridge predictor of 5 genes" in result.output
    saved = load_predictor(out)
    assert saved.card["n_members"] == 1 and saved.predictor.weight.shape == (128, 5)
    again = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert again.exit_code == 2 and "already holds a predictor" in again.output
