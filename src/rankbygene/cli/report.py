"""``rankbygene report DIR``: one self-contained HTML page of the results under DIR."""

from __future__ import annotations

from pathlib import Path

import typer

from rankbygene.cli.common import user_errors
from rankbygene.text import parse_ids


@user_errors
def report(
    directory: Path = typer.Argument(..., help="Results directory to scan."),
    out: Path = typer.Option(None, "--out", help="HTML file (default: DIR/report.html)."),
    title: str = typer.Option("RankByGene report", "--title", help="Page title."),
    genes: str = typer.Option(None, "--genes", help="Comma list of genes for the spatial maps."),
    sample: str = typer.Option(None, "--sample", help="Test sample for the spatial maps."),
    data: Path = typer.Option(None, "--data", help="Dataset for the feature figures."),
) -> None:
    """Build DIR/report.html from results.json, metrics.csv, features and predictions."""
    from rankbygene.report import build_report, discover_report_inputs

    sections = discover_report_inputs(directory)
    sections.map_genes = parse_ids(genes) or None
    sections.map_sample = sample
    sections.data_dir = data
    path = build_report(directory, out, title=title, sections=sections)
    typer.echo(f"Report written to {path}")
