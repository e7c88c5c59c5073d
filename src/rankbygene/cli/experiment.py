"""``rankbygene experiment ...``: multi-run experiments (her2st)."""

from __future__ import annotations

from pathlib import Path

import typer

from rankbygene import keys
from rankbygene.cli.common import new_app, user_errors
from rankbygene.experiments.settings import Her2stExperimentConfig
from rankbygene.text import parse_floats, parse_ids

app = new_app(no_args_is_help=True, help="Multi-run experiments.")
H = Her2stExperimentConfig()


@app.command("her2st")
@user_errors
def her2st(
    root: Path = typer.Option(..., "--root", help="her2st folder (data/ST-cnts, ...)."),
    sections: str = typer.Option(
        None, help=f"Comma list of section ids (default: {','.join(H.sections)})."
    ),
    out: Path = typer.Option(..., "--out", help="Output directory."),
    gene_list: Path = typer.Option(None, help="Gene-list file evaluated as a second panel."),
    encoder: str = typer.Option(None, help=f"Encoder name (default: {H.encoder})."),
    weights: str = typer.Option(
        None, help="Initial encoder weights (local file, e.g. a pretrain run's encoder/)."
    ),
    init: str = typer.Option(
        None,
        help="random | pretrain: self-supervised pretraining on each fold's training "
        f"sections first (default: {H.init}).",
    ),
    pretrain_method: str = typer.Option(
        None, help=f"With --init pretrain: dino | simclr (default: {H.pretrain_method})."
    ),
    pretrain_epochs: int = typer.Option(
        None, help=f"With --init pretrain: pretraining epochs (default: {H.pretrain_epochs})."
    ),
    jitter: str = typer.Option(
        None, help="Colour jitter strengths B,C,S,H of the strong views (default: the paper's)."
    ),
    p_jitter: float = typer.Option(None, help="Probability of colour jitter (default: 0.8)."),
    p_grayscale: float = typer.Option(None, help="Probability of grayscale (default: 0.2)."),
    random_init: bool = typer.Option(
        False,
        "--random-init",
        help="Start an encoder worth its pretraining (uni, ctranspath) at random.",
    ),
    patch_px: int = typer.Option(
        None, help=f"Stored patch size of the 112 µm window (default: {H.patch_px})."
    ),
    epochs: int = typer.Option(None, help=f"Training epochs per run (default: {H.epochs})."),
    probe_epochs: int = typer.Option(None, help=f"MLP probe epochs (default: {H.probe_epochs})."),
    ablation: bool = typer.Option(None, help="Also run λ1 ∈ {0,5} × λ2 ∈ {0,1} (default: on)."),
    folds: int = typer.Option(None, help="Run only the first N outer folds (default: all)."),
    seed: int = typer.Option(None, help=f"Random seed (default: {H.seed})."),
    threads: int = typer.Option(None, help=f"torch threads (default: {H.threads})."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Start afresh in an --out holding a run of other settings."
    ),
) -> None:
    """Train every method (and the loss ablation) on her2st sections; compare gene prediction."""
    from rankbygene.configs import override
    from rankbygene.experiments.her2st import run_her2st_experiment

    config = override(
        Her2stExperimentConfig(root=root, out=out),
        sections=parse_ids(sections) or None,
        gene_list=gene_list,
        encoder=encoder,
        weights=weights,
        init=init,
        pretrain_method=pretrain_method,
        pretrain_epochs=pretrain_epochs,
        jitter=parse_floats(jitter, 4, "--jitter"),
        p_jitter=p_jitter,
        p_grayscale=p_grayscale,
        random_init=random_init or None,
        patch_px=patch_px,
        epochs=epochs,
        probe_epochs=probe_epochs,
        ablation=ablation,
        folds=folds,
        seed=seed,
        threads=threads,
    )
    results = run_her2st_experiment(config, overwrite=overwrite)
    typer.echo((out / keys.RESULTS_MD).read_text())
    typer.echo(f"Results: {out / keys.RESULTS_JSON} ({results['seconds']:.0f} s)")
