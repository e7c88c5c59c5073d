"""The her2st experiment: every method and the loss ablation on real legacy-ST sections.

Imports the sections, then, for each outer fold (leave-one-patient-out when the
sections span several patients, otherwise leave-one-section-out), trains every
variant from the same initialisation on the training sections and evaluates gene
prediction on the held-out one, on the top-250 panel and on a gene-list file.
Sized for a 2-core CPU: a small encoder on 64 px patches of the 112 µm window.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rankbygene import __version__, keys
from rankbygene.data import read_dataset
from rankbygene.data.importers import import_her2st
from rankbygene.evaluation.genes.config import GeneEvalConfig
from rankbygene.evaluation.predictors.settings import MLPProbeConfig
from rankbygene.experiments.comparison import (
    ablation_variants,
    check_same_settings,
    fix_threads,
    markdown_table,
    own_predictor_notes,
    pretrained_initialisation,
    run_comparison,
    save_initialisation,
    standard_variants,
    summarise_folds,
)
from rankbygene.experiments.settings import HER2ST_LATER_SETTINGS, Her2stExperimentConfig
from rankbygene.fileio import write_json, write_text_atomic
from rankbygene.models import check_weights_given
from rankbygene.pretraining.config import PretrainConfig
from rankbygene.training.config import TrainConfig

logger = logging.getLogger(__name__)


def outer_folds(patients: dict[str, str]) -> tuple[list[tuple[list[str], list[str]]], str]:
    """(train, test) id lists and the unit: ``patient`` when possible, else ``section``."""
    ids = sorted(patients)
    by_patient = sorted(set(patients.values()))
    if len(by_patient) > 1:
        folds = [
            ([s for s in ids if patients[s] != p], [s for s in ids if patients[s] == p])
            for p in by_patient
        ]
        return folds, "patient"
    return [([s for s in ids if s != t], [t]) for t in ids], "section"


def run_her2st_experiment(
    config: Her2stExperimentConfig, *, overwrite: bool = False
) -> dict[str, Any]:
    """Run the experiment; writes ``results.json`` and ``results.md`` under ``config.out``.

    Finished folds, runs and features in ``config.out`` are reused (``folds`` may grow
    between calls); other settings are refused unless ``overwrite``.
    """
    started = time.perf_counter()
    check_weights_given(config.encoder, config.weights, config.random_init)  # before any output
    out = Path(config.out)
    default = asdict(Her2stExperimentConfig())
    recorded = {  # settings added later are recorded only when set: older outputs stay reusable
        k: v
        for k, v in asdict(config).items()
        if k not in ("out", "folds") and not (k in HER2ST_LATER_SETTINGS and v == default[k])
    }
    check_same_settings(out, {**recorded, "rankbygene": __version__}, overwrite)
    fix_threads(config.threads)
    colour = config.colour()
    # the initial weights first: a bad --weights fails before minutes of importing
    init = save_initialisation(
        config.encoder,
        out / keys.COMPARISON_INIT,
        config.seed,
        config.weights,
        random_init=config.random_init,
    )
    pretraining = PretrainConfig(
        encoder=config.encoder,
        weights=str(init),  # the same start as a random-init comparison
        method=config.pretrain_method,
        epochs=config.pretrain_epochs,
        batch_size=config.batch_size,
        accelerator="cpu",
        seed=config.seed,
        **colour,
    )
    data_dir = out / keys.COMPARISON_DATA
    if not (data_dir / keys.METADATA_DIR).exists():
        import_her2st(config.root, config.sections, data_dir, patch_px=config.patch_px)
    dataset = read_dataset(data_dir)
    ids = [s for s in dataset.ids if s in set(config.sections)]
    folds, unit = outer_folds({s: dataset[s].patient for s in ids})
    folds = folds[: config.folds] if config.folds else folds
    settings = TrainConfig(
        encoder=config.encoder,
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr_image=config.lr_image,
        panel=config.train_panel,
        val_split="none",
        accelerator="cpu",
        seed=config.seed,
        **colour,
    )
    common = {
        "probe": "mlp",
        "mlp": MLPProbeConfig(epochs=config.probe_epochs, seed=config.seed),
        "split_unit": unit,
    }
    panels = {"top250": GeneEvalConfig(panel="top250", **common)}
    if config.gene_list is not None:
        panels[Path(config.gene_list).stem] = GeneEvalConfig(panel=str(config.gene_list), **common)
    variants = standard_variants()
    if config.ablation:
        # λ1 = 5, λ2 = 1 is the rankbygene row already.
        variants += [
            v
            for v in ablation_variants()
            if dict(v.overrides) != {"lambda_rank": 5.0, "lambda_dist": 1.0}
        ]
    per_fold = []
    for train_ids, test_ids in folds:
        logger.info("her2st fold: train %s, test %s", train_ids, test_ids)
        fold_out = out / keys.EXPERIMENT_FOLDS / "_".join(test_ids)
        fold_init = init
        if config.init == "pretrain":  # on this fold's training sections only
            run = fold_out / keys.COMPARISON_PRETRAIN
            fold_init = pretrained_initialisation(data_dir, train_ids, run, pretraining)
        per_fold.append(
            run_comparison(
                data_dir,
                train_ids,
                test_ids,
                variants,
                out=fold_out,
                train_settings=settings,
                panels=panels,
                init_weights=fold_init,
                position_baseline=True,
            )
        )
    table = summarise_folds(per_fold)
    results = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "split_unit": unit,
        "folds": [{"train": tr, "test": te} for tr, te in folds],
        "panels": {name: {"n_genes": len(fold_panel(per_fold, name))} for name in panels},
        "summary": table,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(out / keys.RESULTS_JSON, results)
    write_text_atomic(out / keys.RESULTS_MD, her2st_markdown(results))
    return results


def fold_panel(per_fold: list[dict[str, Any]], panel: str) -> list[str]:
    """The genes of a panel in the first fold (panels are chosen per fold on training)."""
    first = next(iter(per_fold[0][panel].values()))
    return list(first["genes"])


def her2st_markdown(results: dict[str, Any]) -> str:
    """Comparison tables, one per panel, with what the numbers can and cannot show."""
    unit = results["split_unit"]
    lines = [
        "# her2st experiment: gene-expression prediction",
        "",
        f"{len(results['folds'])} outer folds, leave-one-{unit}-out; each cell is the mean ± "
        "std over the outer folds of the per-fold score (MLP probe, 5 inner folds, PCC per "
        "gene across the held-out section's spots, averaged over genes).",
    ]
    if unit == "section":
        lines += [
            "",
            "All sections come from one patient, so the held-out section shares its patient "
            "with training: this measures within-patient generalisation, not across patients.",
        ]
    for panel, rows in results["summary"].items():
        lines += ["", f"## Panel {panel} ({results['panels'][panel]['n_genes']} genes)", ""]
        lines += markdown_table(rows)
    rows_seen = [name for rows in results["summary"].values() for name in rows]
    for note in own_predictor_notes(rows_seen):
        lines += ["", note]
    lines.append("")
    return "\n".join(lines)
