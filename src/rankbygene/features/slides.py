"""Whole-slide feature bags: tissue tiles of each slide → ``FEATS/{slide_id}.h5``.

Each slide is tiled (:func:`rankbygene.data.wsi.tile_slide`: non-overlapping
``patch_um`` squares that are mostly tissue) and every tile is embedded by a frozen
encoder. The file follows CLAM/TRIDENT: ``features`` (T × D float32) and ``coords``
(T × 2, level-0 **top-left** corners, as CLAM), with attrs ``patch_size_level0``,
``mpp``, ``patch_um`` and the encoder; so ``rankbygene evaluate slides`` and CLAM-style
MIL code read it unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from rankbygene import __version__, keys
from rankbygene.data.images import RegionReader, open_image
from rankbygene.data.patching import cut_patches
from rankbygene.data.tiling import TILING
from rankbygene.data.wsi import TiledSlide, list_slides, slide_id, tile_slide
from rankbygene.features.extract import (
    check_existing_features,
    default_device,
    feature_name,
    prepare_encoder,
)
from rankbygene.features.io import feature_path, update_summary, write_features
from rankbygene.features.settings import EXTRACT
from rankbygene.fileio import remove_stale_temps
from rankbygene.models import weights_sha256

logger = logging.getLogger(__name__)

__all__ = ["embed_tiles", "extract_slide_features"]


@torch.inference_mode()
def embed_tiles(
    reader: RegionReader,
    tiles: TiledSlide,
    encoder: torch.nn.Module,
    batch_size: int,
    device: torch.device,
) -> Iterator[tuple[int, np.ndarray]]:
    """Stream the tiles through the encoder, a batch at a time, with a progress bar.

    Only one batch of tiles (and the image blocks they are cut from) is in memory at
    a time. ``encoder`` must come from :func:`~rankbygene.features.extract.prepare_encoder`.

    Yields:
        (index of the batch's first tile, its features).

    Shape:
        features (b, D) float32, b <= batch_size.
    """
    out_px = encoder.transform.input_size
    window_px = tiles.window_px
    centres = tiles.origins + window_px / 2  # cut_patches centres its windows
    with tqdm(total=tiles.n_tiles, desc=tiles.slide_id, unit="tile", leave=False) as progress:
        for start in range(0, tiles.n_tiles, batch_size):
            batch = cut_patches(
                reader, centres[start : start + batch_size], window_px, out_px, desc="tiles"
            ).patches
            x = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2)
            x = encoder.transform.normalize(x).contiguous().to(device)
            yield start, encoder(x).float().cpu().numpy()
            progress.update(len(batch))


def extract_slide_features(
    slides: str | Path | Sequence[str | Path],
    encoder: torch.nn.Module,
    out_dir: str | Path,
    *,
    mpp: float | None = None,
    patch_um: float = TILING.patch_um,
    min_tissue: float = TILING.min_tissue,
    batch_size: int = EXTRACT.batch_size,
    overwrite: bool = False,
    source_run: str | Path | None = None,
    device: str | torch.device | None = None,
) -> list[Path]:
    """Embed the tissue tiles of every slide and write ``out_dir/{slide_id}.h5``.

    Args:
        slides: a directory of slides, one slide file, or a list of files (TIFF/SVS read
            by region with tifffile; JPEG/PNG read whole).
        encoder: frozen encoder (``create_encoder``/``load_encoder``).
        out_dir: features directory (created).
        mpp: level-0 µm per pixel; default: read from the file (Aperio ``MPP`` or the
            TIFF resolution tags). Required when the file does not record it.
        patch_um: tile side in µm (CLAM: 256 px at 20× ≈ 128 µm); tiles are resized to
            the encoder's input size.
        min_tissue: minimum tissue fraction of a kept tile.
        batch_size: tiles per forward pass.
        overwrite: re-extract slides whose file exists (else skipped, after checking
            they come from the same encoder).
        source_run: the training run the encoder came from (recorded in attrs).
        device: torch device (default: CUDA if available, else CPU).

    Returns:
        The feature file of every slide.

    Raises:
        ValueError: unknown pixel size, or a slide with no tissue tile.
    """
    paths = list_slides(slides)
    out_dir = Path(out_dir)
    remove_stale_temps(out_dir)  # of an extraction that was killed
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
    if not 0 <= min_tissue <= 1:
        raise ValueError(f"min_tissue must be within [0, 1]; got {min_tissue}.")
    dev = torch.device(device) if device is not None else default_device()
    run = str(source_run) if source_run is not None else None
    enc_name = str(encoder.name)
    transform = encoder.transform.to_dict()
    digest = weights_sha256(encoder)
    encoder = prepare_encoder(encoder, dev, channels_last=False)
    written: dict[str, Any] = {}
    outputs = []
    for path in tqdm(paths, desc=f"slides {feature_name(encoder, source_run)}", unit="slide"):
        sid = slide_id(path)
        target = feature_path(out_dir, sid)
        outputs.append(target)
        if target.is_file() and not overwrite:
            check_existing_features(target, enc_name, run)
            logger.info("slide %s: %s exists, skipped (use --overwrite)", sid, target)
            continue
        reader = open_image(path)
        try:
            tiles = tile_slide(path, reader, mpp=mpp, patch_um=patch_um, min_tissue=min_tissue)
            if tiles.n_tiles == 0:
                raise ValueError(
                    f"slide {path}: no {patch_um:g} µm tile is ≥ {min_tissue:.0%} tissue "
                    f"(tissue covers {tiles.mask.mean():.1%} of the thumbnail); check the "
                    "slide and --mpp, or lower --min-tissue / --patch-um."
                )
            feats = np.concatenate(
                [f for _, f in embed_tiles(reader, tiles, encoder, batch_size, dev)]
            )
        finally:
            reader.close()
        attrs = {
            keys.FEAT_ATTR_ENCODER: enc_name,
            keys.FEAT_ATTR_SOURCE_RUN: run,
            keys.FEAT_ATTR_TRANSFORM: transform,
            keys.FEAT_ATTR_WEIGHTS_SHA256: digest,
            "slide_id": sid,
            "slide_path": str(path),
            "coords_origin": "top-left",
            "patch_size_level0": tiles.window_px,
            "patch_um": float(patch_um),
            "mpp": tiles.mpp,
            "embed_dim": int(feats.shape[1]),
            "rankbygene_version": __version__,
        }
        tile_ids = [f"{x}_{y}" for x, y in tiles.origins]  # stands in for spot barcodes
        write_features(target, feats, tiles.origins, tile_ids, attrs)
        written[sid] = {"n_tiles": len(feats), "dim": int(feats.shape[1]), "file": target.name}
        logger.info(
            "slide %s: %d tiles of %d px (%.1f%% tissue) -> %s",
            sid, len(feats), tiles.window_px, 100 * float(tiles.mask.mean()), target,
        )  # fmt: skip
    header = {
        "encoder": enc_name,
        "name": feature_name(encoder, source_run),
        "source_run": run,
        "embed_dim": int(encoder.embed_dim),
        "transform": transform,
        keys.FEAT_ATTR_WEIGHTS_SHA256: digest,
        "kind": "slides",
    }
    update_summary(out_dir, header, written)
    return outputs
