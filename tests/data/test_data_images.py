"""Region readers (rankbygene.data.images): tiled/strip TIFF, Pillow formats, arrays."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from rankbygene.data import images
from rankbygene.data.images import ArrayReader, TiledTiffReader, open_image


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(150, 200, 3), dtype=np.uint8)


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
    with caplog.at_level("INFO", logger=images.__name__):
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
    assert seen == [images.PIL_MAX_PIXELS]
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


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
def test_pillow_band_copy_matches_convert(image, mode):
    img = Image.fromarray(image).convert(mode)
    expected = np.asarray(img.convert("RGB"))
    np.testing.assert_array_equal(images._pillow_to_rgb_array(img, strip_rows=7), expected)


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
