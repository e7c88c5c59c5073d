"""``train(config)``: one training run from a dataset directory to a run directory.

The method's declaration decides the networks: an image encoder trained on spot
batches (:class:`AlignmentModule`), or HisToGene's section transformer (one section per
step, :mod:`rankbygene.methods.histogene`). What the run directory holds, and how it is
written, is :mod:`rankbygene.training.artifacts`.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import lightning as L
import torch

from rankbygene import keys
from rankbygene.data import STDataset, read_dataset
from rankbygene.fileio import remove_stale_temps
from rankbygene.methods import get_method
from rankbygene.methods.histogene.module import HisToGeneModule, build_section_training
from rankbygene.models import check_weights_given
from rankbygene.models.checkpoint import load_torch_file
from rankbygene.training.artifacts import (
    check_resume_config,
    check_resume_panel,
    check_run_directory,
    export_encoder_run,
    export_histogene_run,
    remove_run,
    write_run_start,
)
from rankbygene.training.callbacks import EpochMetricsCSV, checkpoint_callbacks
from rankbygene.training.checkpoint_io import AtomicCheckpointIO
from rankbygene.training.config import TrainConfig, check_run_basics
from rankbygene.training.data import (
    SpotDataModule,
    SpotTensorDataset,
    build_spot_table,
    choose_validation,
    describe_split,
    select_training_panel,
)
from rankbygene.training.module import AlignmentModule

logger = logging.getLogger(__name__)


class _DropLightningAdverts(logging.Filter):
    """Drop Lightning's product tips ("💡 Tip: ...") from every run's console output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("💡")


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropLightningAdverts())


def _one_console_handler() -> None:
    """Lightning gives the ``lightning`` logger a console handler of its own; when the
    application already logs to the console through the root logger (the CLI does),
    every Lightning line would print twice, so Lightning's own handler goes."""
    if not logging.getLogger().handlers:
        return  # nothing else prints: keep Lightning's handler
    lightning = logging.getLogger("lightning")
    for handler in list(lightning.handlers):
        if type(handler) is logging.StreamHandler:
            lightning.removeHandler(handler)


_one_console_handler()


def resolve_config(config: TrainConfig) -> TrainConfig:
    """Apply the method's defaults to unset fields and validate the rest."""
    method = get_method(config.method)
    values = {k: v for k, v in method.defaults.items() if getattr(config, k) is None}
    config = config.updated(**values)
    if not config.data:
        raise ValueError("No dataset given: pass --data DIR (a HEST-layout directory).")
    check_run_basics(config.out, config.epochs, config.checkpoint_every)
    if config.batch_size < 3:
        raise ValueError(
            f"batch_size must be ≥ 3 (a triplet needs 3 spots), got {config.batch_size}."
        )
    return config


def _cache_features(module: AlignmentModule, ds: SpotTensorDataset, batch: int) -> torch.Tensor:
    """Backbone features of every spot, once (frozen backbone). Shape: (N, embed_dim)."""
    feats = []
    module.backbone.eval()
    with torch.inference_mode():
        for start in range(0, len(ds), batch):
            idx = list(range(start, min(start + batch, len(ds))))
            images = ds.__getitems__(idx)["image"]
            feats.append(module.backbone_features(module.backbone, images))
    return torch.cat(feats).clone()


def _build_spot_training(
    config: TrainConfig,
    dataset: STDataset,
    fit_ids: list[str],
    val_ids: list[str],
    genes: list[str],
) -> tuple[AlignmentModule, SpotDataModule, int]:
    """Module, spot-batch data module and number of training spots of an encoder run."""
    common = {"target_sum": config.target_sum, "smooth": config.smooth, "preload": config.preload}
    train_table = build_spot_table(dataset, fit_ids, genes, **common)
    if len(train_table) < config.batch_size:
        raise ValueError(
            f"batch size {config.batch_size} is larger than the {len(train_table)} training "
            f"spots of {fit_ids}; pass --batch-size {len(train_table)} or fewer."
        )
    val_table = build_spot_table(dataset, val_ids, genes, **common) if val_ids else None
    module = AlignmentModule(config, n_genes=len(genes))
    train_ds = SpotTensorDataset(train_table, dataset)
    val_ds = SpotTensorDataset(val_table, dataset) if val_table is not None else None
    if config.freeze_backbone and config.cache_frozen_features:
        # Frozen backbone: its features never change, so compute them once.
        train_ds = SpotTensorDataset(train_table, features=_cache_features(module, train_ds, 128))
        if val_ds is not None and val_table is not None:
            val_ds = SpotTensorDataset(val_table, features=_cache_features(module, val_ds, 128))
    datamodule = SpotDataModule(
        train_ds, val_ds, config.batch_size, config.num_workers, config.seed
    )
    return module, datamodule, len(train_table)


def train(
    config: TrainConfig, callbacks: list[L.Callback] | None = None, *, overwrite: bool = False
) -> Path:
    """Train one method and export its encoder. Returns the run directory.

    An existing run in ``config.out`` is continued with ``config.resume`` (with the
    same settings) or replaced with ``overwrite``; otherwise it is refused
    (:func:`~rankbygene.training.artifacts.check_run_directory`).

    Args:
        config: The run's settings; method defaults fill unset fields.
        callbacks: Extra Lightning callbacks (early stopping, loggers' hooks...).
        overwrite: replace the run in ``config.out`` (its files are deleted once the
            new run's inputs have been checked).

    Raises:
        ValueError: empty training split, batch larger than the data, a panel or
            settings that differ from the run being resumed, unknown samples, an
            existing output without ``resume``/``overwrite``, an unsafe checkpoint.
        OSError: unreadable inputs, a truncated checkpoint, a full disk.
    """
    config = resolve_config(config)
    method = get_method(config.method)
    whole_section = method.network == "section-transformer"
    if not whole_section:  # before any work: the model is built last, and may be a ViT-L
        check_weights_given(config.encoder, config.weights, config.random_init)
    L.seed_everything(config.seed, workers=True, verbose=False)
    out = Path(config.out)
    continues = check_run_directory(out, resume=config.resume, overwrite=overwrite)
    dataset: STDataset = read_dataset(config.data)
    train_ids = list(config.train_samples or dataset.ids)
    unknown = sorted(set(train_ids) - set(dataset.ids))
    if unknown:
        raise ValueError(
            f"Training sample(s) {unknown} are not in {config.data}; known: {dataset.ids}."
        )
    fit_ids, val_ids = choose_validation(
        dataset, train_ids, config.val_samples, config.val_split, config.seed
    )
    logger.info(
        describe_split(
            fit_ids, val_ids, chosen=bool(config.val_samples), val_split=config.val_split
        )
    )
    if not fit_ids:
        raise ValueError(
            "The training split is empty after holding out validation samples "
            f"{val_ids}; pass more --train-samples or --val-split none."
        )
    genes = select_training_panel(
        dataset, fit_ids, config.panel, config.gene_list, target_sum=config.target_sum
    )
    last_ckpt = out / keys.RUN_CHECKPOINTS / keys.RUN_LAST_CKPT
    as_run = config.updated(train_samples=fit_ids, val_samples=val_ids)  # what config.yaml holds
    restart = config.resume and not continues
    if continues:
        check_resume_panel(out, genes)
        check_resume_config(out, as_run)
        load_torch_file(last_ckpt, mmap=True)  # refuse an unsafe or truncated file up front
    elif restart and (out / keys.RUN_CONFIG).is_file():
        check_resume_config(out, as_run)
        logger.warning(
            "%s: nothing to resume (no %s/%s: the run stopped before its first checkpoint); "
            "training it from scratch.",
            out,
            keys.RUN_CHECKPOINTS,
            keys.RUN_LAST_CKPT,
        )
    elif restart:
        logger.warning("%s: nothing to resume (no run there yet); training from scratch.", out)

    build = build_section_training if whole_section else _build_spot_training
    module, datamodule, n_train = build(config, dataset, fit_ids, val_ids, genes)

    if overwrite or restart:
        remove_run(out)  # the new run's inputs are checked: the old run can go
    out.mkdir(parents=True, exist_ok=True)
    for directory in (out, out / keys.RUN_CHECKPOINTS):
        remove_stale_temps(directory)  # of a killed run's interrupted writes
    if not continues:
        write_run_start(out, as_run, genes)
    logger.info(
        "Training %s with %s on %d spots (%s), validating on %s, %d genes.",
        config.method,
        "its own network" if whole_section else config.encoder,
        n_train,
        ",".join(fit_ids),
        ",".join(val_ids) or "nothing",
        len(genes),
    )
    checkpoints = checkpoint_callbacks(out / keys.RUN_CHECKPOINTS, config.checkpoint_every)
    trainer = L.Trainer(
        max_epochs=config.epochs,
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        precision=config.precision,
        callbacks=[*checkpoints, EpochMetricsCSV(out / keys.RUN_METRICS), *(callbacks or [])],
        plugins=[AtomicCheckpointIO()],
        logger=False,
        num_sanity_val_steps=0,
        # Lightning announces an explicit limit_val_batches=1.0; say only "none" (0).
        **({} if val_ids else {"limit_val_batches": 0}),
        enable_model_summary=False,
        log_every_n_steps=1,
        default_root_dir=out,
    )
    ckpt_path = last_ckpt if continues else None
    with warnings.catch_warnings():
        # The EMA teacher is kept in eval mode by design (BN statistics come from the EMA).
        warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")
        # Lightning's own pytree helper trips a torch deprecation; nothing a user can act on.
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
        if continues:  # resuming writes into the existing checkpoint directory on purpose
            warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* not empty.*")
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    if trainer.is_global_zero:
        if isinstance(module, HisToGeneModule):
            export_histogene_run(out, module.net, module.settings, genes)
        else:
            export_encoder_run(
                out,
                method,
                module.downstream_backbone(),
                (module.teacher or module.student).head,
                module.gene_encoder,
                config.proj_dim,
                genes,
            )
    logger.info("Run written to %s", out)
    return out
