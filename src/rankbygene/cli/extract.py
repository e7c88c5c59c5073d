"""``rankbygene extract``: frozen-encoder features of spots (--data) or slides (--slides)."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from rankbygene import keys
from rankbygene.cli.common import parse_ids

logger = logging.getLogger(__name__)


def extract(
    data: Path = typer.Option(None, "--data", help="Dataset directory (HEST-1k layout)."),
    slides: Path = typer.Option(
        None, "--slides", help="Whole-slide image or directory of them (instead of --data)."
    ),
    out: Path = typer.Option(..., "--out", help="Features directory to write ({id}.h5)."),
    run: Path = typer.Option(None, "--run", help="Training run: use its teacher backbone."),
    encoder: str = typer.Option(None, "--encoder", help="Registered encoder (tiny, uni, ...)."),
    weights: str = typer.Option(None, "--weights", help="Local weights for --encoder, or 'hub'."),
    batch_size: int = typer.Option(64, "--batch-size", help="Patches per forward pass."),
    workers: int = typer.Option(0, "--workers", help="DataLoader workers reading patches."),
    bf16: bool = typer.Option(False, "--bf16", help="bfloat16 autocast (stored as float32)."),
    channels_last: bool = typer.Option(
        True, "--channels-last/--no-channels-last", help="NHWC memory format."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Re-extract existing samples."),
    samples: str = typer.Option(None, "--samples", help="Comma list of sample ids [all]."),
    write_obsm: bool = typer.Option(
        False, "--write-obsm", help="Also write AnnData copies with obsm['X_<name>'] to OUT/st."
    ),
    mpp: float = typer.Option(None, "--mpp", help="Slides: µm per level-0 px [from the file]."),
    patch_um: float = typer.Option(128.0, "--patch-um", help="Slides: tile side in µm."),
    min_tissue: float = typer.Option(0.5, "--min-tissue", help="Slides: min tissue fraction."),
) -> None:
    """Embed every spot patch (--data) or every tissue tile of whole slides (--slides)
    with a frozen encoder (a run's teacher or a baseline)."""
    from rankbygene.features import extract_features
    from rankbygene.features.slides import extract_slide_features
    from rankbygene.methods.histogene import extract_histogene_features, is_histogene_run
    from rankbygene.models import create_encoder, load_encoder

    if (data is None) == (slides is None):
        raise typer.BadParameter("give exactly one of --data DIR (spots) or --slides PATH.")
    if slides is not None and (samples is not None or write_obsm or workers or bf16):
        raise typer.BadParameter("--samples, --write-obsm, --workers and --bf16 go with --data.")
    if (run is None) == (encoder is None):
        raise typer.BadParameter("give exactly one of --run RUN or --encoder NAME.")
    if run is not None and weights is not None:
        raise typer.BadParameter("--weights goes with --encoder; a run carries its own weights.")
    try:
        if run is not None and data is not None and is_histogene_run(run):
            paths = extract_histogene_features(run, data, out, sample_ids=parse_ids(samples))
            typer.echo(f"Features of {len(paths)} samples in {out}")
            return
        if run is not None:
            enc = load_encoder(run / keys.RUN_ENCODER_DIR)
        else:
            enc = create_encoder(encoder, weights=weights)
        if slides is not None:
            paths = extract_slide_features(
                slides,
                enc,
                out,
                mpp=mpp,
                patch_um=patch_um,
                min_tissue=min_tissue,
                batch_size=batch_size,
                overwrite=overwrite,
                source_run=run,
            )
            typer.echo(f"Features of {len(paths)} slides in {out}")
            return
        paths = extract_features(
            data,
            enc,
            out,
            sample_ids=parse_ids(samples),
            batch_size=batch_size,
            num_workers=workers,
            bf16=bf16,
            channels_last=channels_last,
            overwrite=overwrite,
            source_run=run,
            write_obsm=write_obsm,
        )
    except (ValueError, FileNotFoundError, KeyError) as err:
        typer.secho(f"Error: {err}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from err
    typer.echo(f"Features of {len(paths)} samples in {out}")
