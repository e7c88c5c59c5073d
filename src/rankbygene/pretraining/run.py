"""``pretrain(config)``: self-supervised pretraining of an encoder on tiles of the user's images.

On Lightning, as :func:`rankbygene.training.train`: checkpoints every
``checkpoint_every`` epochs (atomically) and ``last.ckpt``, ``--resume`` with the saved
settings, ``metrics.csv`` (loss, EMA momentum, tiles/s), any number of devices. The
existing-output rule is the training runs' (:func:`check_run_directory`).

A resumed run continues from the checkpoint's networks, teacher, DINO centre and
optimiser; its views are drawn by lightly's transforms from the global random state,
so unlike ``train`` it is not bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from rankbygene import keys
from rankbygene.fileio import remove_stale_temps
from rankbygene.models import ColourAugment
from rankbygene.models.checkpoint import load_torch_file
from rankbygene.pretraining.artifacts import (
    PRETRAIN_FILES,
    export_pretrained_encoder,
    read_tile_counts,
    write_pretrain_start,
)
from rankbygene.pretraining.config import PretrainConfig
from rankbygene.pretraining.module import SelfSupervisedModule
from rankbygene.pretraining.tiles import collect_tiles
from rankbygene.pretraining.views import TileViews, view_transform
from rankbygene.training.artifacts import check_run_directory, remove_run
from rankbygene.training.callbacks import EpochMetricsCSV, checkpoint_callbacks
from rankbygene.training.checkpoint_io import AtomicCheckpointIO
from rankbygene.training.config import colour_kwargs

logger = logging.getLogger(__name__)

__all__ = ["pretrain"]

#: Settings that say where and how a run executes: a resumed run may change them.
EXECUTION_FIELDS = frozenset(
    {"images", "out", "resume", "accelerator", "devices", "num_nodes", "strategy", "num_workers"}
)


def _check_resume(out: Path, config: PretrainConfig, tile_counts: dict[str, int]) -> None:
    """Refuse to resume with other settings or other tiles than the saved run's."""
    saved = PretrainConfig.from_yaml(out / keys.PRETRAIN_CONFIG).to_dict()
    given = config.to_dict()
    diffs = [
        f"{k} is {saved[k]!r} in the run but {given[k]!r} now"
        for k in saved
        if k not in EXECUTION_FIELDS and saved[k] != given[k]
    ]
    if read_tile_counts(out) != tile_counts:
        diffs.append("the images now give other tiles")
    if diffs:
        raise ValueError(
            f"{out / keys.PRETRAIN_CONFIG}: --resume continues the run with its saved "
            "settings, but " + "; ".join(diffs) + ". Drop those flags, or start a new run "
            "with --overwrite or another --out."
        )


def _views_batch_size(batch: list) -> int:
    return int(batch[0].shape[0])


def pretrain(
    config: PretrainConfig, callbacks: list[L.Callback] | None = None, *, overwrite: bool = False
) -> Path:
    """Pretrain ``config.encoder`` on tiles of ``config.images``; export ``encoder/``.

    Args:
        config: the run's settings.
        callbacks: extra Lightning callbacks.
        overwrite: replace the run in ``config.out``.

    Returns:
        The run directory.

    Raises:
        ValueError: bad settings, unknown samples, no tissue, an existing output without
            ``resume``/``overwrite``, resuming with other settings.
        OSError: unreadable images or checkpoint, a full disk.
    """
    config = config.check()
    L.seed_everything(config.seed, workers=True, verbose=False)
    out = Path(config.out)
    continues = check_run_directory(
        out,
        resume=config.resume,
        overwrite=overwrite,
        marker=keys.PRETRAIN_CONFIG,
        finished=f"{keys.RUN_ENCODER_DIR}/{keys.ENCODER_CARD}",
        kind="pretraining",
    )
    # the networks first: bad --weights fail before any image is read
    module = SelfSupervisedModule(config)
    transform = module.encoder.transform  # the views' size and normalisation
    tiles = collect_tiles(
        config.images,
        transform.input_size,
        samples=config.samples,
        mpp=config.mpp,
        patch_um=config.patch_um,
        min_tissue=config.min_tissue,
        max_tiles_per_image=config.max_tiles_per_image,
        seed=config.seed,
    )
    if len(tiles) < config.batch_size:
        raise ValueError(
            f"batch size {config.batch_size} is larger than the {len(tiles)} tiles of "
            f"{config.images}; pass --batch-size {len(tiles)} or fewer."
        )
    last_ckpt = out / keys.RUN_CHECKPOINTS / keys.RUN_LAST_CKPT
    restart = config.resume and not continues
    if continues:
        _check_resume(out, config, tiles.counts())
        load_torch_file(last_ckpt, mmap=True)  # refuse an unsafe or truncated file up front
    elif restart and (out / keys.PRETRAIN_CONFIG).is_file():
        _check_resume(out, config, tiles.counts())
        logger.warning(
            "%s: nothing to resume (no %s/%s: the run stopped before its first checkpoint); "
            "pretraining it from scratch.",
            out,
            keys.RUN_CHECKPOINTS,
            keys.RUN_LAST_CKPT,
        )
    elif restart:
        logger.warning("%s: nothing to resume (no run there yet); pretraining from scratch.", out)
    views = view_transform(
        config.method,
        transform,
        ColourAugment(**colour_kwargs(config)),
        min_scale=config.min_scale,
        n_local_views=config.n_local_views,
        local_crop_px=config.local_crop_px,
    )
    loader = DataLoader(
        TileViews(tiles.images, views),
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=True,  # BatchNorm and the contrast need full batches
        num_workers=config.num_workers,
        persistent_workers=config.num_workers > 0,
    )

    if overwrite or restart:
        remove_run(out, PRETRAIN_FILES)
    out.mkdir(parents=True, exist_ok=True)
    for directory in (out, out / keys.RUN_CHECKPOINTS):
        remove_stale_temps(directory)
    if not continues:
        write_pretrain_start(out, config, tiles.counts())
    logger.info(
        "Pretraining %s with %s on %d tiles of %s (%s).",
        config.encoder, config.method, len(tiles), config.images,
        ", ".join(f"{k}: {v}" for k, v in tiles.counts().items()),
    )  # fmt: skip
    checkpoints = checkpoint_callbacks(out / keys.RUN_CHECKPOINTS, config.checkpoint_every)
    metrics = EpochMetricsCSV(out / keys.RUN_METRICS, count=_views_batch_size, unit="tiles")
    trainer = L.Trainer(
        max_epochs=config.epochs,
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        precision=config.precision,
        callbacks=[*checkpoints, metrics, *(callbacks or [])],
        plugins=[AtomicCheckpointIO()],
        logger=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        default_root_dir=out,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
        if continues:
            warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* not empty.*")
        trainer.fit(
            module,
            train_dataloaders=loader,
            ckpt_path=last_ckpt if continues else None,
            weights_only=True,
        )
    if trainer.is_global_zero:
        export_pretrained_encoder(out, module.downstream_encoder(), config)
    logger.info("Pretraining run written to %s", out)
    return out
