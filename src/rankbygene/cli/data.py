"""``rankbygene data ...``: create (``synth``), import (``import ...``) and inspect (``info``)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import typer

from rankbygene.cli.common import new_app, user_errors, with_default
from rankbygene.cli.data_import import import_app
from rankbygene.data import make_synthetic_dataset

app = new_app(no_args_is_help=True, help="Create, import and inspect datasets.")
# The generator's defaults, shown in `data synth --help` (defined once, in its signature).
SYNTH = {k: p.default for k, p in inspect.signature(make_synthetic_dataset).parameters.items()}


@app.command("synth")
@user_errors
def synth(
    out: Path = typer.Option(..., "--out", help="Output dataset directory."),
    samples: int = typer.Option(
        None, "--samples", help=with_default("Number of samples", SYNTH["n_samples"])
    ),
    spots: int = typer.Option(
        None, "--spots", help=with_default("Spots per sample", SYNTH["n_spots"])
    ),
    genes: int = typer.Option(
        None, "--genes", help=with_default("Number of genes", SYNTH["n_genes"])
    ),
    seed: int = typer.Option(None, "--seed", help=with_default("Random seed", SYNTH["seed"])),
    patch_px: int = typer.Option(
        None, "--patch-px", help=with_default("Patch side in pixels", SYNTH["patch_px"])
    ),
    types: int = typer.Option(
        None, "--types", help=with_default("Number of latent cell types", SYNTH["n_types"])
    ),
    patients: int = typer.Option(
        None, "--patients", help="Number of patients (default: one per sample)."
    ),
    grid: str = typer.Option(
        None, "--grid", help=with_default("Spot grid: hex (Visium) | square (ST)", SYNTH["grid"])
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing samples."),
) -> None:
    """Write the built-in synthetic dataset (HEST layout) with known ground truth."""
    given = {
        "n_samples": samples,
        "n_spots": spots,
        "n_genes": genes,
        "patch_px": patch_px,
        "n_types": types,
        "n_patients": patients,
        "grid": grid,
        "seed": seed,
    }
    ds = make_synthetic_dataset(
        out, overwrite=overwrite, **{k: v for k, v in given.items() if v is not None}
    )
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
@user_errors
def info(
    path: Path = typer.Argument(..., help="Dataset directory (HEST layout)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the samples of a dataset (id, patient, technology, spots, genes, µm/px, patch px)."""
    rows = _summaries(path)
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


app.add_typer(import_app, name="import")
