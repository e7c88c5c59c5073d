"""``rankbygene predict``: gene-expression maps of slides or ST sections from a saved predictor."""

from __future__ import annotations

from pathlib import Path

import typer

from rankbygene.cli.common import user_errors, with_default
from rankbygene.predict.settings import PREDICT
from rankbygene.text import parse_ids


@user_errors
def predict(
    slides: Path = typer.Option(
        None, "--slides", help="Whole-slide image or directory of them (TIFF/SVS, JPEG/PNG)."
    ),
    data: Path = typer.Option(None, "--data", help="Dataset of ST sections (instead of --slides)."),
    predictor: Path = typer.Option(..., "--predictor", help="Predictor dir (rankbygene fit)."),
    out: Path = typer.Option(..., "--out", help="Predictions directory to write."),
    run: Path = typer.Option(None, "--run", help="Training run whose encoder made the features."),
    encoder: str = typer.Option(None, "--encoder", help="Registered encoder (tiny, uni, ...)."),
    weights: str = typer.Option(None, "--weights", help="Local weights for --encoder, or 'hub'."),
    random_init: bool = typer.Option(
        False,
        "--random-init",
        help="With --encoder: use an encoder worth its pretraining (uni...) at random.",
    ),
    features: Path = typer.Option(
        None, "--features", help="With --data: precomputed features instead of an encoder."
    ),
    genes: str = typer.Option(
        None, "--genes", help=with_default("Comma list of genes to write and map", "all")
    ),
    samples: str = typer.Option(
        None, "--samples", help=with_default("With --data: sections to predict", "all")
    ),
    mpp: float = typer.Option(
        None, "--mpp", help=with_default("Slides: µm per level-0 px", "from the file")
    ),
    min_tissue: float = typer.Option(
        None,
        "--min-tissue",
        help=with_default("Slides: min tissue fraction of a tile", PREDICT.min_tissue),
    ),
    batch_size: int = typer.Option(
        None, "--batch-size", help=with_default("Tiles per forward pass", PREDICT.batch_size)
    ),
    max_maps: int = typer.Option(
        None, "--max-maps", help=with_default("Genes mapped without --genes", PREDICT.max_maps)
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo finished slides/sections."),
) -> None:
    """Predict gene expression on the tissue tiles of whole slides (--slides) or at the spots
    of ST sections (--data): per slide an h5ad, a GeoJSON for QuPath and PNG maps."""
    if (data is None) == (slides is None):
        raise typer.BadParameter("give exactly one of --slides PATH or --data DIR.")
    sources = sum(x is not None for x in (run, encoder, features))
    if sources != 1:
        raise typer.BadParameter("give exactly one of --run RUN, --encoder NAME or --features.")
    if features is not None and slides is not None:
        raise typer.BadParameter("--features goes with --data: slides are embedded here.")
    if slides is not None and samples is not None:
        raise typer.BadParameter("--samples goes with --data.")
    if data is not None and (mpp is not None or min_tissue is not None):
        raise typer.BadParameter("--mpp and --min-tissue go with --slides.")
    from rankbygene.configs import override
    from rankbygene.models import check_weights_given
    from rankbygene.predict.encoders import open_encoder
    from rankbygene.predict.saved import load_predictor
    from rankbygene.predict.sections import predict_sections
    from rankbygene.predict.slides import predict_slides

    settings = override(PREDICT, batch_size=batch_size, min_tissue=min_tissue, max_maps=max_maps)
    if encoder is not None:  # missing weights fail first, before the predictor is read
        check_weights_given(encoder, weights, random_init)
    saved = load_predictor(predictor)
    wanted = parse_ids(genes) or None
    source = (
        None
        if features is not None
        else open_encoder(run, encoder, weights, random_init=random_init)
    )
    if slides is not None:
        done = predict_slides(
            slides, source, saved, out, genes=wanted, mpp=mpp, settings=settings,
            overwrite=overwrite,
        )  # fmt: skip
        typer.echo(f"Predicted {len(done)} slide(s) into {out}")
        return
    done = predict_sections(
        data, source, saved, out, features_dir=features, sample_ids=parse_ids(samples) or None,
        genes=wanted, settings=settings, overwrite=overwrite,
    )  # fmt: skip
    for sid, entry in done.items():
        pcc = [v for v in entry["pcc"].values() if v == v]  # NaN: a constant gene
        score = f", mean PCC {sum(pcc) / len(pcc):.3f} over {len(pcc)} genes" if pcc else ""
        typer.echo(f"{sid}: {entry['n_spots']} spots{score}")
    typer.echo(f"Predicted {len(done)} section(s) into {out}")
