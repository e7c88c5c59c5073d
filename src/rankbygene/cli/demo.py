"""``rankbygene demo``: train and evaluate every method on the synthetic dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from rankbygene import keys
from rankbygene.cli.common import user_errors
from rankbygene.experiments.settings import FULL_EPOCHS, QUICK_EPOCHS, DemoConfig

D = DemoConfig()
HELP = (
    f"Train every compared method ({', '.join(D.methods)}) on synthetic data from one "
    "initialisation of the encoder and compare their features, and their own predictors, "
    "for gene-expression prediction on a held-out patient."
)


@user_errors
def demo(
    out: Path = typer.Option(D.out, "--out", help="Output directory."),
    quick: bool = typer.Option(False, "--quick", help="Smaller data, fewer epochs (~1 min)."),
    epochs: int = typer.Option(
        None,
        help=f"Training epochs per method (default: {FULL_EPOCHS}; {QUICK_EPOCHS} with --quick).",
    ),
    seed: int = typer.Option(D.seed, help="Random seed."),
    threads: int = typer.Option(
        D.threads, help="torch threads (fixed: the numbers depend on the thread count)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Start afresh in an --out holding a demo of other settings."
    ),
) -> None:
    """Train and compare every method on synthetic data (help text: ``HELP``)."""
    from rankbygene.experiments.demo import run_demo

    config = DemoConfig(out=out, quick=quick, seed=seed, epochs=epochs, threads=threads)
    results = run_demo(config, overwrite=overwrite)
    typer.echo((out / keys.RESULTS_MD).read_text())
    typer.echo(f"Results: {out / keys.RESULTS_JSON}\nReport: {out / keys.REPORT_HTML}")
    typer.echo(f"Finished in {results['seconds']:.0f} s.")
