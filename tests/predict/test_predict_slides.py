"""rankbygene predict --slides on synthetic pyramidal TIFFs: outputs, tiles, memory, errors."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from types import SimpleNamespace

import anndata as ad
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import rankbygene.predict.slides as slides_module
from rankbygene import keys
from rankbygene.cli.main import app
from rankbygene.features import read_features
from rankbygene.predict.encoders import open_encoder
from rankbygene.predict.maps import scale_bar_mm, tile_grid_image
from rankbygene.predict.saved import load_predictor
from rankbygene.predict.settings import PREDICT
from rankbygene.predict.slides import predict_slides

GENES = ["TYPE0_M01", "TYPE1_M01"]


@pytest.fixture(scope="module")
def predicted(setup, slide_maker, tmp_path_factory):
    """S1 (tissue) and glass (none) predicted through the CLI; S1 extracted alone too."""
    root = tmp_path_factory.mktemp("slides")
    wsi = root / "wsi"
    wsi.mkdir()
    slide_maker(wsi / "S1.tif", 900, 1300)
    Image.new("RGB", (300, 300), (245, 245, 245)).save(wsi / "glass.png")
    saved = load_predictor(setup.predictor)
    genes = [g for g in GENES if g in saved.genes] or saved.genes[:2]
    common = ["--encoder", "tiny", "--weights", str(setup.weights)]
    result = CliRunner().invoke(
        app,
        ["predict", "--slides", str(wsi), *common, "--predictor", str(setup.predictor),
         "--out", str(root / "pred"), "--genes", ",".join(genes), "--mpp", "1.0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    extracted = CliRunner().invoke(
        app,
        ["extract", "--slides", str(wsi / "S1.tif"), *common, "--out", str(root / "feats"),
         "--patch-um", "112"],
    )  # fmt: skip
    assert extracted.exit_code == 0, extracted.output
    return SimpleNamespace(
        root=root, out=root / "pred", genes=genes, saved=saved, output=result.output
    )


def test_the_h5ad_holds_the_tiles_extract_makes_and_their_predictions(predicted):
    pred = ad.read_h5ad(predicted.out / "S1.h5ad")
    feats = read_features(predicted.root / "feats" / "S1.h5")
    assert pred.n_obs == len(feats.coords) > 30  # the tiles `extract --slides` makes
    np.testing.assert_array_equal(pred.obs[[keys.OBS_TILE_X0, keys.OBS_TILE_Y0]], feats.coords)
    assert list(pred.obs_names) == list(feats.barcodes)
    assert list(pred.var_names) == predicted.genes
    columns = [predicted.saved.genes.index(g) for g in predicted.genes]
    expected = predicted.saved.predict(feats.features)[:, columns]
    np.testing.assert_allclose(pred.X, expected, rtol=1e-5, atol=1e-6)
    assert np.ptp(pred.X[:, 0]) > 0  # the tissue's colour gradient reaches the predictions
    centre = feats.coords + 56  # 112 µm tiles at 1 µm/px
    np.testing.assert_array_equal(pred.obsm["spatial"], centre)
    np.testing.assert_array_equal(pred.obs[[keys.OBS_X_UM, keys.OBS_Y_UM]], centre * 1.0)
    uns = pred.uns["rankbygene"]
    assert uns["tile_px"] == 112 and uns["patch_um"] == 112.0 and uns["mpp"] == 1.0
    assert json.loads(uns["card"])["encoder"] == predicted.saved.card["encoder"]


def test_geojson_has_one_tile_per_row_with_the_predicted_genes(predicted):
    pred = ad.read_h5ad(predicted.out / "S1.h5ad")
    collection = json.loads((predicted.out / "S1.geojson").read_text())
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == pred.n_obs
    feature = collection["features"][3]
    x0, y0 = pred.obs.iloc[3][[keys.OBS_TILE_X0, keys.OBS_TILE_Y0]]
    ring = [[x0, y0], [x0 + 112, y0], [x0 + 112, y0 + 112], [x0, y0 + 112], [x0, y0]]
    assert feature["geometry"] == {"type": "Polygon", "coordinates": [ring]}
    assert feature["properties"]["objectType"] == "tile"
    got = feature["properties"]["measurements"]
    assert list(got) == predicted.genes
    assert list(got.values()) == pytest.approx(pred.X[3].tolist(), rel=1e-5)


def test_maps_exist_per_gene_and_the_summary_lists_them(predicted):
    summary = json.loads((predicted.out / keys.PRED_SUMMARY).read_text())
    entry = summary["items"]["S1"]
    assert entry["maps"] == {g: f"maps/S1_{g}.png" for g in predicted.genes}
    for rel in entry["maps"].values():
        with Image.open(predicted.out / rel) as png:
            assert png.width <= 660 and png.height <= 600  # beside text on a page, on a screen
    assert summary["genes"] == predicted.genes and summary["kind"] == "slides"
    assert summary["predictor"]["sha256"] == predicted.saved.id


def test_a_slide_without_tissue_gets_empty_outputs_and_a_warning(predicted):
    empty = ad.read_h5ad(predicted.out / "glass.h5ad")
    assert empty.n_obs == 0 and list(empty.var_names) == predicted.genes
    assert json.loads((predicted.out / "glass.geojson").read_text())["features"] == []
    entry = json.loads((predicted.out / keys.PRED_SUMMARY).read_text())["items"]["glass"]
    assert entry["n_tiles"] == 0 and entry["maps"] == {} and entry["warning"] == "no tissue tile"
    assert "Predicted 2 slide(s)" in predicted.output


def test_level_zero_is_read_by_region_a_batch_at_a_time(setup, slide_maker, tmp_path, monkeypatch):
    """A slide larger than the reading block: no region read approaches the whole image."""
    path = slide_maker(tmp_path / "big.tif", 3000, 4000, seed=3)
    regions = []
    real_open = slides_module.open_image

    def recording_open(p):
        reader = real_open(p)
        read = reader.read_region

        def read_region(x0, y0, w, h):
            regions.append(w * h)
            return read(x0, y0, w, h)

        reader.read_region = read_region
        return reader

    monkeypatch.setattr(slides_module, "open_image", recording_open)
    saved = load_predictor(setup.predictor)
    source = open_encoder(encoder="tiny", weights=setup.weights)
    no_maps = replace(PREDICT, max_maps=0)
    done = predict_slides(path, source, saved, tmp_path / "pred", settings=no_maps)
    assert done["big"]["n_tiles"] > 300 and done["big"]["maps"] == {}
    # tiles are cut from blocks of at most 2048 px plus a tile; the thumbnail comes from
    # the pyramid
    assert regions and max(regions) <= (2048 + 112) ** 2 < 3000 * 4000 / 2


def test_finished_slides_are_skipped_unless_overwrite(setup, slide_maker, tmp_path, caplog):
    path = slide_maker(tmp_path / "S2.tif", 500, 600, seed=4)
    out = tmp_path / "pred"
    saved = load_predictor(setup.predictor)
    source = open_encoder(encoder="tiny", weights=setup.weights)
    predict_slides(path, source, saved, out, genes=saved.genes[:2])
    before = (out / "S2.h5ad").stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        assert predict_slides(path, source, saved, out, genes=saved.genes[:2]) == {}
    assert "slide S2:" in caplog.text and "exists, skipped (use --overwrite)" in caplog.text
    assert (out / "S2.h5ad").stat().st_mtime_ns == before
    # --overwrite with fewer genes: the slide is redone and the dropped gene's map goes
    again = predict_slides(path, source, saved, out, genes=saved.genes[:1], overwrite=True)
    assert again["S2"]["n_tiles"] > 0 and (out / "S2.h5ad").stat().st_mtime_ns > before
    maps = sorted(p.name for p in (out / keys.PRED_MAPS_DIR).iterdir())
    assert maps == [f"S2_{saved.genes[0]}.png"]
    # an --out holding anything else (a dataset, the slides) is refused before any work
    with pytest.raises(ValueError, match=r"holds files rankbygene predict does not write \(S2.tif"):
        predict_slides(path, source, saved, tmp_path, overwrite=True)


def test_refusals(setup, slide_maker, tmp_path):
    path = slide_maker(tmp_path / "S3.tif", 400, 400)
    saved = load_predictor(setup.predictor)
    histogene = open_encoder(encoder="tiny", weights=setup.weights)
    histogene.run = SimpleNamespace(method=SimpleNamespace(network="section-transformer"))
    with pytest.raises(ValueError, match="is a HisToGene run: its spot features need the whole"):
        predict_slides(path, histogene, saved, tmp_path)
    random_tiny = open_encoder(encoder="tiny")  # other (random) weights
    with pytest.raises(ValueError, match="They differ in: weights"):
        predict_slides(path, random_tiny, saved, tmp_path)
    runner = CliRunner()
    both = runner.invoke(app, ["predict", "--slides", str(path), "--data", str(tmp_path),
                               "--encoder", "tiny", "--predictor", "p", "--out", "o"])  # fmt: skip
    assert both.exit_code == 2 and "exactly one of --slides PATH or --data DIR" in both.output
    feats = runner.invoke(app, ["predict", "--slides", str(path), "--features", str(tmp_path),
                                "--predictor", "p", "--out", "o"])  # fmt: skip
    assert feats.exit_code == 2 and "--features goes with --data" in feats.output


def test_map_helpers():
    assert [scale_bar_mm(w) for w in (0.9, 6.4, 23.0, 100.0)] == [0.2, 1, 5, 20]
    tiles = SimpleNamespace(shape=(250, 330), window_px=100, origins=np.array([[0, 0], [200, 100]]))
    grid = tile_grid_image(tiles, np.array([1.0, 2.0]))
    assert grid.shape == (3, 4) and grid[0, 0] == 1 and grid[1, 2] == 2
    assert np.isnan(grid).sum() == 10
