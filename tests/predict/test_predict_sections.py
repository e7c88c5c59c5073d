"""rankbygene predict --data: predictions at ST spots equal evaluate genes' predictions."""

from __future__ import annotations

import json
import logging

import anndata as ad
import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from rankbygene import keys
from rankbygene.cli.main import app
from rankbygene.evaluation import evaluate_genes
from rankbygene.evaluation.metrics import pearson_per_gene
from rankbygene.models import create_encoder
from rankbygene.predict.encoders import open_encoder
from rankbygene.predict.saved import load_predictor
from rankbygene.predict.sections import predict_sections


def _invoke(*args: str):
    return CliRunner().invoke(app, ["predict", *map(str, args)])


@pytest.fixture(scope="module")
def evaluated(setup, tmp_path_factory):
    """evaluate genes with the predictor's settings, training and test samples."""
    out = tmp_path_factory.mktemp("eval")
    evaluate_genes(
        setup.data,
        setup.features,
        list(setup.train),
        list(setup.test),
        config=setup.config,
        out=out,
    )
    return ad.read_h5ad(out / keys.PREDICTIONS_DIR / f"{setup.test[0]}.h5ad")


def test_spot_predictions_equal_the_evaluations_from_the_encoder(setup, evaluated, tmp_path):
    """The encoder path embeds the spots as `extract` does: the same numbers, not just shapes."""
    (sid,) = setup.test
    result = _invoke(
        "--data", setup.data, "--samples", sid, "--encoder", "tiny", "--weights", setup.weights,
        "--predictor", setup.predictor, "--out", tmp_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    pred = ad.read_h5ad(tmp_path / f"{sid}.h5ad")
    assert list(pred.var_names) == list(evaluated.var_names)
    assert list(pred.obs_names) == list(evaluated.obs_names)
    np.testing.assert_allclose(pred.X, evaluated.layers[keys.LAYER_PREDICTED], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(
        pred.layers[keys.LAYER_TARGET], evaluated.layers[keys.LAYER_TARGET]
    )
    np.testing.assert_array_equal(pred.obsm["spatial"], evaluated.obsm["spatial"])
    # the printed and recorded PCC are those of the written layers
    pcc = pearson_per_gene(pred.X, pred.layers[keys.LAYER_TARGET])
    summary = json.loads((tmp_path / keys.PRED_SUMMARY).read_text())
    assert list(summary["items"][sid]["pcc"].values()) == pytest.approx(pcc.tolist(), nan_ok=True)
    assert f"mean PCC {np.nanmean(pcc):.3f} over 12 genes" in result.output
    assert pred.uns["rankbygene"]["predictor_sha256"] == load_predictor(setup.predictor).id
    maps = sorted(p.name for p in (tmp_path / keys.PRED_MAPS_DIR).iterdir())
    assert maps == sorted(f"{sid}_{g}.png" for g in list(pred.var_names)[:8])


def test_spot_predictions_from_precomputed_features_equal_them_too(setup, evaluated, tmp_path):
    (sid,) = setup.test
    saved = load_predictor(setup.predictor)
    done = predict_sections(
        setup.data, None, saved, tmp_path, features_dir=setup.features, sample_ids=[sid],
        genes=["GENE0000"] if "GENE0000" in saved.genes else saved.genes[:1],
    )  # fmt: skip
    pred = ad.read_h5ad(tmp_path / f"{sid}.h5ad")
    gene = pred.var_names[0]
    np.testing.assert_array_equal(
        pred.X[:, 0], evaluated[:, gene].layers[keys.LAYER_PREDICTED].ravel()
    )
    assert done[sid]["n_spots"] == evaluated.n_obs and done[sid]["maps"] == {
        gene: f"maps/{sid}_{gene}.png"
    }
    geojson = json.loads((tmp_path / f"{sid}.geojson").read_text())
    assert len(geojson["features"]) == evaluated.n_obs
    first = geojson["features"][0]
    assert first["properties"]["objectType"] == "tile"
    assert first["properties"]["measurements"][gene] == pytest.approx(float(pred.X[0, 0]), rel=1e-5)


def test_another_encoder_is_refused_before_predicting(setup, tmp_path):
    torch.manual_seed(1)
    other = tmp_path / "other.safetensors"
    weights = create_encoder("tiny").backbone.state_dict()
    save_file({k: v.contiguous() for k, v in weights.items()}, other)
    result = _invoke(
        "--data", setup.data, "--encoder", "tiny", "--weights", other,
        "--predictor", setup.predictor, "--out", tmp_path / "pred",
    )  # fmt: skip
    assert result.exit_code == 2
    assert f"error: The predictor {setup.predictor} was fitted on features of encoder" in (
        result.output
    )
    assert "They differ in: weights." in result.output
    assert not (tmp_path / "pred").exists()  # nothing written


def test_unknown_genes_are_named_with_the_panel(setup, tmp_path):
    result = _invoke(
        "--data", setup.data, "--encoder", "tiny", "--weights", setup.weights,
        "--predictor", setup.predictor, "--out", tmp_path, "--genes", "NOPE1,GENE0001x",
    )  # fmt: skip
    assert result.exit_code == 2
    out = " ".join(result.output.split())
    assert "error: Gene(s) NOPE1, GENE0001x not in the panel of predictor" in out
    assert "(top12, 12 genes, listed in" in out


def test_finished_sections_are_skipped_and_redone_with_overwrite(setup, tmp_path, caplog):
    saved = load_predictor(setup.predictor)
    source = open_encoder(encoder="tiny", weights=setup.weights)
    (sid,) = setup.test
    one = {"sample_ids": [sid], "genes": saved.genes[:1]}  # one map per run
    predict_sections(setup.data, source, saved, tmp_path, **one)
    h5ad = tmp_path / f"{sid}.h5ad"
    before = h5ad.stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        assert predict_sections(setup.data, source, saved, tmp_path, **one) == {}
    assert "exists, skipped (use --overwrite)" in caplog.text and h5ad.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="holds predictions of other genes; pass --overwrite"):
        predict_sections(
            setup.data, source, saved, tmp_path, sample_ids=[sid], genes=saved.genes[:2]
        )
    redone = predict_sections(setup.data, source, saved, tmp_path, **one, overwrite=True)
    assert list(redone) == [sid] and h5ad.stat().st_mtime_ns > before


def test_training_sections_are_flagged_as_in_sample(setup, tmp_path, caplog):
    saved = load_predictor(setup.predictor)
    with caplog.at_level(logging.WARNING):
        predict_sections(
            setup.data, None, saved, tmp_path, features_dir=setup.features,
            sample_ids=[setup.train[0]], genes=saved.genes[:1],
        )  # fmt: skip
    assert f"sections {setup.train[0]} were training samples" in caplog.text
