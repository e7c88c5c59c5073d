"""Whole-slide images: pixel size, thumbnail, tissue mask and the tissue patch grid.

The CLAM recipe (see ``docs/method.md``): segment tissue on a
low-resolution view (saturation channel, median blur, Otsu threshold, closing, small
specks removed), then tile level 0 into non-overlapping square patches of a physical
size (256 px at 20×, about 128 µm) and keep those mostly on tissue.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
import torch
from scipy import ndimage
from skimage.color import rgb2hsv
from skimage.filters import threshold_otsu
from skimage.morphology import remove_small_objects
from torchvision.transforms.v2 import functional as TF

from rankbygene.data.images import RegionReader
from rankbygene.data.patching import window_size_px
from rankbygene.data.tiling import TILING

__all__ = [
    "SLIDE_SUFFIXES",
    "THUMBNAIL_UM",
    "TiledSlide",
    "list_slides",
    "pyramid_thumbnail",
    "read_thumbnail",
    "slide_id",
    "slide_mpp",
    "tile_grid",
    "tile_slide",
    "tile_tissue_fraction",
    "tissue_mask",
]

SLIDE_SUFFIXES = (".tif", ".tiff", ".svs", ".ome.tif", ".ome.tiff", ".png", ".jpg", ".jpeg")

_APERIO_MPP = re.compile(r"MPP\s*=\s*([0-9.]+)")
# TIFF ResolutionUnit → micrometres per unit.
_UNIT_UM = {2: 25_400.0, 3: 10_000.0}  # inch, centimetre


def slide_mpp(path: str | Path) -> float | None:
    """Micrometres per level-0 pixel recorded in a TIFF/SVS, or None when absent.

    Reads Aperio's ``MPP = …`` image description first, then the X resolution tag
    with an inch or centimetre unit.
    """
    path = Path(path)
    if not path.name.lower().endswith((".tif", ".tiff", ".svs")):
        return None
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        match = _APERIO_MPP.search(page.description or "")
        if match:
            return float(match.group(1))
        tags = page.tags
        if "XResolution" in tags and "ResolutionUnit" in tags:
            num, den = tags["XResolution"].value
            unit = int(tags["ResolutionUnit"].value)
            if unit in _UNIT_UM and num > 0 and den > 0:
                return _UNIT_UM[unit] * den / num
    return None


def read_thumbnail(
    reader: RegionReader, shape: tuple[int, int], downsample: int, block: int = 16
) -> np.ndarray:
    """Area-averaged thumbnail of level 0, read block by block (memory stays bounded).

    Args:
        reader: slide opened with :func:`rankbygene.data.images.open_image`.
        shape: level-0 (height, width).
        downsample: integer factor between level 0 and the thumbnail.
        block: thumbnail rows/columns produced per region read (× downsample px read).

    Returns:
        (ceil(H / d), ceil(W / d), 3) uint8; in edge pixels the part beyond the slide
        counts as white background.
    """
    height, width = shape
    d = int(downsample)
    th, tw = math.ceil(height / d), math.ceil(width / d)
    thumb = np.empty((th, tw, 3), dtype=np.uint8)
    step = block * d
    for y0 in range(0, th * d, step):
        for x0 in range(0, tw * d, step):
            h, w = min(step, th * d - y0), min(step, tw * d - x0)
            region = reader.read_region(x0, y0, w, h).astype(np.float32)
            pooled = region.reshape(h // d, d, w // d, d, 3).mean(axis=(1, 3))
            thumb[y0 // d : (y0 + h) // d, x0 // d : (x0 + w) // d] = np.round(pooled)
    return thumb


def pyramid_thumbnail(
    path: str | Path, shape: tuple[int, int], downsample: int
) -> np.ndarray | None:
    """The same thumbnail as :func:`read_thumbnail`, from a pyramid level of the file.

    Reads the smallest stored level that is still at least as fine as the thumbnail
    (whole: it is small) and resizes it with antialiasing to ``ceil(H/d) × ceil(W/d)``,
    so level 0 is never decoded for segmentation. Returns None when the file has no
    such level or it cannot be decoded (the caller falls back to level 0).
    """
    path = Path(path)
    if not path.name.lower().endswith((".tif", ".tiff", ".svs")):
        return None
    height, width = shape
    try:
        with tifffile.TiffFile(path) as tif:
            levels = tif.series[0].levels
            usable = [
                lv
                for lv in levels[1:]
                if lv.axes in ("YXS", "YX") and width / lv.shape[1] <= downsample
            ]
            if not usable:
                return None
            level = min(usable, key=lambda lv: lv.shape[0] * lv.shape[1])
            arr = np.asarray(level.asarray())
    except (ValueError, NotImplementedError, KeyError, OSError, IndexError):
        return None
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    target = (math.ceil(height / downsample), math.ceil(width / downsample))
    image = torch.from_numpy(np.ascontiguousarray(arr[..., :3])).permute(2, 0, 1)
    resized = TF.resize(image, list(target), antialias=True)
    return resized.permute(1, 2, 0).numpy()


def tissue_mask(
    thumbnail: np.ndarray,
    *,
    median_px: int = 7,
    min_saturation: float = 0.05,
    close_px: int = 3,
    min_object_px: int = 16,
) -> np.ndarray:
    """Tissue vs background on a thumbnail (CLAM: saturation, median blur, Otsu).

    Args:
        thumbnail: (h, w, 3) uint8 RGB.
        median_px: median filter size on the saturation channel (removes speckle).
        min_saturation: floor of the threshold, so a blank slide is not split by Otsu
            into "tissue" and glass noise.
        close_px: binary closing iterations (fills thin gaps inside tissue).
        min_object_px: connected components smaller than this are dropped (dust).

    Returns:
        (h, w) bool mask.
    """
    saturation = ndimage.median_filter(rgb2hsv(thumbnail)[..., 1], size=median_px)
    spread = float(saturation.max() - saturation.min())
    threshold = threshold_otsu(saturation) if spread > 1e-6 else 1.0
    mask = saturation > max(threshold, min_saturation)
    if close_px > 0:
        mask = ndimage.binary_closing(mask, iterations=close_px, border_value=0)
    return remove_small_objects(mask, max_size=min_object_px - 1)


def tile_tissue_fraction(
    mask: np.ndarray, origins_xy: np.ndarray, tile_px: int, downsample: float
) -> np.ndarray:
    """Fraction of each level-0 tile covered by tissue, from the thumbnail mask.

    One summed-area table of the mask answers every tile in four lookups (no loop).

    Shape:
        mask (h, w) bool; origins_xy (T, 2) level-0 top-left (x, y); output (T,) float.
    """
    integral = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    h, w = mask.shape
    x0 = np.clip(np.floor(origins_xy[:, 0] / downsample).astype(int), 0, w)
    y0 = np.clip(np.floor(origins_xy[:, 1] / downsample).astype(int), 0, h)
    x1 = np.clip(np.ceil((origins_xy[:, 0] + tile_px) / downsample).astype(int), 0, w)
    y1 = np.clip(np.ceil((origins_xy[:, 1] + tile_px) / downsample).astype(int), 0, h)
    area = np.maximum((x1 - x0) * (y1 - y0), 1)
    inside = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    return inside / area


def tile_grid(
    mask: np.ndarray,
    shape: tuple[int, int],
    tile_px: int,
    downsample: float,
    min_tissue: float = 0.5,
) -> np.ndarray:
    """Top-left level-0 corners of the non-overlapping tiles that are mostly tissue.

    Args:
        mask: thumbnail tissue mask (:func:`tissue_mask`).
        shape: level-0 (height, width).
        tile_px: tile side in level-0 pixels.
        downsample: level-0 pixels per mask pixel.
        min_tissue: minimum tissue fraction of a kept tile.

    Returns:
        (T, 2) int64 (x, y), in raster order; only whole tiles inside the slide.
    """
    height, width = shape
    ys, xs = np.meshgrid(
        np.arange(0, height - tile_px + 1, tile_px),
        np.arange(0, width - tile_px + 1, tile_px),
        indexing="ij",
    )
    origins = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.int64)
    keep = tile_tissue_fraction(mask, origins, tile_px, downsample) >= min_tissue
    return origins[keep]


THUMBNAIL_UM = 16.0
"""Thumbnail pixel size for tissue segmentation (≈ CLAM's 64× downsampled level at 0.25 µm/px)."""


def list_slides(slides: str | Path | Sequence[str | Path]) -> list[Path]:
    """Slide files from a directory (every known slide suffix), one file, or a list."""
    if isinstance(slides, str | Path):
        root = Path(slides)
        if root.is_dir():
            found = sorted(p for p in root.iterdir() if p.name.lower().endswith(SLIDE_SUFFIXES))
            if not found:
                raise FileNotFoundError(
                    f"No slides in {root} (looked for {', '.join(SLIDE_SUFFIXES)})."
                )
            return found
        slides = [root]
    paths = [Path(p) for p in slides]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"Slide file(s) not found: {', '.join(missing[:5])}.")
    return paths


def slide_id(path: Path) -> str:
    """Slide id = file name without its (possibly double, e.g. ``.ome.tif``) suffix."""
    name = path.name
    for suffix in sorted(SLIDE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


@dataclass
class TiledSlide:
    """One slide segmented and tiled: where its tissue tiles are (no tile read yet).

    Attributes:
        path: the slide file.
        slide_id: file name without its suffix.
        mpp: level-0 µm per pixel.
        shape: level-0 (height, width) in pixels.
        patch_um: tile side in µm.
        window_px: tile side in level-0 pixels.
        downsample: level-0 pixels per thumbnail pixel.
        thumbnail: the slide at ``downsample`` (what tissue was segmented on).
        mask: tissue mask of the thumbnail.
        origins: level-0 top-left corners of the tissue tiles, raster order.

    Shape:
        thumbnail (h, w, 3) uint8; mask (h, w) bool; origins (T, 2) int64 (x, y).
    """

    path: Path
    slide_id: str
    mpp: float
    shape: tuple[int, int]
    patch_um: float
    window_px: int
    downsample: int
    thumbnail: np.ndarray
    mask: np.ndarray
    origins: np.ndarray

    @property
    def n_tiles(self) -> int:
        """Number of tissue tiles."""
        return len(self.origins)


def tile_slide(
    path: Path,
    reader: RegionReader,
    *,
    mpp: float | None = None,
    patch_um: float = TILING.patch_um,
    min_tissue: float = TILING.min_tissue,
) -> TiledSlide:
    """Segment a slide's tissue on a thumbnail and place its non-overlapping tissue tiles.

    The thumbnail comes from a pyramid level when the file has one, else from level 0
    read block by block; level 0 is never held whole. Both ``extract --slides`` and
    ``predict --slides`` tile slides here, so they see the same tiles.

    Args:
        path: the slide file (pixel size and pyramid are read from it).
        reader: the slide opened with :func:`rankbygene.data.images.open_image`.
        mpp: level-0 µm per pixel; default: from the file.
        patch_um: tile side in µm.
        min_tissue: minimum tissue fraction of a kept tile.

    Raises:
        ValueError: the pixel size is unknown (neither given nor in the file).
    """
    if not 0 <= min_tissue <= 1:
        raise ValueError(f"min_tissue must be within [0, 1]; got {min_tissue}.")
    pixel_um = mpp if mpp is not None else slide_mpp(path)
    if pixel_um is None:
        raise ValueError(
            f"slide {path}: its pixel size is not recorded in the file; pass --mpp "
            "(µm per level-0 pixel, e.g. 0.25 at 40×, 0.5 at 20×)."
        )
    window_px = window_size_px(patch_um, pixel_um)
    shape = reader.shape
    downsample = max(1, round(THUMBNAIL_UM / pixel_um))
    thumbnail = pyramid_thumbnail(path, shape, downsample)
    if thumbnail is None:  # no pyramid: average level 0 block by block
        thumbnail = read_thumbnail(reader, shape, downsample)
    mask = tissue_mask(thumbnail)
    origins = tile_grid(mask, shape, window_px, downsample, min_tissue)
    return TiledSlide(
        path, slide_id(path), float(pixel_um), shape, float(patch_um), window_px, downsample,
        thumbnail, mask, origins,
    )  # fmt: skip
