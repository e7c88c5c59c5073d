"""Patch cutting (rankbygene.data.patching): window sizes, origins, cut_patches."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
from torchvision.transforms.v2 import functional as TF

from rankbygene.data.images import ArrayReader, open_image
from rankbygene.data.patching import cut_patches, window_origins, window_size_px


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(150, 200, 3), dtype=np.uint8)


def _brute_window(img: np.ndarray, x0: int, y0: int, w: int) -> np.ndarray:
    """Reference: pad the whole image with white, then slice (one spot at a time)."""
    pad = w + 2
    big = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), constant_values=255)
    return big[y0 + pad : y0 + pad + w, x0 + pad : x0 + pad + w]


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
