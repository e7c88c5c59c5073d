"""Read large RGB images by rectangular region: tiled TIFFs tile by tile, others whole.

:func:`open_image` opens a full-resolution image once with the cheapest reader for the
file: :class:`TiledTiffReader` decodes only the tiles a region touches (tiled/pyramidal
TIFF, SVS), an :class:`ArrayReader` over a memory map serves uncompressed strip TIFFs,
and everything else (JPEG/PNG through Pillow, compressed strip TIFFs) is decoded whole
into an :class:`ArrayReader`. Every reader follows the :class:`RegionReader` protocol:
``read_region(x0, y0, width, height)`` returns a ``(height, width, 3)`` uint8 array,
white (the slide background) where the region leaves the image.

Importers cut spot patches through these readers (:mod:`rankbygene.data.patching`), and
whole-slide feature extraction reads slides with them (:mod:`rankbygene.data.wsi`,
:mod:`rankbygene.features.slides`).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

__all__ = [
    "PIL_MAX_PIXELS",
    "WHITE",
    "ArrayReader",
    "RegionReader",
    "TiledTiffReader",
    "open_image",
]

logger = logging.getLogger(__name__)

WHITE = 255
"""Fill value outside the image: white, the colour of glass in a bright-field slide."""

# Pillow refuses images above ~179 Mpx (and warns above ~89 Mpx) to guard web servers
# against decompression bombs. Slide scans are legitimately larger: the her2st H&E JPEGs
# are ~9,300 x 9,900 = 92 Mpx. We read local files the user named, so we raise the cap to
# 2 Gpx (a 45k x 45k slide, ~6 GB as RGB) instead of removing it: anything larger should
# be a tiled TIFF, which is read by region and never decoded whole.
PIL_MAX_PIXELS = 2_000_000_000

_TIFF_SUFFIXES = {".tif", ".tiff", ".svs", ".btf", ".ome.tif", ".ome.tiff"}


class RegionReader(Protocol):
    """An RGB image that can be read by rectangular region.

    Attributes:
        shape: ``(height, width)`` of the full-resolution image in pixels.
        source: Human-readable name of the image (file path or ``"<array>"``).
    """

    shape: tuple[int, int]
    source: str

    def read_region(self, x0: int, y0: int, width: int, height: int) -> np.ndarray:
        """Return the region, white where it leaves the image.

        Shape:
            Output ``(height, width, 3)`` uint8.
        """
        ...

    def close(self) -> None:
        """Release file handles."""
        ...


def _as_rgb_uint8(arr: np.ndarray, source: str) -> np.ndarray:
    """Return an ``(H, W, 3)`` uint8 view/copy of a gray, RGB or RGBA image.

    Shape:
        Input ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)``; output ``(H, W, 3)``.
    """
    if arr.dtype != np.uint8:
        raise ValueError(
            f"image {source}: pixel type is {arr.dtype}, expected uint8 (8-bit RGB). "
            "Convert the slide to 8-bit RGB (e.g. with vips or tifffile) and import again."
        )
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"image {source}: shape {arr.shape} is not an RGB image (H, W, 3); "
            "pass an 8-bit RGB, RGBA or grayscale image."
        )
    if arr.shape[2] == 1:
        return np.repeat(arr, 3, axis=2)
    return arr[:, :, :3]


def _paste(
    dst: np.ndarray, src: np.ndarray, src_x0: int, src_y0: int, dst_x0: int, dst_y0: int
) -> None:
    """Copy the overlap of ``src`` (placed at ``src_x0, src_y0``) into ``dst`` (at ``dst_x0,
    dst_y0``), both in the same global pixel frame."""
    h, w = dst.shape[:2]
    sh, sw = src.shape[:2]
    gx0, gy0 = max(src_x0, dst_x0), max(src_y0, dst_y0)
    gx1, gy1 = min(src_x0 + sw, dst_x0 + w), min(src_y0 + sh, dst_y0 + h)
    if gx1 <= gx0 or gy1 <= gy0:
        return
    dst[gy0 - dst_y0 : gy1 - dst_y0, gx0 - dst_x0 : gx1 - dst_x0] = src[
        gy0 - src_y0 : gy1 - src_y0, gx0 - src_x0 : gx1 - src_x0
    ]


class ArrayReader:
    """Region reader over an in-memory (or memory-mapped) ``(H, W, C)`` array.

    Args:
        array: Gray, RGB or RGBA uint8 image; a ``numpy.memmap`` is read lazily.
        source: Name used in messages.
    """

    def __init__(self, array: np.ndarray, source: str = "<array>") -> None:
        self._arr = array
        self.source = source
        if array.ndim not in (2, 3):
            raise ValueError(
                f"image {source}: shape {array.shape} is not an image (H, W) or (H, W, C)."
            )
        self.shape = (int(array.shape[0]), int(array.shape[1]))
        # Validate dtype/channels once, on a one-pixel probe, so memmaps stay lazy.
        _as_rgb_uint8(np.asarray(array[:1, :1]), source)

    def read_region(self, x0: int, y0: int, width: int, height: int) -> np.ndarray:
        """Return ``array[y0:y0+height, x0:x0+width]`` as RGB, white outside.

        Shape:
            Output ``(height, width, 3)`` uint8.
        """
        out = np.full((height, width, 3), WHITE, dtype=np.uint8)
        H, W = self.shape
        cx0, cy0 = max(x0, 0), max(y0, 0)
        cx1, cy1 = min(x0 + width, W), min(y0 + height, H)
        if cx1 > cx0 and cy1 > cy0:
            crop = _as_rgb_uint8(np.asarray(self._arr[cy0:cy1, cx0:cx1]), self.source)
            _paste(out, crop, cx0, cy0, x0, y0)
        return out

    def close(self) -> None:
        """Nothing to release (memmaps close when garbage-collected)."""


class TiledTiffReader:
    """Region reader for a tiled TIFF page that decodes only the tiles a region touches.

    A whole-slide image is never loaded whole: each :meth:`read_region` reads the byte
    ranges of the overlapping tiles (``page.dataoffsets``/``databytecounts``) and decodes
    them with ``page.decode`` (no zarr needed).

    Args:
        path: TIFF file; its first page (pyramid level 0) must be tiled, 8-bit,
            chunky (contiguous samples) and 2-D.
    """

    def __init__(self, path: Path) -> None:
        self.source = str(path)
        self._tif = tifffile.TiffFile(path)
        page = self._tif.pages.first
        self._page = page
        self.shape = (int(page.imagelength), int(page.imagewidth))
        self._tile_h, self._tile_w = int(page.tilelength), int(page.tilewidth)
        self._n_tiles_x = math.ceil(self.shape[1] / self._tile_w)
        self._n_tiles_y = math.ceil(self.shape[0] / self._tile_h)
        self.tiles_decoded = 0
        try:
            # Decode one tile now so a missing codec fails at open, naming the file.
            self.read_region(0, 0, 1, 1)
        except (ValueError, NotImplementedError, KeyError) as exc:
            self._tif.close()
            raise ValueError(
                f"image {path}: cannot decode its tiles (compression "
                f"{getattr(page.compression, 'name', page.compression)}: {exc}); convert it to "
                "an uncompressed, deflate (zlib) or LZW tiled TIFF, or install the "
                "'imagecodecs' package (pip install \"rankbygene[wsi]\") for JPEG/JPEG2000 tiles."
            ) from exc
        self.tiles_decoded = 0
        """Tiles decoded so far (lets callers check that a slide is not read whole)."""

    @staticmethod
    def supports(page: tifffile.TiffPage) -> bool:
        """Whether ``page`` has the tile layout this reader decodes."""
        return bool(
            page.is_tiled
            and page.imagedepth == 1
            and page.tiledepth == 1
            and (page.samplesperpixel == 1 or page.planarconfig == 1)
            and page.dtype == np.uint8
        )

    def read_region(self, x0: int, y0: int, width: int, height: int) -> np.ndarray:
        """Decode the tiles under the region and assemble it, white outside the image.

        Shape:
            Output ``(height, width, 3)`` uint8.
        """
        out = np.full((height, width, 3), WHITE, dtype=np.uint8)
        tx0, ty0 = max(x0, 0) // self._tile_w, max(y0, 0) // self._tile_h
        tx1 = min(math.ceil((x0 + width) / self._tile_w), self._n_tiles_x)
        ty1 = min(math.ceil((y0 + height) / self._tile_h), self._n_tiles_y)
        if tx1 <= tx0 or ty1 <= ty0:
            return out
        tys, txs = np.meshgrid(np.arange(ty0, ty1), np.arange(tx0, tx1), indexing="ij")
        indices = (tys * self._n_tiles_x + txs).ravel().tolist()
        page = self._page
        offsets = [page.dataoffsets[i] for i in indices]
        counts = [page.databytecounts[i] for i in indices]
        fh = self._tif.filehandle
        for data, index in fh.read_segments(offsets, counts, indices, sort=True):
            if data is None or len(data) == 0:
                continue  # sparse tile: leave the background white
            self.tiles_decoded += 1
            segment, _, _ = page.decode(
                data, index, jpegtables=page.jpegtables, jpegheader=page.jpegheader
            )
            tile = _as_rgb_uint8(np.asarray(segment)[0], self.source)
            ty, tx = divmod(index, self._n_tiles_x)
            # Edge tiles are stored full-size; clip them to the image before pasting.
            tile = tile[: self.shape[0] - ty * self._tile_h, : self.shape[1] - tx * self._tile_w]
            _paste(out, tile, tx * self._tile_w, ty * self._tile_h, x0, y0)
        return out

    def close(self) -> None:
        """Close the TIFF file."""
        self._tif.close()


@contextlib.contextmanager
def _pillow_pixel_cap(limit: int = PIL_MAX_PIXELS) -> Iterator[None]:
    """Temporarily raise Pillow's decompression-bomb cap (see ``PIL_MAX_PIXELS``)."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit if previous is None else max(previous, limit)
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _pillow_to_rgb_array(img: Image.Image, strip_rows: int = 1024) -> np.ndarray:
    """Copy a decoded Pillow image into a new RGB array, a band of rows at a time.

    ``np.asarray(img)`` would go through ``tobytes()`` and briefly hold two extra full
    copies (~0.5 GB for a her2st scan); copying bands keeps the overhead to one band.

    Shape:
        Output ``(H, W, 3)`` uint8.
    """
    width, height = img.size
    out = np.empty((height, width, 3), dtype=np.uint8)
    for top in range(0, height, strip_rows):
        band = img.crop((0, top, width, min(top + strip_rows, height)))
        out[top : top + band.size[1]] = np.asarray(
            band if band.mode == "RGB" else band.convert("RGB")
        )
    return out


def _read_with_pillow(path: Path) -> np.ndarray:
    """Decode a whole image file to RGB with Pillow (JPEG, PNG, ...).

    Shape:
        Output ``(H, W, 3)`` uint8.
    """
    with _pillow_pixel_cap():
        try:
            with Image.open(path) as img:
                if img.size[0] * img.size[1] > PIL_MAX_PIXELS:
                    raise ValueError(
                        f"image {path}: {img.size[0]} x {img.size[1]} px exceeds the "
                        f"{PIL_MAX_PIXELS:,} px limit for whole-image formats; convert it "
                        "to a tiled TIFF (e.g. `vips tiffsave in.jpg out.tif --tile "
                        "--pyramid`), which is read by region."
                    )
                img.load()
                return _pillow_to_rgb_array(img)
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(
                f"image {path}: cannot be read ({exc}); check that the file is a complete "
                "JPEG/PNG/TIFF image (re-download or re-export it)."
            ) from exc


def _open_tiff(path: Path) -> RegionReader:
    """Open a TIFF by region when its layout allows, else read it whole (logged)."""
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            tiled = TiledTiffReader.supports(page)
            memmappable = bool(page.is_memmappable) and not page.is_tiled
    except (tifffile.TiffFileError, OSError, ValueError, IndexError) as exc:
        raise ValueError(
            f"image {path}: cannot be read as TIFF ({exc}); check the file is a complete "
            "TIFF (re-export it) or pass a JPEG/PNG."
        ) from exc
    if tiled:
        logger.debug("%s: tiled TIFF, reading by region", path)
        return TiledTiffReader(path)
    if memmappable:
        logger.info("%s: uncompressed strip TIFF, memory-mapping it", path)
        return ArrayReader(tifffile.memmap(path, mode="r"), str(path))
    logger.info(
        "%s: compressed strip (non-tiled) TIFF cannot be read by region; reading it whole. "
        "For large slides, save a tiled TIFF instead.",
        path,
    )
    try:
        arr = tifffile.imread(path, key=0)
    except (tifffile.TiffFileError, OSError, ValueError) as exc:
        raise ValueError(f"image {path}: cannot be decoded ({exc}); re-export the TIFF.") from exc
    return ArrayReader(arr, str(path))


def open_image(image: str | Path | np.ndarray) -> RegionReader:
    """Open an image for region reads with the cheapest reader for its format.

    Args:
        image: A path (tiled/strip TIFF, SVS, JPEG, PNG, ...) or an ``(H, W, 3)`` uint8 array.

    Returns:
        A :class:`RegionReader`; call ``close()`` when done.

    Raises:
        ValueError: The file is missing, unreadable or not 8-bit RGB/gray.
    """
    if isinstance(image, np.ndarray):
        return ArrayReader(image)
    path = Path(image)
    if not path.is_file():
        raise ValueError(
            f"image {path}: file not found; pass the path of the full-resolution H&E image."
        )
    name = path.name.lower()
    if any(name.endswith(s) for s in _TIFF_SUFFIXES):
        return _open_tiff(path)
    return ArrayReader(_read_with_pillow(path), str(path))
