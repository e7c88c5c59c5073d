"""The tiles a pretraining run learns from: a dataset's spot patches or slides' tissue tiles.

A dataset directory gives the patches of its patch store (the spot window it was
imported at, the window the encoder sees in training and extraction). Slides are tiled
as ``extract --slides`` and ``predict --slides`` tile them
(:func:`rankbygene.data.wsi.tile_slide`): tissue-segmented, non-overlapping ``patch_um``
squares, cut and resized to the encoder's input size. Every tile keeps the id of the
sample or slide it came from, so a run can show that no held-out image was used.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rankbygene import keys
from rankbygene.data import read_dataset
from rankbygene.data.images import open_image
from rankbygene.data.patching import cut_patches
from rankbygene.data.wsi import list_slides, slide_id, tile_slide

logger = logging.getLogger(__name__)

__all__ = ["TileSet", "collect_tiles", "is_dataset_dir"]


@dataclass
class TileSet:
    """Tiles held in memory, with where each came from.

    Attributes:
        images: the tiles, uint8 RGB.
        sources: the sample or slide id of each tile.
        kind: ``dataset`` or ``slides``.

    Shape:
        images (N, S, S, 3); sources (N,).
    """

    images: np.ndarray
    sources: np.ndarray
    kind: str

    def __len__(self) -> int:
        return len(self.images)

    def counts(self) -> dict[str, int]:
        """Tiles per source id, in id order."""
        ids, n = np.unique(self.sources, return_counts=True)
        return {str(i): int(c) for i, c in zip(ids, n, strict=True)}


def is_dataset_dir(path: str | Path) -> bool:
    """Whether ``path`` is a dataset directory (HEST layout) rather than slides."""
    return (Path(path) / keys.METADATA_DIR).is_dir()


def _subset(n: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``limit`` of ``range(n)``, a seeded random choice kept in order."""
    return np.arange(n) if n <= limit else np.sort(rng.choice(n, size=limit, replace=False))


def _chosen(available: Sequence[str], wanted: Sequence[str] | None, where: str) -> list[str]:
    if wanted is None:
        return list(available)
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        raise ValueError(f"{unknown} are not in {where}; known: {list(available)}.")
    return [s for s in available if s in set(wanted)]


def _dataset_tiles(
    root: Path, samples: Sequence[str] | None, limit: int, rng: np.random.Generator
) -> TileSet:
    dataset = read_dataset(root)
    images, sources = [], []
    for sid in _chosen(dataset.ids, samples, str(root)):
        with dataset[sid].patches() as store:
            images.append(store.read(_subset(len(store), limit, rng)))
        sources += [sid] * len(images[-1])
    return TileSet(np.concatenate(images), np.array(sources), "dataset")


def _slide_tiles(
    root: Path,
    samples: Sequence[str] | None,
    out_px: int,
    *,
    mpp: float | None,
    patch_um: float,
    min_tissue: float,
    limit: int,
    rng: np.random.Generator,
) -> TileSet:
    paths = {slide_id(p): p for p in list_slides(root)}
    images, sources = [], []
    for sid in _chosen(list(paths), samples, str(root)):
        reader = open_image(paths[sid])
        try:
            tiles = tile_slide(
                paths[sid], reader, mpp=mpp, patch_um=patch_um, min_tissue=min_tissue
            )
            if tiles.n_tiles == 0:
                logger.warning("slide %s: no %g µm tissue tile; skipped", sid, patch_um)
                continue
            origins = tiles.origins[_subset(tiles.n_tiles, limit, rng)]
            centres = origins + tiles.window_px / 2  # cut_patches centres its windows
            cut = cut_patches(reader, centres, tiles.window_px, out_px, desc=sid).patches
        finally:
            reader.close()
        images.append(cut)
        sources += [sid] * len(cut)
    if not images:
        raise ValueError(
            f"{root}: no slide has a {patch_um:g} µm tile of ≥ {min_tissue:.0%} tissue; check "
            "--mpp, or lower --min-tissue / --patch-um."
        )
    return TileSet(np.concatenate(images), np.array(sources), "slides")


def collect_tiles(
    images: str | Path,
    out_px: int,
    *,
    samples: Sequence[str] | None = None,
    mpp: float | None = None,
    patch_um: float,
    min_tissue: float,
    max_tiles_per_image: int,
    seed: int = 0,
) -> TileSet:
    """Every tile a run trains on, read once into memory.

    Args:
        images: a dataset directory, a slide file, or a directory of slides.
        out_px: side slide tiles are resized to (the encoder's input size); a dataset's
            patches stay at their stored size (the views are cropped and resized anyway).
        samples: sample (or slide) ids to use; None: all.
        mpp: slides: µm per level-0 pixel (default: from the file).
        patch_um: slides: tile side in µm.
        min_tissue: slides: minimum tissue fraction of a tile.
        max_tiles_per_image: tiles kept per sample or slide (seeded random subset).
        seed: seed of that subset.

    Raises:
        ValueError: unknown sample ids, or no tissue tile at all.
        FileNotFoundError: no such path, or a directory without slides or dataset.
    """
    root = Path(images)
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist (pass a dataset directory or slides).")
    rng = np.random.default_rng(seed)
    if is_dataset_dir(root):
        tiles = _dataset_tiles(root, samples, max_tiles_per_image, rng)
    else:
        tiles = _slide_tiles(
            root, samples, out_px, mpp=mpp, patch_um=patch_um, min_tissue=min_tissue,
            limit=max_tiles_per_image, rng=rng,
        )  # fmt: skip
    logger.info("%d tiles from %s: %s", len(tiles), root, tiles.counts())
    return tiles
