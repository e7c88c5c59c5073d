"""Spot features of a training run: the extractor its method declares.

An image-encoder run embeds each spot's patch with its downstream backbone
(:func:`rankbygene.features.extract.extract_features`). A section-transformer run
(HisToGene) has no per-spot encoder: a spot's features are the transformer's output in
the context of its whole section, computed here section by section.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rankbygene import __version__, keys
from rankbygene.data import STDataset, read_dataset
from rankbygene.features.extract import check_existing_features, extract_features
from rankbygene.features.io import feature_path, update_summary, write_features
from rankbygene.methods.histogene.data import load_sections
from rankbygene.models import weights_sha256
from rankbygene.training import TrainedRun, load_run

logger = logging.getLogger(__name__)

__all__ = ["extract_run_features", "extract_section_features", "section_features"]

SECTION_ENCODER = "histogene"


def extract_run_features(
    run_dir: str | Path,
    dataset: STDataset | str | Path,
    out_dir: str | Path,
    *,
    sample_ids: Sequence[str] | None = None,
    overwrite: bool = False,
    **extract_options: Any,
) -> list[Path]:
    """Features of every spot of the chosen samples from a finished run → ``out_dir/{id}.h5``.

    Args:
        run_dir: a finished training run (checked by :func:`load_run`).
        dataset: an STDataset or its directory.
        out_dir: features directory (created).
        sample_ids: samples to extract (default: all).
        overwrite: re-extract samples whose file exists (else kept, after checking
            they come from the same run).
        **extract_options: options of :func:`extract_features` (batch size, workers,
            bf16, channels_last, write_obsm, device) for image-encoder runs.

    Returns:
        The feature file of every requested sample.
    """
    run = load_run(run_dir)
    ds = read_dataset(dataset) if isinstance(dataset, str | Path) else dataset
    if run.method.network == "section-transformer":
        if extract_options:
            logger.info("%s run: options %s do not apply", run.method.name, sorted(extract_options))
        return extract_section_features(
            run, ds, out_dir, sample_ids=sample_ids, overwrite=overwrite
        )
    return extract_features(
        ds,
        run.encoder(),
        out_dir,
        sample_ids=sample_ids,
        overwrite=overwrite,
        source_run=run.path,
        **extract_options,
    )


@torch.inference_mode()
def section_features(net: torch.nn.Module, dataset: STDataset, sample_id: str) -> np.ndarray:
    """Each spot's HisToGene transformer output in the context of its whole section.

    Shape:
        returns (N, dim) float32, N = the sample's spots in patch-store order.
    """
    (section,) = load_sections(dataset, [sample_id], None, n_pos=net.n_pos)
    return net.embed(section.patches, section.positions).numpy()


@torch.inference_mode()
def extract_section_features(
    run: TrainedRun,
    dataset: STDataset,
    out_dir: str | Path,
    *,
    sample_ids: Sequence[str] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Each spot's HisToGene transformer output in the context of its section.

    Shape:
        each ``{id}.h5`` holds (N_id, dim) features, N_id = the sample's spots.
    """
    net = run.histogene()
    out_dir = Path(out_dir)
    ids = list(sample_ids) if sample_ids is not None else list(dataset.ids)
    source = str(run.path)
    digest = weights_sha256(net)
    written, paths = {}, []
    for sid in ids:
        path = feature_path(out_dir, sid)
        paths.append(path)
        if path.is_file() and not overwrite:
            with dataset[sid].patches() as store:
                check_existing_features(path, SECTION_ENCODER, source, store.barcodes, sid)
            logger.info("sample %s: %s exists, skipped (use --overwrite)", sid, path)
            continue
        feats = section_features(net, dataset, sid)
        with dataset[sid].patches() as store:
            coords, barcodes = store.coords, store.barcodes
        attrs = {
            keys.FEAT_ATTR_ENCODER: SECTION_ENCODER,
            keys.FEAT_ATTR_SOURCE_RUN: source,
            keys.FEAT_ATTR_TRANSFORM: net.transform.to_dict(),
            keys.FEAT_ATTR_WEIGHTS_SHA256: digest,
            "sample_id": sid,
            "embed_dim": int(feats.shape[1]),
            "rankbygene_version": __version__,
        }
        write_features(path, feats, coords, barcodes, attrs)
        written[sid] = {"n_spots": len(feats), "dim": int(feats.shape[1]), "file": path.name}
        logger.info("sample %s: %d spots -> %s", sid, len(feats), path)
    header = {
        "encoder": SECTION_ENCODER,
        "name": run.path.name,
        "source_run": source,
        "embed_dim": int(net.norm.normalized_shape[0]),
        "transform": net.transform.to_dict(),
        keys.FEAT_ATTR_WEIGHTS_SHA256: digest,
        "data": str(Path(dataset.root).resolve()),
    }
    update_summary(out_dir, header, written)
    return paths
