"""predict on real her2st data: the C2 H&E JPEG as a slide, and C2's ST spots.

A predictor is fitted on C3 (one patient: sections, not patients, are held out),
with the tiny encoder at CPU scale; what is tested is the plumbing on a real image, not
the quality of the maps.
"""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from rankbygene import keys
from rankbygene.cli.main import app
from rankbygene.data import read_dataset
from rankbygene.data.importers import import_her2st
from rankbygene.evaluation import GeneEvalConfig, MLPProbeConfig, evaluate_genes
from rankbygene.features import extract_features, read_features
from rankbygene.models import create_encoder
from rankbygene.predict.fit import fit_predictor

HER2ST = Path(__file__).resolve().parents[3] / "shared" / "data" / "her2st"
TRAIN, TEST = ["C3"], ["C2"]


@pytest.mark.slow
@pytest.mark.skipif(not HER2ST.exists(), reason="real her2st data not beside the repository")
def test_her2st_section_image_as_a_slide_and_its_spots(tmp_path):
    import_her2st(HER2ST, TEST + TRAIN, tmp_path / "data", patch_px=32)
    ds = read_dataset(tmp_path / "data")
    torch.manual_seed(0)
    encoder = create_encoder("tiny")
    weights = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in encoder.backbone.state_dict().items()}, weights)
    extract_features(ds, encoder, tmp_path / "feats")
    config = GeneEvalConfig(
        panel="top50", split_unit="section", mlp=MLPProbeConfig(hidden_dims=(64,), epochs=2)
    )
    fit_predictor(ds, tmp_path / "feats", TRAIN, tmp_path / "predictor", config=config)
    evaluate_genes(ds, tmp_path / "feats", TRAIN, TEST, config=config, out=tmp_path / "eval")
    runner = CliRunner()
    common = ["--encoder", "tiny", "--weights", str(weights)]
    pred = ["--predictor", str(tmp_path / "predictor")]

    # the ST spots of C2: the numbers evaluate genes wrote
    spots = runner.invoke(
        app, ["predict", "--data", str(ds.root), "--samples", "C2", *common, *pred,
              "--out", str(tmp_path / "spots")],
    )  # fmt: skip
    assert spots.exit_code == 0, spots.output
    got = ad.read_h5ad(tmp_path / "spots" / "C2.h5ad")
    want = ad.read_h5ad(tmp_path / "eval" / keys.PREDICTIONS_DIR / "C2.h5ad")
    assert got.n_obs == want.n_obs > 100 and list(got.var_names) == list(want.var_names)
    np.testing.assert_allclose(got.X, want.layers[keys.LAYER_PREDICTED], rtol=1e-6, atol=1e-6)

    # the C2 JPEG as a slide, at the pixel size the importer estimated from the spot pitch
    jpg = next((HER2ST / "data" / "ST-imgs" / "C" / "C2").glob("*.jpg"))
    mpp = ds["C2"].pixel_size_um
    assert 0.6 < mpp < 0.8
    slide = runner.invoke(
        app, ["predict", "--slides", str(jpg), *common, *pred, "--out", str(tmp_path / "slide"),
              "--genes", "ERBB2,FASN", "--mpp", str(mpp)],
    )  # fmt: skip
    assert slide.exit_code == 0, slide.output
    card = json.loads((tmp_path / "predictor" / keys.PREDICTOR_CARD).read_text())
    extracted = runner.invoke(
        app, ["extract", "--slides", str(jpg), *common, "--out", str(tmp_path / "slide_feats"),
              "--mpp", str(mpp), "--patch-um", str(card["encoder"]["patch_um"])],
    )  # fmt: skip
    assert extracted.exit_code == 0, extracted.output
    sid = jpg.name.removesuffix(".jpg")
    tiles = ad.read_h5ad(tmp_path / "slide" / f"{sid}.h5ad")
    feats = read_features(tmp_path / "slide_feats" / f"{sid}.h5")
    assert tiles.n_obs == len(feats.coords) > 500  # the tiles `extract --slides` makes
    np.testing.assert_array_equal(tiles.obs[[keys.OBS_TILE_X0, keys.OBS_TILE_Y0]], feats.coords)
    for gene in ("ERBB2", "FASN"):
        with Image.open(tmp_path / "slide" / keys.PRED_MAPS_DIR / f"{sid}_{gene}.png") as png:
            assert 400 < png.width <= 660 and 300 < png.height <= 600
    geojson = json.loads((tmp_path / "slide" / f"{sid}.geojson").read_text())
    assert len(geojson["features"]) == tiles.n_obs
