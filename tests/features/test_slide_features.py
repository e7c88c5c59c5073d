"""Whole-slide tiling and feature bags: pixel size, tissue mask, tile grid, extraction."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import tifffile
from typer.testing import CliRunner

from rankbygene.cli.main import app
from rankbygene.data.images import open_image
from rankbygene.data.wsi import (
    list_slides,
    pyramid_thumbnail,
    read_thumbnail,
    slide_id,
    slide_mpp,
    tile_grid,
    tile_tissue_fraction,
    tissue_mask,
)
from rankbygene.evaluation.slides import SlideEvalConfig, evaluate_slides
from rankbygene.features import read_features, read_summary
from rankbygene.features.slides import extract_slide_features
from rankbygene.models import create_encoder, weights_sha256

MPP = 2.0  # µm per px: a small slide stands for a big one at low magnification
H, W = 600, 800


def _tissue(rng: np.random.Generator, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A white slide with a pink elliptical tissue section; returns (image, true mask)."""
    yy, xx = np.mgrid[:H, :W]
    inside = ((xx - 420) / (250 * scale)) ** 2 + ((yy - 300) / (170 * scale)) ** 2 <= 1
    img = np.full((H, W, 3), 245, dtype=np.uint8)
    img += rng.integers(0, 8, size=img.shape, dtype=np.uint8)  # glass noise
    pink = np.array([215, 120, 175]) + rng.normal(0, 12, size=(H, W, 3))
    img[inside] = np.clip(pink[inside], 0, 255).astype(np.uint8)
    return img, inside


def _write_slide(path, img: np.ndarray, *, mpp: float | None = MPP, aperio: bool = False):
    kwargs = {}
    if aperio:
        kwargs["description"] = f"Aperio Image Library v12 |AppMag = 20|MPP = {mpp}|"
    elif mpp is not None:
        kwargs["resolution"] = (1e4 / mpp, 1e4 / mpp)
        kwargs["resolutionunit"] = "CENTIMETER"
    tifffile.imwrite(path, img, tile=(128, 128), photometric="rgb", **kwargs)


def test_pixel_size_is_read_from_resolution_tags_and_aperio_description(tmp_path):
    img, _ = _tissue(np.random.default_rng(0))
    _write_slide(tmp_path / "a.tif", img, mpp=0.5)
    _write_slide(tmp_path / "b.svs", img, mpp=0.252, aperio=True)
    _write_slide(tmp_path / "c.tif", img, mpp=None)
    assert slide_mpp(tmp_path / "a.tif") == pytest.approx(0.5)
    assert slide_mpp(tmp_path / "b.svs") == pytest.approx(0.252)
    assert slide_mpp(tmp_path / "c.tif") is None


def test_thumbnail_is_the_block_mean_of_level_zero(tmp_path):
    img, _ = _tissue(np.random.default_rng(1))
    _write_slide(tmp_path / "s.tif", img)
    reader = open_image(tmp_path / "s.tif")
    thumb = read_thumbnail(reader, reader.shape, downsample=8, block=4)
    reader.close()
    expected = img.reshape(H // 8, 8, W // 8, 8, 3).astype(float).mean(axis=(1, 3))
    assert thumb.shape == (H // 8, W // 8, 3)
    np.testing.assert_allclose(thumb, expected, atol=0.51)


def test_tissue_mask_finds_the_section_and_not_the_glass():
    img, inside = _tissue(np.random.default_rng(2))
    mask = tissue_mask(img[::4, ::4])
    truth = inside[::4, ::4]
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.95
    blank = np.full((100, 100, 3), 245, np.uint8)
    blank += np.random.default_rng(0).integers(0, 8, size=blank.shape, dtype=np.uint8)
    assert not tissue_mask(blank).any()  # Otsu does not split pure glass noise


def test_tile_tissue_fraction_equals_a_direct_count():
    rng = np.random.default_rng(3)
    mask = rng.random((50, 70)) < 0.4
    origins = rng.integers(0, 300, size=(40, 2))
    got = tile_tissue_fraction(mask, origins, tile_px=32, downsample=4.0)
    for (x, y), frac in zip(origins, got, strict=True):
        x0, y0 = x // 4, y // 4
        x1, y1 = min(-(-(x + 32) // 4), 70), min(-(-(y + 32) // 4), 50)
        window = mask[min(y0, 50) : y1, min(x0, 70) : x1]
        expected = window.sum() / max(window.size, 1)
        assert frac == pytest.approx(expected)


def test_tile_grid_keeps_whole_tissue_tiles_only():
    mask = np.zeros((60, 80), bool)
    mask[10:40, 20:60] = True
    origins = tile_grid(mask, (600, 800), tile_px=100, downsample=10, min_tissue=0.5)
    assert len(origins) > 0 and (origins % 100 == 0).all()
    for x, y in origins:  # each kept tile is at least half inside the tissue rectangle
        overlap_x = max(0, min(x + 100, 600) - max(x, 200))
        overlap_y = max(0, min(y + 100, 400) - max(y, 100))
        assert overlap_x * overlap_y >= 0.5 * 100 * 100
    assert (origins[:, 0] + 100 <= 800).all() and (origins[:, 1] + 100 <= 600).all()


def test_extraction_writes_clam_style_bags_of_tissue_tiles(tmp_path):
    rng = np.random.default_rng(4)
    slides = tmp_path / "wsi"
    slides.mkdir()
    img, inside = _tissue(rng)
    _write_slide(slides / "S1.tif", img)
    _write_slide(slides / "S2.ome.tif", _tissue(rng, scale=0.6)[0])
    encoder = create_encoder("tiny")
    paths = extract_slide_features(slides, encoder, tmp_path / "feats", patch_um=64)
    assert [p.name for p in paths] == ["S1.h5", "S2.h5"]
    ff = read_features(paths[0])
    window = 32  # 64 µm at 2 µm/px
    assert ff.features.shape == (len(ff.coords), encoder.embed_dim) and len(ff.coords) > 20
    assert ff.attrs["coords_origin"] == "top-left" and ff.attrs["patch_size_level0"] == window
    assert ff.attrs["mpp"] == pytest.approx(MPP) and ff.attrs["encoder"] == "tiny"
    assert ff.weights_sha256 == weights_sha256(encoder)
    centres = ff.coords + window // 2
    assert inside[centres[:, 1], centres[:, 0]].mean() > 0.95  # tiles sit on tissue
    with h5py.File(paths[0]) as f:  # CLAM's layout: features + coords datasets
        assert f["features"].dtype == np.float32 and f["coords"].shape == (len(ff.coords), 2)
    assert len(read_features(paths[1]).coords) < len(ff.coords)  # the smaller section
    assert read_summary(tmp_path / "feats")["samples"]["S1"]["n_tiles"] == len(ff.coords)
    # The bags feed the slide evaluation directly.
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"slide_id": ["S1", "S2"], "label": ["a", "b"]}).to_csv(labels, index=False)
    with pytest.raises(ValueError, match="2 cases cannot be split into 5 folds"):
        evaluate_slides(tmp_path / "feats", labels, SlideEvalConfig(epochs=1))


def test_missing_pixel_size_and_empty_slides_are_explained(tmp_path):
    rng = np.random.default_rng(5)
    _write_slide(tmp_path / "nompp.tif", _tissue(rng)[0], mpp=None)
    encoder = create_encoder("tiny")
    with pytest.raises(ValueError, match="pass --mpp"):
        extract_slide_features(tmp_path / "nompp.tif", encoder, tmp_path / "f1")
    blank = np.full((H, W, 3), 245, np.uint8)
    _write_slide(tmp_path / "glass.tif", blank)
    with pytest.raises(ValueError, match=r"glass\.tif: no 64 µm tile"):
        extract_slide_features(tmp_path / "glass.tif", encoder, tmp_path / "f2", patch_um=64)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No slides in"):
        list_slides(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="Slide file"):
        list_slides(tmp_path / "absent.svs")
    assert slide_id(tmp_path / "x.ome.tiff") == "x"


def test_cli_extracts_slides_and_refuses_mixed_inputs(tmp_path):
    _write_slide(tmp_path / "S1.tif", _tissue(np.random.default_rng(6))[0])
    runner = CliRunner()
    args = ["extract", "--encoder", "tiny", "--out", str(tmp_path / "feats")]
    ok = runner.invoke(app, [*args, "--slides", str(tmp_path / "S1.tif"), "--patch-um", "64"])
    assert ok.exit_code == 0, ok.output
    assert "Features of 1 slides" in ok.output and (tmp_path / "feats" / "S1.h5").is_file()
    both = runner.invoke(app, [*args, "--slides", str(tmp_path), "--data", str(tmp_path)])
    assert both.exit_code == 2 and "exactly one of --data" in both.output


def test_jpeg_tiled_slides_like_aperio_svs_are_read_by_region(tmp_path):
    pytest.importorskip("imagecodecs")  # the `wsi` extra; installed with `dev`
    img, inside = _tissue(np.random.default_rng(7))
    tifffile.imwrite(
        tmp_path / "S1.svs", img, tile=(128, 128), photometric="rgb", compression="jpeg",
        description=f"Aperio Image Library v12 |AppMag = 20|MPP = {MPP}|",
    )  # fmt: skip
    paths = extract_slide_features(tmp_path / "S1.svs", create_encoder("tiny"), tmp_path / "f")
    ff = read_features(paths[0])
    assert ff.attrs["mpp"] == pytest.approx(MPP) and len(ff.coords) > 0
    centres = ff.coords + ff.attrs["patch_size_level0"] // 2
    assert inside[centres[:, 1], centres[:, 0]].all()


def _write_pyramid(path, img: np.ndarray) -> None:
    """A pyramidal tiled TIFF (levels 1, 1/2, 1/4 in SubIFDs), as scanners write them."""
    with tifffile.TiffWriter(path) as tif:
        tif.write(
            img, tile=(128, 128), subifds=2, photometric="rgb",
            resolution=(1e4 / MPP, 1e4 / MPP), resolutionunit="CENTIMETER",
        )  # fmt: skip
        for step in (2, 4):
            tif.write(img[::step, ::step], tile=(128, 128), subfiletype=1, photometric="rgb")


def test_pyramid_thumbnail_matches_the_level_zero_average(tmp_path):
    img, _ = _tissue(np.random.default_rng(8))
    _write_pyramid(tmp_path / "p.tif", img)
    _write_slide(tmp_path / "flat.tif", img)
    reader = open_image(tmp_path / "p.tif")
    reference = read_thumbnail(reader, reader.shape, downsample=8)
    reader.close()
    thumb = pyramid_thumbnail(tmp_path / "p.tif", (H, W), downsample=8)
    assert thumb is not None and thumb.shape == reference.shape
    assert np.abs(thumb.astype(float) - reference).mean() < 5
    assert pyramid_thumbnail(tmp_path / "flat.tif", (H, W), downsample=8) is None
    assert pyramid_thumbnail(tmp_path / "p.tif", (H, W), downsample=1) is None  # too coarse


def test_extraction_segments_on_the_pyramid_without_decoding_level_zero(tmp_path, monkeypatch):
    import rankbygene.data.wsi as wsi_module  # where tile_slide finds read_thumbnail

    def level_zero_thumbnail(*args, **kwargs):
        raise AssertionError("level 0 read for the thumbnail")

    monkeypatch.setattr(wsi_module, "read_thumbnail", level_zero_thumbnail)
    img, inside = _tissue(np.random.default_rng(9))
    _write_pyramid(tmp_path / "p.tif", img)
    (path,) = extract_slide_features(tmp_path / "p.tif", create_encoder("tiny"), tmp_path / "f")
    ff = read_features(path)
    centres = ff.coords + ff.attrs["patch_size_level0"] // 2
    assert len(ff.coords) > 0 and inside[centres[:, 1], centres[:, 0]].all()
