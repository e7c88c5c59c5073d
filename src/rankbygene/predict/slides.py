"""``rankbygene predict --slides``: gene-expression maps of whole slides.

Each slide is segmented and tiled as ``extract --slides`` does it
(:func:`rankbygene.data.wsi.tile_slide`), at the window of the predictor's card,
and its tiles stream through the encoder and the predictor a batch at a time
(:func:`~rankbygene.features.slides.embed_tiles`): tiled TIFF/SVS slides are read by
region and never held whole (JPEG/PNG have no regions: Pillow decodes them whole).
What stays in memory besides one batch is the thumbnail and the predictions, G × 4
bytes per tile (1 kB at 250 genes). Outputs per slide: maps, GeoJSON, then the h5ad
(see :mod:`rankbygene.predict.outputs`); a slide whose h5ad exists is skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from rankbygene.data.images import open_image
from rankbygene.data.wsi import TiledSlide, list_slides, slide_id, tile_slide
from rankbygene.features.extract import default_device, prepare_encoder
from rankbygene.features.slides import embed_tiles
from rankbygene.predict.encoders import EncoderSource
from rankbygene.predict.identity import check_same_encoder
from rankbygene.predict.maps import map_background, plot_slide_map, save_map
from rankbygene.predict.outputs import (
    check_finished,
    check_pred_out,
    geojson_path,
    h5ad_path,
    map_path,
    prediction_adata,
    prediction_uns,
    predictor_header,
    remove_old_maps,
    tile_table,
    update_pred_summary,
    write_geojson,
    write_h5ad,
)
from rankbygene.predict.saved import SavedPredictor
from rankbygene.predict.settings import PREDICT, PredictSettings

logger = logging.getLogger(__name__)

__all__ = ["map_genes_of", "predict_slides"]


def map_genes_of(
    out_genes: list[str], asked: Sequence[str] | None, settings: PredictSettings
) -> list[str]:
    """The genes given a map: those asked for, else the first ``settings.max_maps``."""
    if not asked and len(out_genes) > settings.max_maps:
        logger.info(
            "maps of the first %d of %d genes; pass --genes to choose", settings.max_maps,
            len(out_genes),
        )  # fmt: skip
    return list(out_genes) if asked else list(out_genes[: settings.max_maps])


def predict_slides(
    slides: str | Path | Sequence[str | Path],
    source: EncoderSource,
    saved: SavedPredictor,
    out: str | Path,
    *,
    genes: Sequence[str] | None = None,
    mpp: float | None = None,
    settings: PredictSettings = PREDICT,
    overwrite: bool = False,
    device: str | torch.device | None = None,
) -> dict[str, dict[str, Any]]:
    """Predict every slide's tissue tiles and write ``out/{id}.h5ad``, ``.geojson``, maps.

    Args:
        slides: a directory of slides, one slide file, or a list of files.
        source: the encoder (:func:`rankbygene.predict.encoders.open_encoder`); it must
            be the one the predictor's training features came from.
        saved: the predictor (:func:`rankbygene.predict.saved.load_predictor`).
        out: the predictions directory (created).
        genes: genes to write and map (default: every gene; maps of the first
            ``settings.max_maps``).
        mpp: level-0 µm per pixel when the files do not record it.
        settings: batch size, tissue threshold, maps.
        overwrite: predict slides whose h5ad exists again (else they are skipped).
        device: torch device (default: CUDA if available, else CPU).

    Returns:
        Slide id → its entry in ``out/predict.json``.

    Raises:
        ValueError: an encoder that is not the predictor's, a gene the predictor does
            not predict, an encoder without per-tile features (HisToGene), a card
            without a patch size, or an unknown pixel size.
    """
    out = Path(out)
    if not source.per_tile:
        raise ValueError(
            f"{source.label} is a HisToGene run: its spot features need the whole ST "
            "section, so it cannot embed slide tiles. Predict ST sections with --data DIR."
        )
    patch_um = saved.patch_um
    if patch_um is None:
        raise ValueError(
            f"The card of predictor {saved.path} does not record the patch size its features "
            "saw (the training patches have no pixel size); slides cannot be tiled to match."
        )
    # Tiles are cut at the card's window, so only the encoder itself can differ.
    given = replace(source.identity, patch_um=patch_um)
    check_same_encoder(saved.identity, given, predictor=saved.path, given_what=source.label)
    out_genes, columns = saved.columns(genes)
    map_genes = map_genes_of(out_genes, genes, settings)
    paths = list_slides(slides)
    check_pred_out(out)
    dev = torch.device(device) if device is not None else default_device()
    encoder = prepare_encoder(source.network, dev, channels_last=False)
    header = predictor_header(saved, out_genes, map_genes, "slides")
    entries: dict[str, dict[str, Any]] = {}
    for path in tqdm(paths, desc="predict slides", unit="slide"):
        sid = slide_id(path)
        target = h5ad_path(out, sid)
        if target.is_file() and not overwrite:
            check_finished(target, saved.id, out_genes)
            logger.info("slide %s: %s exists, skipped (use --overwrite)", sid, target)
            continue
        start = time.perf_counter()
        reader = open_image(path)
        try:
            tiles = tile_slide(
                path, reader, mpp=mpp, patch_um=patch_um, min_tissue=settings.min_tissue
            )
            values = np.empty((tiles.n_tiles, len(out_genes)), dtype=np.float32)
            for first, feats in embed_tiles(reader, tiles, encoder, settings.batch_size, dev):
                values[first : first + len(feats)] = saved.predict(feats)[:, columns]
            background = map_background(tiles, reader) if tiles.n_tiles and map_genes else None
        finally:
            reader.close()
        seconds = time.perf_counter() - start
        entries[sid] = _write_slide(
            out, tiles, values, out_genes, map_genes, saved, settings, background
        )
        entries[sid]["seconds"] = round(seconds, 3)
        update_pred_summary(out, header, sid, entries[sid])
        logger.info(
            "slide %s: %d tiles in %.1f s -> %s", sid, tiles.n_tiles, seconds, h5ad_path(out, sid)
        )
    return entries


def _write_slide(
    out: Path,
    tiles: TiledSlide,
    values: np.ndarray,
    genes: list[str],
    map_genes: list[str],
    saved: SavedPredictor,
    settings: PredictSettings,
    background: tuple[np.ndarray, int] | None,
) -> dict[str, Any]:
    """Maps, GeoJSON, then the h5ad (last: it marks the slide finished); the summary entry."""
    sid = tiles.slide_id
    maps: dict[str, str] = {}
    remove_old_maps(out, sid, map_genes if tiles.n_tiles else [])
    if tiles.n_tiles == 0:
        logger.warning(
            "slide %s: no %g µm tile is >= %.0f%% tissue (tissue covers %.1f%% of the "
            "thumbnail); writing empty predictions. Check the slide and --mpp.",
            sid, tiles.patch_um, 100 * settings.min_tissue, 100 * float(tiles.mask.mean()),
        )  # fmt: skip
    else:
        encoder = saved.card["encoder"]
        run = f" of run {Path(encoder['source_run']).name}" if encoder["source_run"] else ""
        subtitle = (
            f"{tiles.n_tiles} tiles of {tiles.patch_um:g} µm, {saved.card['probe']} "
            f"predictor on {encoder['encoder']} features{run}"
        )
        for gene in map_genes:
            fig = plot_slide_map(
                tiles,
                values[:, genes.index(gene)],
                gene,
                units=f"predicted {saved.card['scale']['units']}",
                alpha=settings.map_alpha,
                subtitle=subtitle,
                background=background,
            )
            maps[gene] = save_map(fig, map_path(out, sid, gene)).relative_to(out).as_posix()
    write_geojson(geojson_path(out, sid), tiles.origins, tiles.window_px, genes, values)
    obs, spatial = tile_table(tiles.origins, tiles.window_px, tiles.mpp)
    uns = prediction_uns(
        saved,
        kind="slide",
        slide_id=sid,
        source=str(tiles.path),
        mpp=tiles.mpp,
        patch_um=tiles.patch_um,
        tile_px=tiles.window_px,
        shape=list(tiles.shape),
        coords="obs tile_x0/tile_y0: level-0 top-left corner (px); obsm spatial: centre (px)",
    )
    write_h5ad(prediction_adata(values, genes, obs, spatial, uns), h5ad_path(out, sid))
    return {
        "kind": "slide",
        "source": str(tiles.path),
        "n_tiles": tiles.n_tiles,
        "mpp": tiles.mpp,
        "patch_um": tiles.patch_um,
        "tile_px": tiles.window_px,
        "tissue_fraction": float(tiles.mask.mean()),
        "h5ad": h5ad_path(out, sid).name,
        "geojson": geojson_path(out, sid).name,
        "maps": maps,
        **({"warning": "no tissue tile"} if tiles.n_tiles == 0 else {}),
    }
