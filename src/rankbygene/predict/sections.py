"""``rankbygene predict --data``: predictions at the spots of ST sections (a HEST dataset).

The spots' patches go through the encoder exactly as ``rankbygene extract --data`` embeds
them (same function, batch size and memory format), or precomputed features are read
(``--features``); the saved predictor's mean over its members is then what
``evaluate genes`` writes as ``predicted`` for the same features and predictor. A section
whose counts hold the genes also gets its measured expression on the predictor's scale
(layer ``target``), so the maps and the report show measured beside predicted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import torch
from tqdm.auto import tqdm

from rankbygene import keys
from rankbygene.data import Sample, STDataset, preprocess_expression, read_dataset
from rankbygene.data.patching import window_origins, window_size_px
from rankbygene.evaluation.metrics import pearson_per_gene
from rankbygene.features.extract import default_device, embed_sample, prepare_encoder
from rankbygene.features.io import assert_same_spots, feature_path, read_features
from rankbygene.features.runs import section_features
from rankbygene.features.settings import EXTRACT
from rankbygene.predict.encoders import EncoderSource
from rankbygene.predict.fit import dataset_patch_um, features_identity
from rankbygene.predict.identity import check_same_encoder
from rankbygene.predict.maps import plot_section_map, save_map
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
    update_pred_summary,
    write_geojson,
    write_h5ad,
)
from rankbygene.predict.saved import SavedPredictor
from rankbygene.predict.settings import PREDICT, PredictSettings
from rankbygene.predict.slides import map_genes_of
from rankbygene.report.plots.spots import spot_diameter_from_metadata

logger = logging.getLogger(__name__)

__all__ = ["predict_sections"]


def predict_sections(
    data: STDataset | str | Path,
    source: EncoderSource | None,
    saved: SavedPredictor,
    out: str | Path,
    *,
    features_dir: str | Path | None = None,
    sample_ids: Sequence[str] | None = None,
    genes: Sequence[str] | None = None,
    settings: PredictSettings = PREDICT,
    overwrite: bool = False,
    device: str | torch.device | None = None,
) -> dict[str, dict[str, Any]]:
    """Predict every spot of the chosen sections; write ``out/{id}.h5ad``, GeoJSON, maps.

    Args:
        data: an STDataset or its directory.
        source: the encoder (None with ``features_dir``).
        saved: the predictor.
        out: the predictions directory (created).
        features_dir: precomputed features of the sections (``rankbygene extract``)
            instead of an encoder.
        sample_ids: sections to predict (default: all).
        genes: genes to write and map (default: all; maps of the first few).
        settings: batch size, maps.
        overwrite: predict sections whose h5ad exists again.
        device: torch device.

    Returns:
        Sample id → its entry in ``out/predict.json`` (with the per-gene PCC when measured).

    Raises:
        ValueError: neither or both of ``source`` and ``features_dir``; features of
            another encoder or patch size than the predictor's; unknown genes.
    """
    if (source is None) == (features_dir is None):
        raise ValueError("Give exactly one of an encoder (--run/--encoder) or --features FEATS.")
    out = Path(out)
    ds = read_dataset(data) if isinstance(data, str | Path) else data
    samples = [ds[s] for s in (sample_ids or ds.ids)]  # unknown ids raise, naming known ones
    check_pred_out(out)
    out_genes, columns = saved.columns(genes)
    map_genes = map_genes_of(out_genes, genes, settings)
    header = predictor_header(saved, out_genes, map_genes, "sections")
    dev = torch.device(device) if device is not None else default_device()
    network = None
    if source is not None and source.per_tile:
        network = prepare_encoder(source.network, dev, channels_last=EXTRACT.channels_last)
    _warn_in_sample(ds, [s.id for s in samples], saved)
    entries: dict[str, dict[str, Any]] = {}
    for sample in tqdm(samples, desc="predict sections", unit="section"):
        sid = sample.id
        done = h5ad_path(out, sid)
        if done.is_file() and not overwrite:
            check_finished(done, saved.id, out_genes)
            logger.info("section %s: %s exists, skipped (use --overwrite)", sid, done)
            continue
        patch_um = dataset_patch_um(ds, [sid])
        adata = sample.read_adata()
        if features_dir is not None:
            ff = read_features(feature_path(features_dir, sid))
            assert_same_spots(ff, adata.obs_names, sid)
            given = features_identity({sid: ff}, patch_um)
            what = f"--features {features_dir}"
        else:
            given, what = replace(source.identity, patch_um=patch_um), source.label
        check_same_encoder(saved.identity, given, predictor=saved.path, given_what=what)
        if features_dir is not None:
            feats = ff.features
        elif network is not None:
            feats = _embed(sample, network, settings.batch_size, dev)
        else:  # a HisToGene run: each spot in the context of its section
            feats = section_features(source.network, ds, sid)
        values = saved.predict(feats)[:, columns]
        entries[sid] = _write_section(out, ds, sample, adata, values, out_genes, map_genes, saved)
        update_pred_summary(out, header, sid, entries[sid])
        logger.info("section %s: %d spots -> %s", sid, len(values), h5ad_path(out, sid))
    return entries


def _embed(
    sample: Sample, encoder: torch.nn.Module, batch_size: int, device: torch.device
) -> np.ndarray:
    """The section's spot features, exactly as ``extract --data`` computes them."""
    with tqdm(total=sample.n_spots, desc=sample.id, unit="spot", leave=False) as progress:
        feats, _, _ = embed_sample(
            sample,
            encoder,
            batch_size=batch_size,
            num_workers=EXTRACT.num_workers,
            bf16=EXTRACT.bf16,
            channels_last=EXTRACT.channels_last,
            device=device,
            progress=progress,
        )
    return feats


def _warn_in_sample(ds: STDataset, ids: Sequence[str], saved: SavedPredictor) -> None:
    """Sections the predictor was trained on are predicted in-sample: say so."""
    training = saved.card.get("training", {})
    if not training.get("data") or Path(training["data"]) != Path(ds.root).resolve():
        return
    seen = sorted(set(ids) & set(training.get("samples", [])))
    if seen:
        logger.warning(
            "sections %s were training samples of predictor %s: their predictions are "
            "in-sample, not a test of the predictor", ", ".join(seen), saved.path,
        )  # fmt: skip


def _spot_windows(
    sample: Sample, adata: ad.AnnData, patch_um: float | None
) -> tuple[np.ndarray, int | None]:
    """Spot centres (full-resolution px: the counts' ``obsm["spatial"]``, else the patch
    centres) and the side of the window their patches cover."""
    with sample.patches() as store:
        centres = store.coords.astype(np.float64)
        window = store.patch_size_src
    if keys.OBSM_SPATIAL in adata.obsm:
        centres = np.asarray(adata.obsm[keys.OBSM_SPATIAL], dtype=np.float64)
    if window is None and patch_um and sample.pixel_size_um:
        window = window_size_px(patch_um, sample.pixel_size_um)
    return centres, window


def _write_section(
    out: Path,
    ds: STDataset,
    sample: Sample,
    adata: ad.AnnData,
    values: np.ndarray,
    genes: list[str],
    map_genes: list[str],
    saved: SavedPredictor,
) -> dict[str, Any]:
    """Measured expression when known, maps, GeoJSON, then the h5ad; the summary entry."""
    sid = sample.id
    scale = saved.card["scale"]
    measured = bool(np.all(adata.var_names.get_indexer(genes) >= 0))
    target = None
    if measured:
        target = preprocess_expression(
            adata, genes, target_sum=scale["target_sum"], smooth=scale["smooth"], sample_id=sid
        )
    else:
        logger.warning("section %s lacks some predicted genes: no measured layer", sid)
    centres, window = _spot_windows(sample, adata, saved.patch_um)
    obs = adata.obs.copy()
    if sample.pixel_size_um:
        obs[keys.OBS_X_UM] = centres[:, 0] * sample.pixel_size_um
        obs[keys.OBS_Y_UM] = centres[:, 1] * sample.pixel_size_um
    uns = prediction_uns(
        saved,
        kind="section",
        sample_id=sid,
        source=str(sample.st_path),
        pixel_size_um=sample.pixel_size_um,
        spot_diameter_px=spot_diameter_from_metadata(ds.root, sid),
    )
    pred = prediction_adata(values, genes, obs, centres, uns, target=target)
    remove_old_maps(out, sid, map_genes)
    maps = {}
    for gene in map_genes:
        fig = plot_section_map(pred, sid, gene, str(h5ad_path(out, sid)))
        maps[gene] = save_map(fig, map_path(out, sid, gene)).relative_to(out).as_posix()
    if window is not None:
        corners = window_origins(centres, window)
        write_geojson(geojson_path(out, sid), corners, window, genes, values)
    write_h5ad(pred, h5ad_path(out, sid))
    pcc = pearson_per_gene(values, target).tolist() if target is not None else []
    return {
        "kind": "section",
        "source": str(sample.st_path),
        "n_spots": len(values),
        "measured": measured,
        "pcc": dict(zip(genes, pcc, strict=False)),
        "h5ad": h5ad_path(out, sid).name,
        "geojson": geojson_path(out, sid).name if window is not None else None,
        "maps": maps,
    }
