"""``rankbygene train``: builds a :class:`TrainConfig` and calls :func:`train`."""

from __future__ import annotations

from pathlib import Path

import typer

from rankbygene.cli.common import parse_ids
from rankbygene.training import TrainConfig
from rankbygene.training import train as run_training


def train(
    data: Path = typer.Option(..., "--data", help="Dataset directory (HEST-1k layout)."),
    out: Path = typer.Option(..., "--out", help="Run directory to create."),
    method: str = typer.Option(None, help="rankbygene | hest-ft | bleep | stnet [rankbygene]"),
    encoder: str = typer.Option(None, help="Encoder name (tiny, uni, resnet50-trunc, timm name)."),
    weights: str = typer.Option(None, help="Local weights file for the encoder, or 'hub'."),
    train_samples: str = typer.Option(None, help="Comma list of training sample ids."),
    val_samples: str = typer.Option(None, help="Comma list of validation sample ids."),
    val_split: str = typer.Option(None, help="patient | section | none (automatic hold-out)."),
    panel: str = typer.Option(None, help="top250 | hvg50 | topN | gene-list file."),
    gene_list: str = typer.Option(None, help="Gene-list file (with --panel topN: top N within)."),
    config: Path = typer.Option(None, "--config", help="YAML config; flags override it."),
    epochs: int = typer.Option(None, help="Epochs [default: 100, the paper's]."),
    batch_size: int = typer.Option(None, help="Spots per batch and device [default: 64]."),
    lambda_rank: float = typer.Option(None, help="Weight of the ranking loss λ1 [5]."),
    lambda_dist: float = typer.Option(None, help="Weight of the distillation loss λ2 [1]."),
    freeze_backbone: bool = typer.Option(None, help="Train the heads only (cached features)."),
    precision: str = typer.Option(None, help="32 | bf16-mixed | 16-mixed."),
    accelerator: str = typer.Option(None, help="auto | cpu | gpu."),
    devices: int = typer.Option(None, help="Devices (DDP when > 1)."),
    strategy: str = typer.Option(None, help="Lightning strategy (auto, ddp, ddp_spawn)."),
    num_workers: int = typer.Option(None, help="DataLoader workers."),
    seed: int = typer.Option(None, help="Random seed [0]."),
    resume: bool = typer.Option(False, "--resume", help="Continue from checkpoints/last.ckpt."),
) -> None:
    """Train an image encoder guided by gene expression; writes a run directory."""
    base = TrainConfig.from_yaml(config) if config else TrainConfig()
    cfg = base.updated(
        data=str(data),
        out=str(out),
        method=method,
        encoder=encoder,
        weights=weights,
        train_samples=parse_ids(train_samples),
        val_samples=parse_ids(val_samples),
        val_split=val_split,
        panel=panel,
        gene_list=gene_list,
        epochs=epochs,
        batch_size=batch_size,
        lambda_rank=lambda_rank,
        lambda_dist=lambda_dist,
        freeze_backbone=freeze_backbone,
        precision=precision,
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        num_workers=num_workers,
        seed=seed,
        resume=resume or None,
    )
    try:
        run_dir = run_training(cfg)
    except (ValueError, FileNotFoundError) as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from err
    typer.echo(f"Run written to {run_dir}")
