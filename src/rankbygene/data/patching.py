"""Cut square spot patches of a physical size from an image read by region.

:func:`window_size_px` turns the physical patch side (µm) into full-resolution pixels,
:func:`window_origins` places each window on its spot centre, and :func:`cut_patches`
groups the spots into image blocks, reads one region per block through a
:class:`~rankbygene.data.images.RegionReader`, slices every window of the block in one
fancy-indexing step and resizes them in batch (antialiased). Windows that leave the
image come back white-filled (the slide background) and flagged in
:attr:`PatchResult.padded`, so downstream code can drop or down-weight them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

from rankbygene.data.images import RegionReader

__all__ = ["PatchResult", "cut_patches", "window_origins", "window_size_px"]


def window_size_px(patch_um: float, um_per_px: float) -> int:
    """Side in full-resolution pixels of a ``patch_um`` window (rounded, at least 1).

    Raises:
        ValueError: Non-positive sizes.
    """
    if not (patch_um > 0 and um_per_px > 0 and math.isfinite(patch_um * um_per_px)):
        raise ValueError(
            f"patch size {patch_um} µm and pixel size {um_per_px} µm/px must be positive "
            "numbers; check --patch-um and the image's µm per pixel."
        )
    return max(1, round(patch_um / um_per_px))


def window_origins(centers_xy: np.ndarray, window_px: int) -> np.ndarray:
    """Top-left corner of the ``window_px`` window centred on each spot.

    Pixel ``i`` covers ``[i, i + 1)``, so the window ``[x0, x0 + window)`` is centred on
    ``x0 + window / 2``; ``x0 = round(c - window / 2)`` (halves up) is the closest.

    Shape:
        centers_xy ``(N, 2)`` float (x, y); output ``(N, 2)`` int64 (x0, y0).
    """
    return np.floor(np.asarray(centers_xy, dtype=np.float64) - window_px / 2 + 0.5).astype(np.int64)


@dataclass
class PatchResult:
    """Patches cut around spots.

    Attributes:
        patches: ``(N, S, S, 3)`` uint8, ``S = out_px``.
        padded: ``(N,)`` bool, True where the window left the image (white-filled).
        window_px: Window side in full-resolution pixels.
    """

    patches: np.ndarray
    padded: np.ndarray
    window_px: int


def _resize_batch(windows: np.ndarray, out_px: int) -> np.ndarray:
    """Resize ``(n, 3, w, w)`` uint8 windows to ``(n, out_px, out_px, 3)`` uint8.

    Antialiased bilinear (torchvision v2 on uint8 tensors) so downsampling does not alias.
    """
    tensor = torch.from_numpy(np.ascontiguousarray(windows))
    if tensor.shape[-1] != out_px:
        tensor = TF.resize(tensor, [out_px, out_px], antialias=True)
    return tensor.permute(0, 2, 3, 1).numpy()


def cut_patches(
    reader: RegionReader,
    centers_xy: np.ndarray,
    window_px: int,
    out_px: int,
    *,
    block_px: int = 2048,
    desc: str = "patches",
) -> PatchResult:
    """Cut a ``window_px`` square around every spot centre and resize it to ``out_px``.

    Spots are grouped into ``block_px`` image blocks; each block is read once (with a
    margin of one window) and all its windows are sliced in one step, so memory stays
    bounded by a block and tiled TIFFs decode each tile about once.

    Args:
        reader: Image opened with :func:`rankbygene.data.images.open_image`.
        centers_xy: Spot centres in full-resolution pixels, x (column) then y (row).
        window_px: Window side in full-resolution pixels (see :func:`window_size_px`).
        out_px: Stored patch side; windows are resized with antialiasing when different.
        block_px: Block side used to group spots (memory vs. re-read trade-off).
        desc: Progress bar label.

    Returns:
        :class:`PatchResult` with patches and the per-spot "left the image" flag.

    Shape:
        centers_xy ``(N, 2)``; patches ``(N, out_px, out_px, 3)`` uint8; padded ``(N,)``.
    """
    centers = np.asarray(centers_xy, dtype=np.float64)
    if centers.ndim != 2 or centers.shape[1] != 2 or not np.isfinite(centers).all():
        raise ValueError(
            f"image {reader.source}: spot centres must be a finite (N, 2) array of (x, y) "
            f"pixels, got shape {centers.shape}; check the coordinate columns."
        )
    n = len(centers)
    patches = np.empty((n, out_px, out_px, 3), dtype=np.uint8)
    origins = window_origins(centers, window_px)
    H, W = reader.shape
    padded = (
        (origins[:, 0] < 0)
        | (origins[:, 1] < 0)
        | (origins[:, 0] + window_px > W)
        | (origins[:, 1] + window_px > H)
    )
    block_px = max(block_px, window_px)
    block_ids = np.floor_divide(origins, block_px)
    _, group = np.unique(block_ids, axis=0, return_inverse=True)
    group = group.ravel()
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    for members in tqdm(np.split(order, bounds), desc=desc, unit="block", leave=False):
        if len(members) == 0:
            continue
        o = origins[members]
        rx0, ry0 = o.min(axis=0)
        rx1, ry1 = o.max(axis=0) + window_px
        region = reader.read_region(int(rx0), int(ry0), int(rx1 - rx0), int(ry1 - ry0))
        # (h-w+1, w-w+1, 3, win, win) view; indexing copies just the windows we need.
        views = sliding_window_view(region, (window_px, window_px), axis=(0, 1))
        windows = views[o[:, 1] - ry0, o[:, 0] - rx0]
        patches[members] = _resize_batch(windows, out_px)
    return PatchResult(patches=patches, padded=padded, window_px=window_px)
