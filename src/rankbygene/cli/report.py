"""``rankbygene report DIR``: one self-contained HTML page of the results under DIR."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    directory: Path = typer.Argument(..., help="Results directory to scan."),
    out: Path = typer.Option(None, "--out", help="HTML file [DIR/report.html]."),
    title: str = typer.Option("RankByGene report", "--title", help="Page title."),
    genes: str = typer.Option(None, "--genes", help="Comma list of genes for the spatial maps."),
    sample: str = typer.Option(None, "--sample", help="Test sample for the spatial maps."),
    data: Path = typer.Option(None, "--data", help="Dataset for the feature figures."),
) -> None:
    """Build DIR/report.html from results.json, metrics.csv, features and predictions."""
    from rankbygene.report import build_report, discover_report_inputs

    try:
        sections = discover_report_inputs(directory)
    except FileNotFoundError as err:
        typer.secho(f"Error: {err}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from err
    if genes:
        sections.map_genes = [g.strip() for g in genes.split(",") if g.strip()]
    sections.map_sample = sample
    sections.data_dir = data
    path = build_report(directory, out, title=title, sections=sections)
    typer.echo(f"Report written to {path}")
