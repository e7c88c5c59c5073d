"""``rankbygene experiment ...``: multi-run experiments (her2st)."""

from __future__ import annotations

from pathlib import Path

import typer

from rankbygene.cli.common import parse_ids
from rankbygene.experiments.her2st import Her2stExperimentConfig, run_her2st_experiment

app = typer.Typer(no_args_is_help=True, help="Multi-run experiments.")


@app.command("her2st")
def her2st(
    root: Path = typer.Option(..., "--root", help="her2st folder (data/ST-cnts, ...)."),
    sections: str = typer.Option("C2,C3,C4,C5,C6", help="Comma list of section ids."),
    out: Path = typer.Option(..., "--out", help="Output directory."),
    gene_list: Path = typer.Option(None, help="Gene-list file evaluated as a second panel."),
    encoder: str = typer.Option("tiny", help="Encoder name."),
    weights: str = typer.Option(None, help="Initial encoder weights (local file)."),
    patch_px: int = typer.Option(64, help="Stored patch size of the 112 µm window."),
    epochs: int = typer.Option(8, help="Training epochs per run."),
    probe_epochs: int = typer.Option(20, help="MLP probe epochs (paper: 20)."),
    ablation: bool = typer.Option(True, help="Also run λ1 ∈ {0,5} × λ2 ∈ {0,1}."),
    folds: int = typer.Option(None, help="Run only the first N outer folds."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Train every method (and the loss ablation) on her2st sections; compare gene prediction."""
    config = Her2stExperimentConfig(
        root=root,
        sections=parse_ids(sections) or [],
        out=out,
        gene_list=gene_list,
        encoder=encoder,
        weights=weights,
        patch_px=patch_px,
        epochs=epochs,
        probe_epochs=probe_epochs,
        ablation=ablation,
        folds=folds,
        seed=seed,
    )
    try:
        results = run_her2st_experiment(config)
    except (ValueError, FileNotFoundError) as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from err
    typer.echo((out / "results.md").read_text())
    typer.echo(f"Results: {out / 'results.json'} ({results['seconds']:.0f} s)")
