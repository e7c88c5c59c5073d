"""``rankbygene pretrain``: a :class:`PretrainConfig` from ``--config`` and flags, then run it."""

from __future__ import annotations

from pathlib import Path

import typer

from rankbygene import keys
from rankbygene.cli.common import user_errors
from rankbygene.pretraining.config import PretrainConfig
from rankbygene.text import parse_floats, parse_ids
from rankbygene.training.config import JITTER_FIELDS

D = PretrainConfig()  # defaults, shown in --help (defined once, in PretrainConfig)


@user_errors
def pretrain(
    images: Path = typer.Option(
        ..., "--images", help="Dataset directory (its spot patches) or slide(s) (tissue tiles)."
    ),
    encoder: str = typer.Option(
        None, "--encoder", help=f"Encoder (tiny, resnet18, a timm name...) (default: {D.encoder})."
    ),
    out: Path = typer.Option(..., "--out", help="Run directory to create."),
    method: str = typer.Option(None, help=f"dino | simclr (default: {D.method})."),
    weights: str = typer.Option(None, help="Local weights to start from (default: random)."),
    random_init: bool = typer.Option(
        False,
        "--random-init",
        help="Start an encoder worth its pretraining (uni, ctranspath) at random.",
    ),
    samples: str = typer.Option(
        None, help="Comma list of sample (or slide) ids to take tiles from (default: all)."
    ),
    mpp: float = typer.Option(None, help="Slides: µm per level-0 px (default: from the file)."),
    patch_um: float = typer.Option(
        None, help=f"Slides: tile side in µm, the encoder's window (default: {D.patch_um:g})."
    ),
    min_tissue: float = typer.Option(
        None, help=f"Slides: min tissue fraction of a tile (default: {D.min_tissue:g})."
    ),
    max_tiles: int = typer.Option(
        None, help=f"Tiles per slide or sample (default: {D.max_tiles_per_image})."
    ),
    config: Path = typer.Option(None, "--config", help="YAML PretrainConfig; flags override it."),
    epochs: int = typer.Option(None, help=f"Epochs (default: {D.epochs})."),
    batch_size: int = typer.Option(
        None, help=f"Tiles per batch and device (default: {D.batch_size})."
    ),
    lr: float = typer.Option(None, help=f"AdamW learning rate (default: {D.lr:g})."),
    jitter: str = typer.Option(
        None,
        help="Colour jitter strengths B,C,S,H (default: "
        f"{D.jitter_brightness:g},{D.jitter_contrast:g},{D.jitter_saturation:g},{D.jitter_hue:g}).",
    ),
    p_jitter: float = typer.Option(
        None, help=f"Probability of colour jitter (default: {D.p_jitter:g})."
    ),
    p_grayscale: float = typer.Option(
        None, help=f"Probability of grayscale (default: {D.p_grayscale:g})."
    ),
    accelerator: str = typer.Option(None, help=f"auto | cpu | gpu (default: {D.accelerator})."),
    devices: int = typer.Option(None, help=f"Devices, DDP when > 1 (default: {D.devices})."),
    strategy: str = typer.Option(None, help=f"Lightning strategy (default: {D.strategy})."),
    precision: str = typer.Option(
        None, help=f"32 | bf16-mixed | 16-mixed (default: {D.precision})."
    ),
    num_workers: int = typer.Option(
        None, help=f"DataLoader workers making the views (default: {D.num_workers})."
    ),
    seed: int = typer.Option(None, help=f"Random seed (default: {D.seed})."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run in --out from checkpoints/last.ckpt."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the run in --out (its files are deleted)."
    ),
) -> None:
    """Self-supervised pretraining (DINO or SimCLR) of an encoder on tiles of your images.

    The run's encoder/ starts training (`train --weights RUN/encoder/model.safetensors`)
    and is read by `extract --run RUN`. An existing run in --out is refused unless
    --resume or --overwrite is given.
    """
    from rankbygene.configs import load_config
    from rankbygene.pretraining.run import pretrain as run_pretraining

    saved = out / keys.PRETRAIN_CONFIG
    if resume and config is None and saved.is_file():
        config = saved  # flags given now must agree with it (the library checks)
    strengths = parse_floats(jitter, len(JITTER_FIELDS), "--jitter")
    cfg = load_config(
        PretrainConfig,
        config,
        images=str(images),
        out=str(out),
        encoder=encoder,
        method=method,
        weights=weights,
        random_init=random_init or None,
        samples=parse_ids(samples) or None,
        mpp=mpp,
        patch_um=patch_um,
        min_tissue=min_tissue,
        max_tiles_per_image=max_tiles,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        **dict(zip(JITTER_FIELDS, strengths or [None] * len(JITTER_FIELDS), strict=True)),
        p_jitter=p_jitter,
        p_grayscale=p_grayscale,
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        precision=precision,
        num_workers=num_workers,
        seed=seed,
        resume=resume or None,
    )
    typer.echo(f"Pretraining run written to {run_pretraining(cfg, overwrite=overwrite)}")
