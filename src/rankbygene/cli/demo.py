"""``rankbygene demo``: train and evaluate every method on the synthetic dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from rankbygene.demo import DemoConfig, run_demo


def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", help="Output directory."),
    quick: bool = typer.Option(False, "--quick", help="Smaller data, fewer epochs (<1 min)."),
    epochs: int = typer.Option(None, help="Training epochs per method."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Train frozen / HEST-FT / BLEEP / RankByGene on synthetic data and compare them."""
    config = DemoConfig(out=out, quick=quick, seed=seed, epochs=epochs)
    results = run_demo(config)
    typer.echo((out / "results.md").read_text())
    typer.echo(f"Results: {out / 'results.json'}\nReport: {out / 'report.html'}")
    typer.echo(f"Finished in {results['seconds']:.0f} s.")
