"""``rankbygene extract``: features of spots (``--data``) or whole slides (``--slides``)."""

from __future__ import annotations

from pathlib import Path

import typer

from rankbygene.cli.common import user_errors
from rankbygene.features.settings import EXTRACT, TILING
from rankbygene.text import parse_ids


@user_errors
def extract(
    data: Path = typer.Option(None, "--data", help="Dataset directory (HEST-1k layout)."),
    slides: Path = typer.Option(
        None, "--slides", help="Whole-slide image or directory of them (instead of --data)."
    ),
    out: Path = typer.Option(..., "--out", help="Features directory to write ({id}.h5)."),
    run: Path = typer.Option(None, "--run", help="Training run: the features its method gives."),
    encoder: str = typer.Option(None, "--encoder", help="Registered encoder (tiny, uni, ...)."),
    weights: str = typer.Option(None, "--weights", help="Local weights for --encoder, or 'hub'."),
    random_init: bool = typer.Option(
        False,
        "--random-init",
        help="With --encoder: use an encoder worth its pretraining (uni...) at random.",
    ),
    batch_size: int = typer.Option(
        EXTRACT.batch_size, "--batch-size", help="Patches per forward pass."
    ),
    workers: int = typer.Option(
        EXTRACT.num_workers, "--workers", help="DataLoader workers reading patches."
    ),
    bf16: bool = typer.Option(EXTRACT.bf16, "--bf16", help="bfloat16 autocast (stored as fp32)."),
    channels_last: bool = typer.Option(
        EXTRACT.channels_last, "--channels-last/--no-channels-last", help="NHWC memory format."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Re-extract existing samples."),
    samples: str = typer.Option(None, "--samples", help="Comma list of sample ids (default: all)."),
    write_obsm: bool = typer.Option(
        False, "--write-obsm", help="Also write AnnData copies with obsm['X_<name>'] to OUT/st."
    ),
    mpp: float = typer.Option(
        None, "--mpp", help="Slides: µm per level-0 px (default: from the file)."
    ),
    patch_um: float = typer.Option(TILING.patch_um, "--patch-um", help="Slides: tile side in µm."),
    min_tissue: float = typer.Option(
        TILING.min_tissue, "--min-tissue", help="Slides: min tissue fraction of a tile."
    ),
) -> None:
    """Embed every spot patch (--data) or every tissue tile of whole slides (--slides)
    with a frozen encoder: a training run's, or a registered baseline."""
    if (data is None) == (slides is None):
        raise typer.BadParameter("give exactly one of --data DIR (spots) or --slides PATH.")
    if slides is not None and (samples is not None or write_obsm or workers or bf16):
        raise typer.BadParameter("--samples, --write-obsm, --workers and --bf16 go with --data.")
    if (run is None) == (encoder is None):
        raise typer.BadParameter("give exactly one of --run RUN or --encoder NAME.")
    if run is not None and (weights is not None or random_init):
        raise typer.BadParameter(
            "--weights and --random-init go with --encoder; a run carries its own weights."
        )
    from rankbygene.features.extract import extract_features
    from rankbygene.features.runs import extract_run_features
    from rankbygene.features.slides import extract_slide_features
    from rankbygene.models import create_encoder
    from rankbygene.training.artifacts import load_run

    if slides is not None:
        enc = (
            load_run(run).encoder()
            if run is not None
            else create_encoder(encoder, weights, random_init=random_init)
        )
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
    options = {
        "sample_ids": parse_ids(samples) or None,
        "batch_size": batch_size,
        "num_workers": workers,
        "bf16": bf16,
        "channels_last": channels_last,
        "overwrite": overwrite,
        "write_obsm": write_obsm,
    }
    if run is not None:
        paths = extract_run_features(run, data, out, **options)
    else:
        paths = extract_features(
            data, create_encoder(encoder, weights=weights, random_init=random_init), out, **options
        )
    typer.echo(f"Features of {len(paths)} samples in {out}")
