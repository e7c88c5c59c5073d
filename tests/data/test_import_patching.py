"""Patch cutting and region reading (rankbygene.data.importers.patching)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from rankbygene.data.importers import patching
from rankbygene.data.importers.patching import (
    ArrayReader,
    TiledTiffReader,
    cut_patches,
    open_image,
    window_origins,
    window_size_px,
)


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(150, 200, 3), dtype=np.uint8)


def _brute_window(img: np.ndarray, x0: int, y0: int, w: int) -> np.ndarray:
    """Reference: pad the whole image with white, then slice (one spot at a time)."""
    pad = w + 2
    big = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), constant_values=255)
    return big[y0 + pad : y0 + pad + w, x0 + pad : x0 + pad + w]


REGIONS = [
    (0, 0, 200, 150),  # the whole image
    (10, 20, 50, 40),  # inside, crossing tile borders
    (-7, -3, 30, 20),  # top-left corner outside
    (190, 140, 30, 25),  # bottom-right outside, partial edge tiles
    (300, 300, 5, 5),  # fully outside
]


@pytest.mark.parametrize("region", REGIONS)
def test_array_reader_region_matches_padded_slice(image, region):
    x0, y0, w, h = region
    pad = 400
    big = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), constant_values=255)
    expected = big[y0 + pad : y0 + pad + h, x0 + pad : x0 + pad + w]
    np.testing.assert_array_equal(ArrayReader(image).read_region(x0, y0, w, h), expected)


@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("region", REGIONS)
def test_tiled_tiff_region_matches_array(tmp_path, image, region, compression):
    path = tmp_path / "slide.tif"
    tifffile.imwrite(path, image, tile=(64, 64), photometric="rgb", compression=compression)
    reader = open_image(path)
    assert isinstance(reader, TiledTiffReader)
    assert reader.shape == (150, 200)
    try:
        np.testing.assert_array_equal(
            reader.read_region(*region), ArrayReader(image).read_region(*region)
        )
    finally:
        reader.close()


def test_tiled_tiff_reads_only_needed_tiles(tmp_path, image):
    path = tmp_path / "slide.tif"
    tifffile.imwrite(path, image, tile=(64, 64), photometric="rgb")
    reader = open_image(path)
    # region x 70..90, y 10..30 lies inside tile row 0, tile column 1 only
    np.testing.assert_array_equal(reader.read_region(70, 10, 20, 20), image[10:30, 70:90])
    assert reader.tiles_decoded == 1
    reader.read_region(60, 60, 10, 10)  # straddles four tiles
    assert reader.tiles_decoded == 5
    reader.close()


def test_uncompressed_strip_tiff_is_memory_mapped(tmp_path, image):
    path = tmp_path / "strip.tif"
    tifffile.imwrite(path, image, photometric="rgb")
    reader = open_image(path)
    assert isinstance(reader, ArrayReader)
    assert isinstance(reader._arr, np.memmap)
    np.testing.assert_array_equal(reader.read_region(5, 5, 20, 10), image[5:15, 5:25])


def test_compressed_strip_tiff_read_whole_with_note(tmp_path, image, caplog):
    path = tmp_path / "strip_zlib.tif"
    tifffile.imwrite(path, image, photometric="rgb", compression="zlib")
    with caplog.at_level("INFO", logger=patching.__name__):
        reader = open_image(path)
    assert "reading it whole" in caplog.text
    np.testing.assert_array_equal(reader.read_region(0, 0, 200, 150), image)


def test_png_and_grayscale_are_rgb(tmp_path, image):
    path = tmp_path / "img.png"
    Image.fromarray(image).save(path)
    np.testing.assert_array_equal(open_image(path).read_region(0, 0, 200, 150), image)
    gray = image[:, :, 0]
    region = ArrayReader(gray).read_region(0, 0, 4, 4)
    np.testing.assert_array_equal(region, np.repeat(gray[:4, :4, None], 3, axis=2))


def test_pillow_cap_raised_only_while_reading(tmp_path, image, monkeypatch):
    path = tmp_path / "img.png"
    Image.fromarray(image).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # smaller than the image
    seen = []
    real_open = Image.open

    def spy(*args, **kw):
        seen.append(Image.MAX_IMAGE_PIXELS)
        return real_open(*args, **kw)

    monkeypatch.setattr(Image, "open", spy)
    open_image(path)
    assert seen == [patching.PIL_MAX_PIXELS]
    assert Image.MAX_IMAGE_PIXELS == 100  # restored


def test_missing_and_unreadable_images(tmp_path):
    with pytest.raises(ValueError, match=r"nope\.jpg: file not found"):
        open_image(tmp_path / "nope.jpg")
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(ValueError, match=r"broken\.jpg: cannot be read"):
        open_image(bad)
    bad_tif = tmp_path / "broken.tif"
    bad_tif.write_bytes(b"II*\x00garbage")
    with pytest.raises(ValueError, match=r"broken\.tif"):
        open_image(bad_tif)
    with pytest.raises(ValueError, match="uint8"):
        ArrayReader(np.zeros((4, 4, 3), dtype=np.uint16))


def test_window_size_and_origins():
    assert window_size_px(112, 0.5) == 224
    assert window_size_px(112, 0.686) == 163
    with pytest.raises(ValueError, match="positive"):
        window_size_px(112, 0)
    # pixel i covers [i, i+1): window [x0, x0+w) is centred on x0 + w/2
    np.testing.assert_array_equal(window_origins(np.array([[10.0, 20.0]]), 4), [[8, 18]])
    # closest centre: 8 + 2.5 = 10.5 for x = 10.2 and 17 + 2.5 = 19.5 for y = 19.6
    np.testing.assert_array_equal(window_origins(np.array([[10.2, 19.6]]), 5), [[8, 17]])
    np.testing.assert_array_equal(window_origins(np.array([[10.0, 3.0]]), 5), [[8, 1]])


@pytest.mark.parametrize("block_px", [16, 2048])
def test_cut_patches_matches_brute_force(image, block_px):
    rng = np.random.default_rng(1)
    centers = rng.uniform(-5, 205, size=(40, 2)) * [1, 0.75]  # some windows leave the image
    w = 21
    result = cut_patches(ArrayReader(image), centers, w, w, block_px=block_px)
    origins = window_origins(centers, w)
    expected = np.stack([_brute_window(image, x, y, w) for x, y in origins])
    np.testing.assert_array_equal(result.patches, expected)
    H, W = image.shape[:2]
    outside = (origins < 0).any(1) | (origins[:, 0] + w > W) | (origins[:, 1] + w > H)
    np.testing.assert_array_equal(result.padded, outside)
    assert result.padded.any() and not result.padded.all()


def test_cut_patches_resizes_with_antialiasing(image):
    centers = np.array([[100.0, 75.0], [30.0, 40.0]])
    result = cut_patches(ArrayReader(image), centers, 40, 16)
    assert result.patches.shape == (2, 16, 16, 3) and result.patches.dtype == np.uint8
    for patch, (x0, y0) in zip(result.patches, window_origins(centers, 40), strict=True):
        window = torch.from_numpy(image[y0 : y0 + 40, x0 : x0 + 40]).permute(2, 0, 1)
        ref = TF.resize(window[None], [16, 16], antialias=True)[0].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(patch, ref)


def test_cut_patches_same_from_tiled_tiff(tmp_path, image):
    path = tmp_path / "slide.tif"
    tifffile.imwrite(path, image, tile=(32, 32), photometric="rgb", compression="zlib")
    centers = np.random.default_rng(2).uniform(0, 150, size=(25, 2))
    reader = open_image(path)
    try:
        tiled = cut_patches(reader, centers, 24, 24, block_px=64)
    finally:
        reader.close()
    direct = cut_patches(ArrayReader(image), centers, 24, 24)
    np.testing.assert_array_equal(tiled.patches, direct.patches)


def test_cut_patches_rejects_nan_centres(image):
    with pytest.raises(ValueError, match=r"finite \(N, 2\)"):
        cut_patches(ArrayReader(image), np.array([[np.nan, 1.0]]), 8, 8)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
def test_pillow_band_copy_matches_convert(image, mode):
    img = Image.fromarray(image).convert(mode)
    expected = np.asarray(img.convert("RGB"))
    np.testing.assert_array_equal(patching._pillow_to_rgb_array(img, strip_rows=7), expected)


def test_tiled_tiff_without_codec_fails_at_open(tmp_path, image, monkeypatch):
    path = tmp_path / "slide.tif"
    tifffile.imwrite(path, image, tile=(64, 64), photometric="rgb", compression="zlib")
    codecs = type(tifffile.TIFF.DECOMPRESSORS)
    real = codecs.__getitem__

    def no_deflate(self, key):
        if int(key) in (8, 32946):
            raise KeyError(f"{key} requires the 'imagecodecs' package")
        return real(self, key)

    monkeypatch.setattr(codecs, "__getitem__", no_deflate)
    with pytest.raises(ValueError, match=r"slide\.tif: cannot decode its tiles .*imagecodecs"):
        open_image(path)
