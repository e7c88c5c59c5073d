"""``rankbygene evaluate ...``: ``genes`` (expression prediction), ``slides`` (ABMIL)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import typer
import yaml

from rankbygene import keys
from rankbygene.cli.common import parse_ids

app = typer.Typer(no_args_is_help=True, help="Evaluate features.")


@app.command("genes")
def genes(
    data: Path = typer.Option(..., "--data", help="Dataset directory (HEST-1k layout)."),
    features: Path = typer.Option(..., "--features", help="Features dir (rankbygene extract)."),
    train_samples: str = typer.Option(..., "--train-samples", help="Comma list of sample ids."),
    test_samples: str = typer.Option(..., "--test-samples", help="Comma list of sample ids."),
    out: Path = typer.Option(..., "--out", help="Output directory (results.json, ...)."),
    panel: str = typer.Option(None, "--panel", help="top250 | hvg50 | topN | FILE [top250]."),
    gene_list: str = typer.Option(None, "--gene-list", help="Gene list (with topN: within)."),
    probe: str = typer.Option(
        None,
        "--probe",
        help="mlp | ridge | both | retrieval (BLEEP) | head (ST-Net); the last two need --run "
        "[mlp].",
    ),
    run: Path = typer.Option(None, "--run", help="Training run whose heads predict."),
    neighbours: int = typer.Option(None, "--k", help="Neighbours per test spot (retrieval) [50]."),
    epochs: int = typer.Option(None, "--epochs", help="MLP probe epochs [20]."),
    folds: int = typer.Option(None, "--folds", help="Folds over the training set [5]."),
    fold_unit: str = typer.Option(None, "--fold-unit", help="spots | samples [spots]."),
    batch_size: int = typer.Option(None, "--batch-size", help="MLP probe batch size [64]."),
    lr: float = typer.Option(None, "--lr", help="MLP probe learning rate [1e-4]."),
    seed: int = typer.Option(None, "--seed", help="Random seed [0]."),
    split_unit: str = typer.Option(
        None,
        "--split-unit",
        help="patient (refuse a test patient seen in training) | section (one-patient data).",
    ),
    config: Path = typer.Option(None, "--config", help="YAML GeneEvalConfig; flags override."),
) -> None:
    """Predict gene expression from frozen features (MLP / ridge probe, or retrieval)."""
    from rankbygene.evaluation import GeneEvalConfig, evaluate_genes, evaluate_retrieval
    from rankbygene.evaluation.head_run import evaluate_head

    retrieval = probe == "retrieval"
    own_predictor = probe in ("retrieval", "head")
    try:
        if own_predictor and run is None:
            raise ValueError(f"--probe {probe} needs --run RUN (the run's heads and genes).")
        if not own_predictor and run is not None:
            raise ValueError("--run is used only with --probe retrieval or head.")
        if not retrieval and neighbours is not None:
            raise ValueError("--k is used only with --probe retrieval.")
        cfg = (
            GeneEvalConfig.from_dict(yaml.safe_load(config.read_text()) or {})
            if config
            else (GeneEvalConfig())
        )
        mlp_over: dict[str, Any] = {
            k: v
            for k, v in {
                "epochs": epochs,
                "folds": folds,
                "fold_unit": fold_unit,
                "batch_size": batch_size,
                "lr": lr,
                "seed": seed,
            }.items()
            if v is not None
        }
        top: dict[str, Any] = {
            k: v
            for k, v in {
                "panel": panel,
                "gene_list": gene_list,
                "probe": None if own_predictor else probe,
                "split_unit": split_unit,
            }.items()
            if v is not None
        }
        ridge = replace(cfg.ridge, seed=seed) if seed is not None else cfg.ridge
        cfg = replace(cfg, mlp=replace(cfg.mlp, **mlp_over), ridge=ridge, **top)
        train_ids, test_ids = parse_ids(train_samples), parse_ids(test_samples)
        if retrieval:
            k = 50 if neighbours is None else neighbours
            res = evaluate_retrieval(
                data, run, features, train_ids, test_ids, config=cfg, k=k, out=out
            )
        elif probe == "head":
            res = evaluate_head(data, run, features, train_ids, test_ids, config=cfg, out=out)
        else:
            res = evaluate_genes(data, features, train_ids, test_ids, config=cfg, out=out)
    except (ValueError, FileNotFoundError, KeyError) as err:
        typer.secho(f"Error: {err}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from err
    pcc = res["summary"]["pcc"]
    typer.echo(
        f"PCC {pcc['mean']:.4f} ± {pcc['std']:.4f} ({res['primary_probe']} probe, "
        f"{len(res['genes'])} genes); results in {out / keys.RESULTS_JSON}"
    )


@app.command("slides")
def slides(
    features: Path = typer.Option(..., "--features", help="Per-slide feature files ({id}.h5)."),
    labels: Path = typer.Option(..., "--labels", help="CSV: slide_id[, case_id], label columns."),
    out: Path = typer.Option(..., "--out", help="Output directory (results.json, ...)."),
    task: str = typer.Option(None, "--task", help="classification | survival [classification]."),
    label_column: str = typer.Option("label", "--label-column", help="Classification label."),
    folds: int = typer.Option(None, "--folds", help="Cross-validation folds [5]."),
    epochs: int = typer.Option(None, "--epochs", help="[200 classification, 20 survival]."),
    lr: float = typer.Option(None, "--lr", help="[1e-4 classification, 2e-4 survival]."),
    optimizer: str = typer.Option(None, "--optimizer", help="adam | sgd [adam / sgd]."),
    grad_accum: int = typer.Option(None, "--grad-accum", help="Slides per optimiser step [1]."),
    bins: int = typer.Option(None, "--bins", help="Survival time bins [4]."),
    seed: int = typer.Option(None, "--seed", help="Random seed [0]."),
    config: Path = typer.Option(None, "--config", help="YAML SlideEvalConfig; flags override."),
) -> None:
    """Slide classification (AUC) or survival (C-index) with gated-attention ABMIL."""
    from rankbygene.evaluation.slides import SlideEvalConfig, evaluate_slides

    try:
        cfg = SlideEvalConfig.from_dict(yaml.safe_load(config.read_text()) or {} if config else {})
        flags = {
            "task": task,
            "folds": folds,
            "epochs": epochs,
            "lr": lr,
            "optimizer": optimizer,
            "grad_accum": grad_accum,
            "n_bins": bins,
            "seed": seed,
        }
        cfg = replace(cfg, **{k: v for k, v in flags.items() if v is not None})
        res = evaluate_slides(features, labels, cfg, label_column=label_column, out=out)
    except (ValueError, FileNotFoundError) as err:
        typer.secho(f"Error: {err}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from err
    score = res["summary"][res["metric"]]
    typer.echo(
        f"{res['metric']} {score['mean']:.4f} ± {score['std']:.4f} over {len(res['folds'])} "
        f"folds; results in {out / keys.RESULTS_JSON}"
    )
