"""Spot-feature extraction with a frozen encoder: every patch of every sample → ``FEATS/{id}.h5``.

The encoder is a training run's teacher backbone or any registered encoder (the
image-only baselines). Patches stream from the patch store in batches (optionally
through DataLoader workers, each opening its own HDF5 handle), are normalised by
the encoder's own eval transform and embedded under ``torch.inference_mode``,
optionally in channels-last memory format and bf16 autocast.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from rankbygene import __version__, fileio, keys
from rankbygene.features.io import (
    assert_same_spots,
    feature_path,
    read_features,
    update_summary,
    write_features,
)
from rankbygene.features.settings import EXTRACT
from rankbygene.fileio import atomic_path
from rankbygene.models import weights_sha256

if TYPE_CHECKING:
    from rankbygene.data import PatchStore, Sample, STDataset

logger = logging.getLogger(__name__)

__all__ = [
    "check_existing_features",
    "default_device",
    "embed_sample",
    "extract_features",
    "feature_name",
    "obsm_key",
    "prepare_encoder",
]


class _PatchBatches(Dataset):
    """Batch ``b`` of one sample's patches, normalised for the encoder.

    Indexing by batch (not by patch) keeps each HDF5 read one contiguous hyperslab,
    and lets workers do the uint8 → float resize/normalise in parallel. The patch
    store re-opens its file in each worker process.

    Shape:
        item: (B, 3, S, S) float32.
    """

    def __init__(self, store: PatchStore, batch_size: int, transform: Any) -> None:
        self.store = store
        self.batch_size = batch_size
        self.transform = transform
        self.n = len(store)

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __getitem__(self, b: int) -> torch.Tensor:
        start = b * self.batch_size
        patches = self.store[start : min(start + self.batch_size, self.n)]  # (B, H, W, 3) uint8
        x = torch.from_numpy(np.ascontiguousarray(patches)).permute(0, 3, 1, 2)
        # The permuted view is NHWC in memory; make it plain NCHW so the memory format
        # is decided in one place (the channels_last option), not by accident.
        return self.transform.normalize(x).contiguous()


def feature_name(encoder: Any, source_run: str | Path | None = None) -> str:
    """Name of a feature set: the run directory's name for a trained run, else the encoder's."""
    return Path(source_run).name if source_run is not None else str(encoder.name)


def obsm_key(name: str) -> str:
    """AnnData ``obsm`` key for a feature set (scverse style ``X_<name>``, safe characters)."""
    return "X_" + re.sub(r"[^0-9A-Za-z_.-]+", "_", name)


def default_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def prepare_encoder(
    encoder: torch.nn.Module, device: torch.device, *, channels_last: bool = EXTRACT.channels_last
) -> torch.nn.Module:
    """The encoder ready for inference: eval mode, on ``device``, frozen, optionally NHWC.

    Everything that embeds patches (``extract``, ``predict``) prepares it here, so the
    same encoder gives the same numbers on either path.
    """
    encoder = encoder.eval().to(device)
    for p in encoder.parameters():
        p.requires_grad_(False)
    if channels_last:
        encoder = encoder.to(memory_format=torch.channels_last)
    return encoder


@torch.inference_mode()
def embed_sample(
    sample: Sample,
    encoder: torch.nn.Module,
    *,
    batch_size: int,
    num_workers: int,
    bf16: bool,
    channels_last: bool,
    device: torch.device,
    progress: tqdm,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, coords and barcodes of one sample's spot patches.

    ``encoder`` must come from :func:`prepare_encoder` (with the same ``channels_last``).

    Shape:
        returns (N, D) float32, (N, 2), (N,).
    """
    with sample.patches() as store:
        coords, barcodes = store.coords, store.barcodes
        batches = _PatchBatches(store, batch_size, encoder.transform)
        # batch_size=None: the dataset already yields whole batches.
        loader = DataLoader(batches, batch_size=None, shuffle=False, num_workers=num_workers)
        out = []
        for x in loader:
            x = x.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                feats = encoder(x)
            out.append(feats.float().cpu())
            progress.update(len(x))
    feats = torch.cat(out).numpy() if out else np.zeros((0, encoder.embed_dim), np.float32)
    if not np.isfinite(feats).all():
        logger.warning("sample %s: non-finite features (try without --bf16)", sample.id)
    return feats, coords, barcodes


def check_existing_features(
    path: Path,
    encoder_name: str,
    source_run: str | None,
    barcodes: np.ndarray | None = None,
    sample_id: str = "",
) -> None:
    """Refuse to silently mix: a file kept as done must come from the same encoder and run,
    and (given ``barcodes``) describe the same spots as the dataset, in order.

    Writes are atomic, so a present file is complete; an unreadable one is refused too.
    """
    existing = read_features(path)
    if existing.encoder != encoder_name or existing.source_run != source_run:
        raise ValueError(
            f"{path} holds features of encoder {existing.encoder!r} (run "
            f"{existing.source_run}), not {encoder_name!r} (run {source_run}). Use another "
            "--out directory, or --overwrite to replace them."
        )
    if barcodes is not None:
        assert_same_spots(existing, barcodes, sample_id)


def _write_obsm_copy(
    sample: Sample, out_dir: Path, key: str, feats: np.ndarray, barcodes: np.ndarray
) -> Path:
    """Write a copy of the sample's AnnData with the features in ``obsm[key]``."""
    adata = sample.read_adata()
    assert_same_spots(barcodes, adata.obs_names, sample.id)
    adata.obsm[key] = feats
    path = out_dir / keys.ST_DIR / f"{sample.id}{keys.ST_SUFFIX}"
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp)
    return path


def extract_features(
    dataset: STDataset | str | Path,
    encoder: torch.nn.Module,
    out_dir: str | Path,
    *,
    sample_ids: Sequence[str] | None = None,
    batch_size: int = EXTRACT.batch_size,
    num_workers: int = EXTRACT.num_workers,
    bf16: bool = EXTRACT.bf16,
    channels_last: bool = EXTRACT.channels_last,
    overwrite: bool = False,
    source_run: str | Path | None = None,
    write_obsm: bool = False,
    device: str | torch.device | None = None,
) -> list[Path]:
    """Embed every spot patch of the chosen samples and write ``out_dir/{id}.h5``.

    Args:
        dataset: an STDataset or its directory.
        encoder: a frozen encoder (``create_encoder``/``load_encoder``): ``forward``
            maps normalised (B, 3, S, S) to (B, D); has ``name``, ``embed_dim`` and
            ``transform.normalize``.
        out_dir: features directory (created).
        sample_ids: samples to extract (default: all).
        batch_size: patches per forward pass.
        num_workers: DataLoader worker processes reading and normalising patches.
        bf16: bfloat16 autocast for the forward pass (features stored as float32).
        channels_last: NHWC memory format (faster convolutions on CPU and GPU).
        overwrite: re-extract samples whose file already exists (else skipped).
        source_run: the training run the encoder came from (recorded in attrs).
        write_obsm: also write a copy of each sample's AnnData with the features in
            ``obsm["X_<name>"]`` under ``out_dir/st/`` (the dataset is never modified).
        device: torch device (default: CUDA if available, else CPU).

    Returns:
        The feature file of every requested sample (written or kept).
    """
    from rankbygene.data import read_dataset

    ds = read_dataset(dataset) if isinstance(dataset, str | Path) else dataset
    out_dir = Path(out_dir)
    ids = list(sample_ids) if sample_ids is not None else list(ds.ids)
    samples = [ds[s] for s in ids]  # unknown ids raise, naming the known ones
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
    dev = torch.device(device) if device is not None else default_device()
    run = str(source_run) if source_run is not None else None
    name = feature_name(encoder, source_run)
    enc_name = str(encoder.name)
    transform = encoder.transform.to_dict()

    fileio.remove_stale_temps(out_dir)  # of an extraction that was killed
    todo, paths = [], []
    for sample in samples:
        path = feature_path(out_dir, sample.id)
        paths.append(path)
        if path.is_file() and not overwrite:
            with sample.patches() as store:
                check_existing_features(path, enc_name, run, store.barcodes, sample.id)
            logger.info("sample %s: %s exists, skipped (use --overwrite)", sample.id, path)
        else:
            todo.append(sample)
    if not todo:
        return paths

    digest = weights_sha256(encoder)
    encoder = prepare_encoder(encoder, dev, channels_last=channels_last)
    n_total = sum(s.n_spots for s in todo)
    written: dict[str, Any] = {}
    with tqdm(total=n_total, desc=f"extract {name}", unit="patch") as progress:
        for sample in todo:
            feats, coords, barcodes = embed_sample(
                sample,
                encoder,
                batch_size=batch_size,
                num_workers=num_workers,
                bf16=bf16,
                channels_last=channels_last,
                device=dev,
                progress=progress,
            )
            attrs = {
                keys.FEAT_ATTR_ENCODER: enc_name,
                keys.FEAT_ATTR_SOURCE_RUN: run,
                keys.FEAT_ATTR_TRANSFORM: transform,
                keys.FEAT_ATTR_WEIGHTS_SHA256: digest,
                "sample_id": sample.id,
                "embed_dim": int(feats.shape[1]),
                "rankbygene_version": __version__,
            }
            path = write_features(feature_path(out_dir, sample.id), feats, coords, barcodes, attrs)
            entry = {"n_spots": len(feats), "dim": int(feats.shape[1]), "file": path.name}
            if write_obsm:
                obsm_path = _write_obsm_copy(sample, out_dir, obsm_key(name), feats, barcodes)
                entry["adata"] = str(obsm_path.relative_to(out_dir))
            written[sample.id] = entry
            logger.info("sample %s: %d spots -> %s", sample.id, len(feats), path)
    header = {
        "encoder": enc_name,
        "name": name,
        "source_run": run,
        "embed_dim": int(encoder.embed_dim),
        "transform": transform,
        keys.FEAT_ATTR_WEIGHTS_SHA256: digest,
        "data": str(Path(ds.root).resolve()),  # the report finds the dataset by it
        "obsm_key": obsm_key(name),
    }
    update_summary(out_dir, header, written)
    return paths
