"""``rankbygene data ...``: create (``synth``), import (``import ...``) and inspect (``info``)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(no_args_is_help=True, help="Create, import and inspect datasets.")


def _fail(exc: Exception) -> typer.Exit:
    """Print an input error without a traceback; return the exit to raise."""
    typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


@app.command("synth")
def synth(
    out: Path = typer.Option(..., "--out", help="Output dataset directory."),
    samples: int = typer.Option(4, "--samples", help="Number of samples."),
    spots: int = typer.Option(300, "--spots", help="Spots per sample."),
    genes: int = typer.Option(200, "--genes", help="Number of genes."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    patch_px: int = typer.Option(64, "--patch-px", help="Patch side in pixels."),
    types: int = typer.Option(4, "--types", help="Number of latent cell types."),
    patients: int | None = typer.Option(
        None, "--patients", help="Number of patients (default: one per sample)."
    ),
    grid: str = typer.Option("hex", "--grid", help="Spot grid: hex (Visium) or square (ST)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing samples."),
) -> None:
    """Write the built-in synthetic dataset (HEST layout) with known ground truth."""
    from rankbygene.data import make_synthetic_dataset

    try:
        ds = make_synthetic_dataset(
            out,
            n_samples=samples,
            n_spots=spots,
            n_genes=genes,
            patch_px=patch_px,
            n_types=types,
            n_patients=patients,
            grid=grid,
            seed=seed,
            overwrite=overwrite,
        )
    except ValueError as exc:
        raise _fail(exc) from exc
    typer.echo(f"wrote {len(ds)} samples ({', '.join(ds.ids)}) to {ds.root}")


def _summaries(path: Path) -> list[dict[str, Any]]:
    from rankbygene.data import read_dataset

    ds = read_dataset(path)
    return [
        {
            "id": s.id,
            "patient": s.patient,
            "technology": s.technology,
            "spots": s.n_spots,
            "genes": s.n_genes,
            "pixel_size_um": s.pixel_size_um,
            "patch_px": s.patch_px,
        }
        for s in ds
    ]


@app.command("info")
def info(
    path: Path = typer.Argument(..., help="Dataset directory (HEST layout)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the samples of a dataset (id, patient, technology, spots, genes, µm/px, patch px)."""
    try:
        rows = _summaries(path)
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(exc) from exc
    n_spots = sum(r["spots"] for r in rows)
    if as_json:
        typer.echo(json.dumps({"samples": rows, "n_spots": n_spots}, indent=2))
        return
    header = ["id", "patient", "technology", "spots", "genes", "µm/px", "patch px"]
    table = [
        [
            r["id"],
            r["patient"],
            r["technology"],
            str(r["spots"]),
            str(r["genes"]),
            "?" if r["pixel_size_um"] is None else f"{r['pixel_size_um']:.4g}",
            str(r["patch_px"]),
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header)]
    for line in [header, *table]:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    typer.echo(f"{len(rows)} samples, {n_spots} spots")


def _mount_importers() -> None:
    """Attach ``data import ...`` from its own module (owned by the importers) if present."""
    if importlib.util.find_spec("rankbygene.cli.data_import") is None:
        return
    from rankbygene.cli.data_import import import_app

    app.add_typer(import_app, name="import")


_mount_importers()
