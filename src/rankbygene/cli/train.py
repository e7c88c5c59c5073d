"""``rankbygene train``: a :class:`TrainConfig` from ``--config`` and flags, then ``train``."""

from __future__ import annotations

from pathlib import Path

import typer

from rankbygene import keys
from rankbygene.cli.common import one_of, user_errors, with_default
from rankbygene.methods import list_methods
from rankbygene.text import parse_floats, parse_ids
from rankbygene.training.config import JITTER_FIELDS, TrainConfig

D = TrainConfig()  # defaults, shown in --help (defined once, in TrainConfig)


@user_errors
def train(
    data: Path = typer.Option(..., "--data", help="Dataset directory (HEST-1k layout)."),
    out: Path = typer.Option(..., "--out", help="Run directory to create."),
    method: str = typer.Option(None, help=with_default(one_of(list_methods()), D.method)),
    encoder: str = typer.Option(
        None, help=f"Encoder (tiny, uni, a timm name...) (default: {D.encoder})."
    ),
    weights: str = typer.Option(None, help="Local weights file for the encoder, or 'hub'."),
    random_init: bool = typer.Option(
        False,
        "--random-init",
        help="Train an encoder worth its pretraining (uni, ctranspath) from random weights.",
    ),
    train_samples: str = typer.Option(
        None,
        help="Comma list of sample ids for training (default: all); unless --val-split none, "
        "some of them are held out for validation.",
    ),
    val_samples: str = typer.Option(
        None, help="Comma list of validation sample ids (taken out of the training ids)."
    ),
    val_split: str = typer.Option(
        None,
        help=with_default(
            "Validation hold-out when --val-samples is not given: patient (one patient's "
            "samples) | section (one sample) | none (train on every training sample)",
            D.val_split,
        ),
    ),
    panel: str = typer.Option(
        None, help=f"top250 | hvg50 | topN | gene-list file (default: {D.panel})."
    ),
    gene_list: str = typer.Option(None, help="Gene-list file (with --panel topN: top N within)."),
    config: Path = typer.Option(None, "--config", help="YAML TrainConfig; flags override it."),
    epochs: int = typer.Option(None, help=f"Epochs (default: {D.epochs}, the paper's)."),
    batch_size: int = typer.Option(
        None, help=f"Spots per batch and device (default: {D.batch_size})."
    ),
    lambda_rank: float = typer.Option(
        None, help=f"Weight λ1 of the ranking loss (default: {D.lambda_rank})."
    ),
    lambda_dist: float = typer.Option(
        None, help=f"Weight λ2 of the distillation loss (default: {D.lambda_dist})."
    ),
    freeze_backbone: bool = typer.Option(None, help="Train the heads only (cached features)."),
    jitter: str = typer.Option(
        None,
        help="Strong view's colour jitter strengths B,C,S,H (brightness, contrast, saturation, "
        f"hue) (default: {D.jitter_brightness:g},{D.jitter_contrast:g},"
        f"{D.jitter_saturation:g},{D.jitter_hue:g}, the paper's).",
    ),
    p_jitter: float = typer.Option(
        None, help=f"Strong view: probability of colour jitter (default: {D.p_jitter:g})."
    ),
    p_grayscale: float = typer.Option(
        None, help=f"Strong view: probability of grayscale (default: {D.p_grayscale:g})."
    ),
    precision: str = typer.Option(
        None, help=f"32 | bf16-mixed | 16-mixed (default: {D.precision})."
    ),
    accelerator: str = typer.Option(None, help=f"auto | cpu | gpu (default: {D.accelerator})."),
    devices: int = typer.Option(None, help=f"Devices, DDP when > 1 (default: {D.devices})."),
    strategy: str = typer.Option(None, help=f"Lightning strategy (default: {D.strategy})."),
    num_workers: int = typer.Option(None, help=f"DataLoader workers (default: {D.num_workers})."),
    seed: int = typer.Option(None, help=f"Random seed (default: {D.seed})."),
    checkpoint_every: int = typer.Option(
        None,
        help="Also keep checkpoints/epochNNN.ckpt every N epochs "
        f"(default: {D.checkpoint_every}: only last.ckpt).",
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run in --out from checkpoints/last.ckpt, with its saved config.yaml.",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the run in --out (its files are deleted)."
    ),
) -> None:
    """Train an image encoder guided by gene expression; writes a run directory.

    An existing run in --out is refused unless --resume or --overwrite is given.
    """
    from rankbygene.configs import load_config
    from rankbygene.training.run import train as run_training

    strengths = parse_floats(jitter, len(JITTER_FIELDS), "--jitter")
    saved = out / keys.RUN_CONFIG
    if resume and config is None and saved.is_file():
        config = saved  # flags given now must agree with it (the library checks)
    cfg = load_config(
        TrainConfig,
        config,
        data=str(data),
        out=str(out),
        method=method,
        encoder=encoder,
        weights=weights,
        random_init=random_init or None,
        train_samples=parse_ids(train_samples) or None,
        val_samples=parse_ids(val_samples) or None,
        val_split=val_split,
        panel=panel,
        gene_list=gene_list,
        epochs=epochs,
        batch_size=batch_size,
        lambda_rank=lambda_rank,
        lambda_dist=lambda_dist,
        freeze_backbone=freeze_backbone,
        **dict(zip(JITTER_FIELDS, strengths or [None] * len(JITTER_FIELDS), strict=True)),
        p_jitter=p_jitter,
        p_grayscale=p_grayscale,
        precision=precision,
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        num_workers=num_workers,
        seed=seed,
        checkpoint_every=checkpoint_every,
        resume=resume or None,
    )
    typer.echo(f"Run written to {run_training(cfg, overwrite=overwrite)}")
