"""``rankbygene data import ...``: her2st and Visium importers (thin wrappers).

Mounted by :mod:`rankbygene.cli.data` as the ``import`` group.
"""

from __future__ import annotations

from pathlib import Path

import typer

from rankbygene.cli.common import new_app, user_errors
from rankbygene.text import parse_ids

import_app = new_app(
    no_args_is_help=True,
    help="Import her2st (legacy ST) or Visium Space Ranger data into the HEST layout.",
)


@import_app.command("her2st")
@user_errors
def her2st(
    root: Path = typer.Option(..., "--root", help="her2st folder (holding data/ST-cnts)."),
    sections: str = typer.Option(..., "--sections", help="Comma list of sections, e.g. C2,C3."),
    out: Path = typer.Option(..., "--out", help="Output dataset directory."),
    patch_um: float = typer.Option(112.0, "--patch-um", help="Patch side in µm."),
    patch_px: int = typer.Option(224, "--patch-px", help="Stored patch side in pixels."),
    um_per_px: float | None = typer.Option(
        None, "--um-per-px", help="µm per image pixel (default: from the 200 µm spot pitch)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing samples."),
) -> None:
    """Import her2st sections (one sample per section, patient = the section's letter)."""
    from rankbygene.data.importers import import_her2st

    summaries = import_her2st(
        root,
        parse_ids(sections),
        out,
        patch_um=patch_um,
        patch_px=patch_px,
        um_per_px=um_per_px,
        overwrite=overwrite,
    )
    for s in summaries:
        typer.echo(
            f"{s.sample_id}: {s.n_spots} spots ({s.n_dropped} dropped, {s.n_padded} padded), "
            f"{s.um_per_px:.4f} µm/px, window {s.window_px} px -> {s.patch_px} px"
        )
    typer.echo(f"wrote {len(summaries)} sample(s) to {out}")


@import_app.command("visium")
@user_errors
def visium(
    spaceranger: Path = typer.Option(
        ..., "--spaceranger", help="Space Ranger run folder (or its outs/)."
    ),
    image: Path = typer.Option(..., "--image", help="Full-resolution H&E image (TIFF/JPEG/PNG)."),
    sample_id: str = typer.Option(..., "--id", help="Sample id in the output dataset."),
    out: Path = typer.Option(..., "--out", help="Output dataset directory."),
    patient: str | None = typer.Option(None, "--patient", help="Patient id (default: --id)."),
    organ: str | None = typer.Option(None, "--organ", help="Organ, for the metadata."),
    patch_um: float = typer.Option(112.0, "--patch-um", help="Patch side in µm."),
    patch_px: int = typer.Option(224, "--patch-px", help="Stored patch side in pixels."),
    um_per_px: float | None = typer.Option(
        None, "--um-per-px", help="µm per image pixel (default: 55 / spot_diameter_fullres)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing sample."),
) -> None:
    """Import one Visium sample from Space Ranger output and its full-resolution image."""
    from rankbygene.data.importers import import_visium

    s = import_visium(
        spaceranger,
        image,
        sample_id,
        out,
        patient=patient,
        organ=organ,
        patch_um=patch_um,
        patch_px=patch_px,
        um_per_px=um_per_px,
        overwrite=overwrite,
    )
    typer.echo(
        f"{s.sample_id}: {s.n_spots} spots ({s.n_dropped} dropped, {s.n_padded} padded), "
        f"{s.um_per_px:.4f} µm/px, window {s.window_px} px -> {s.patch_px} px"
    )
    typer.echo(f"wrote 1 sample to {out}")
