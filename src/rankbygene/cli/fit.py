"""``rankbygene fit``: fit a gene-expression predictor on training spots and save it."""

from __future__ import annotations

from pathlib import Path

import typer

from rankbygene import keys
from rankbygene.cli.common import user_errors, with_default
from rankbygene.evaluation.genes.config import GeneEvalConfig

G = GeneEvalConfig()  # defaults, shown in --help (defined once, in the config classes)


@user_errors
def fit(
    data: Path = typer.Option(..., "--data", help="Dataset directory (HEST-1k layout)."),
    features: Path = typer.Option(..., "--features", help="Features dir (rankbygene extract)."),
    train_samples: str = typer.Option(..., "--train-samples", help="Comma list of sample ids."),
    out: Path = typer.Option(..., "--out", help="Predictor directory to write."),
    panel: str = typer.Option(
        None, "--panel", help=with_default("top250 | hvg50 | topN | FILE", G.panel)
    ),
    gene_list: str = typer.Option(None, "--gene-list", help="Gene list (with topN: within)."),
    probe: str = typer.Option(
        None,
        "--probe",
        help=with_default("mlp | ridge | head | retrieval", G.probe)
        + " head (ST-Net, HisToGene) and retrieval (BLEEP) export a run's own predictor and "
        "need --run.",
    ),
    run: Path = typer.Option(None, "--run", help="Training run of --probe head|retrieval."),
    neighbours: int = typer.Option(
        None, "--k", help=with_default("Neighbours per spot (retrieval)", G.retrieval.k)
    ),
    epochs: int = typer.Option(
        None, "--epochs", help=with_default("MLP probe epochs", G.mlp.epochs)
    ),
    folds: int = typer.Option(
        None, "--folds", help=with_default("Folds (models) over the training spots", G.mlp.folds)
    ),
    lr: float = typer.Option(None, "--lr", help=with_default("MLP probe learning rate", G.mlp.lr)),
    seed: int = typer.Option(None, "--seed", help=with_default("Random seed", G.mlp.seed)),
    config: Path = typer.Option(None, "--config", help="YAML GeneEvalConfig; flags override."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a predictor in --out."),
) -> None:
    """Fit a probe (or export a run's own predictor) on every training spot, as `evaluate
    genes` fits it, and save it with a card: its genes, their scale and the encoder its
    features came from."""
    from rankbygene.configs import load_config
    from rankbygene.predict.fit import fit_predictor

    cfg = load_config(
        GeneEvalConfig,
        config,
        panel=panel,
        gene_list=gene_list,
        probe=probe,
        run=None if run is None else str(run),
        retrieval__k=neighbours,
        mlp__epochs=epochs,
        mlp__folds=folds,
        mlp__lr=lr,
        mlp__seed=seed,
        ridge__seed=seed,
    )
    path = fit_predictor(data, features, train_samples, out, config=cfg, overwrite=overwrite)
    n_genes = len((path / keys.PREDICTOR_GENES).read_text().split())
    typer.echo(f"Saved a {cfg.probe} predictor of {n_genes} genes to {path}")
