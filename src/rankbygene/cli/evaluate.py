"""``rankbygene evaluate ...``: ``genes`` (expression prediction), ``slides`` (ABMIL)."""

from __future__ import annotations

from pathlib import Path

import typer

from rankbygene import keys
from rankbygene.cli.common import new_app, user_errors, with_default
from rankbygene.evaluation.genes.config import GeneEvalConfig
from rankbygene.evaluation.predictors.settings import PROBES
from rankbygene.evaluation.slides.config import TASK_DEFAULTS, SlideEvalConfig
from rankbygene.text import format_mean_std

app = new_app(no_args_is_help=True, help="Evaluate features.")
G = GeneEvalConfig()  # defaults, shown in --help (defined once, in the config classes)
S = SlideEvalConfig()
_C, _S = TASK_DEFAULTS["classification"], TASK_DEFAULTS["survival"]


@app.command("genes")
@user_errors
def genes(
    data: Path = typer.Option(..., "--data", help="Dataset directory (HEST-1k layout)."),
    features: Path = typer.Option(
        None, "--features", help="Features dir (rankbygene extract); not read by --probe position."
    ),
    train_samples: str = typer.Option(..., "--train-samples", help="Comma list of sample ids."),
    test_samples: str = typer.Option(..., "--test-samples", help="Comma list of sample ids."),
    out: Path = typer.Option(..., "--out", help="Output directory (results.json, ...)."),
    panel: str = typer.Option(
        None, "--panel", help=f"top250 | hvg50 | topN | FILE (default: {G.panel})."
    ),
    gene_list: str = typer.Option(None, "--gene-list", help="Gene list (with topN: within)."),
    probe: str = typer.Option(
        None,
        "--probe",
        help=f"{' | '.join(PROBES)} (default: {G.probe}). head (ST-Net, HisToGene) and retrieval "
        "(BLEEP) score a run's own predictor on its panel and need --run; position reads "
        "only array coordinates.",
    ),
    run: Path = typer.Option(None, "--run", help="Training run of --probe head|retrieval."),
    neighbours: int = typer.Option(
        None, "--k", help=f"Neighbours per test spot (retrieval) (default: {G.retrieval.k})."
    ),
    epochs: int = typer.Option(
        None, "--epochs", help=f"MLP probe epochs (default: {G.mlp.epochs})."
    ),
    folds: int = typer.Option(
        None, "--folds", help=f"Folds over the training set (default: {G.mlp.folds})."
    ),
    fold_unit: str = typer.Option(
        None, "--fold-unit", help=f"spots | samples (default: {G.mlp.fold_unit})."
    ),
    batch_size: int = typer.Option(
        None, "--batch-size", help=f"MLP probe batch size (default: {G.mlp.batch_size})."
    ),
    lr: float = typer.Option(
        None, "--lr", help=f"MLP probe learning rate (default: {G.mlp.lr:g})."
    ),
    seed: int = typer.Option(None, "--seed", help=f"Random seed (default: {G.mlp.seed})."),
    split_unit: str = typer.Option(
        None,
        "--split-unit",
        help=with_default(
            "patient (refuse a test patient seen in training) | section (one-patient data)",
            G.split_unit,
        ),
    ),
    config: Path = typer.Option(None, "--config", help="YAML GeneEvalConfig; flags override."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a finished evaluation in --out (its files go)."
    ),
) -> None:
    """Predict gene expression of held-out samples: a probe on frozen features, a run's own
    predictor, or the position-only baseline. A finished evaluation in --out is refused
    unless --overwrite; an interrupted one is redone."""
    from rankbygene.configs import load_config
    from rankbygene.evaluation.genes.evaluate import evaluate_genes

    cfg = load_config(
        GeneEvalConfig,
        config,
        panel=panel,
        gene_list=gene_list,
        probe=probe,
        run=None if run is None else str(run),
        split_unit=split_unit,
        retrieval__k=neighbours,
        mlp__epochs=epochs,
        mlp__folds=folds,
        mlp__fold_unit=fold_unit,
        mlp__batch_size=batch_size,
        mlp__lr=lr,
        mlp__seed=seed,
        ridge__seed=seed,
    )
    res = evaluate_genes(
        data, features, train_samples, test_samples, config=cfg, out=out, overwrite=overwrite
    )
    typer.echo(
        f"PCC {format_mean_std(res['summary']['pcc'], 4)} ({res['primary_probe']}, "
        f"{len(res['genes'])} genes); results in {out / keys.RESULTS_JSON}"
    )


@app.command("slides")
@user_errors
def slides(
    features: Path = typer.Option(..., "--features", help="Per-slide feature files ({id}.h5)."),
    labels: Path = typer.Option(
        ..., "--labels", help="CSV: slide_id, optional case_id, and the label columns."
    ),
    out: Path = typer.Option(..., "--out", help="Output directory (results.json, ...)."),
    task: str = typer.Option(
        None, "--task", help=f"classification | survival (default: {S.task})."
    ),
    label_column: str = typer.Option(
        None,
        "--label-column",
        help=f"Column of the classification label (default: {S.label_column}).",
    ),
    folds: int = typer.Option(
        None, "--folds", help=f"Cross-validation folds (default: {S.folds})."
    ),
    epochs: int = typer.Option(
        None,
        "--epochs",
        help=f"Epochs (default: {_C['epochs']} classification, {_S['epochs']} survival).",
    ),
    lr: float = typer.Option(
        None,
        "--lr",
        help=f"Learning rate (default: {_C['lr']:g} classification, {_S['lr']:g} survival).",
    ),
    optimizer: str = typer.Option(
        None,
        "--optimizer",
        help=f"adam | sgd (default: {_C['optimizer']} classification, {_S['optimizer']} survival).",
    ),
    grad_accum: int = typer.Option(
        None, "--grad-accum", help=f"Slides per optimiser step (default: {S.grad_accum})."
    ),
    bins: int = typer.Option(None, "--bins", help=f"Survival time bins (default: {S.n_bins})."),
    seed: int = typer.Option(None, "--seed", help=f"Random seed (default: {S.seed})."),
    config: Path = typer.Option(None, "--config", help="YAML SlideEvalConfig; flags override."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a finished evaluation in --out (its files go)."
    ),
) -> None:
    """Slide classification (AUC) or survival (C-index) with gated-attention ABMIL. A
    finished evaluation in --out is refused unless --overwrite."""
    from rankbygene.configs import load_config
    from rankbygene.evaluation.slides.cv import evaluate_slides

    cfg = load_config(
        SlideEvalConfig,
        config,
        task=task,
        folds=folds,
        epochs=epochs,
        lr=lr,
        optimizer=optimizer,
        grad_accum=grad_accum,
        n_bins=bins,
        seed=seed,
        label_column=label_column,
    )
    res = evaluate_slides(features, labels, cfg, out=out, overwrite=overwrite)
    typer.echo(
        f"{res['metric']} {format_mean_std(res['summary'][res['metric']], 4)} over "
        f"{len(res['folds'])} folds; results in {out / keys.RESULTS_JSON}"
    )
