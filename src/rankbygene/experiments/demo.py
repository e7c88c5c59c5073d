"""``rankbygene demo``: the whole pipeline on the built-in synthetic dataset.

Generates a synthetic ST dataset, saves one random initialisation of the encoder,
then trains every compared method (``settings.COMPARED_METHODS``: ST-Net, HisToGene,
HEST-FT, BLEEP, RankByGene) from that same initialisation, extracts features for
every spot and evaluates gene-expression prediction on a held-out patient with the
paper's MLP-probe protocol, beside the frozen initialisation and each method's own
predictors. Writes ``results.json``, ``results.md`` and ``report.html``.

Layout of the output directory::

    data/                 synthetic dataset (HEST layout)
    init/                 the shared initial encoder (safetensors + card)
    runs/{method}/        training runs
    features/{method}/    features per sample (CLAM/TRIDENT h5)
    eval/{panel}/{row}/   results.json, results.md, predictions/
    results.json, results.md, report.html
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rankbygene import __version__, keys
from rankbygene.data import make_synthetic_dataset, read_dataset
from rankbygene.evaluation.genes.config import GeneEvalConfig
from rankbygene.evaluation.predictors.settings import MLPProbeConfig
from rankbygene.experiments.comparison import (
    FROZEN,
    check_same_settings,
    fix_threads,
    markdown_table,
    own_predictor_notes,
    run_comparison,
    save_initialisation,
    standard_variants,
)
from rankbygene.experiments.settings import DemoConfig
from rankbygene.fileio import write_json, write_text_atomic
from rankbygene.report import build_report
from rankbygene.training.config import TrainConfig

logger = logging.getLogger(__name__)


def _split(ids: list[str]) -> tuple[list[str], list[str]]:
    """Last sample (one patient) is the test set; the rest train the encoder and probe."""
    return ids[:-1], ids[-1:]


def run_demo(config: DemoConfig, *, overwrite: bool = False) -> dict[str, Any]:
    """Run the demo; returns the ``results.json`` content.

    An interrupted demo resumes from what it finished in ``config.out``; a directory
    holding a demo of other settings is refused unless ``overwrite`` (see
    :func:`check_same_settings`).
    """
    config = config.resolved()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    recorded = {k: v for k, v in asdict(config).items() if k != "out"}
    check_same_settings(out, {**recorded, "rankbygene": __version__}, overwrite)
    fix_threads(config.threads)
    started = time.perf_counter()
    data_dir = out / keys.COMPARISON_DATA
    if (data_dir / keys.METADATA_DIR).exists():
        logger.info("Reusing the synthetic dataset in %s", data_dir)
        dataset = read_dataset(data_dir)
    else:
        dataset = make_synthetic_dataset(
            data_dir,
            n_samples=config.n_samples,
            n_spots=config.n_spots,
            n_genes=config.n_genes,
            patch_px=config.patch_px,
            seed=config.seed,
        )
    train_ids, test_ids = _split(dataset.ids)

    # One initialisation shared by every method: the comparison isolates the training.
    init_weights = save_initialisation(config.encoder, out / keys.COMPARISON_INIT, config.seed)
    settings = TrainConfig(
        encoder=config.encoder,
        panel=config.panel,
        epochs=int(config.epochs or 1),
        batch_size=config.batch_size,
        lr_image=config.lr_image,
        accelerator="cpu",
        seed=config.seed,
    ).updated(**config.extra_train)
    probe = MLPProbeConfig(epochs=config.probe_epochs, seed=config.seed)
    panels = {config.panel: GeneEvalConfig(panel=config.panel, probe="mlp", mlp=probe)}
    per_panel = run_comparison(
        data_dir,
        train_ids,
        test_ids,
        standard_variants(config.methods),
        out=out,
        train_settings=settings,
        panels=panels,
        init_weights=init_weights,
    )
    summaries = {name: r["summary"] for name, r in per_panel[config.panel].items()}
    results = {
        "dataset": str(data_dir),
        "train_samples": train_ids,
        "test_samples": test_ids,
        "panel": config.panel,
        "encoder": config.encoder,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "methods": summaries,
        "runs": {m: str(out / keys.COMPARISON_RUNS / m) for m in config.methods},
        "verdict": verdict(summaries),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(out / keys.RESULTS_JSON, results)
    write_text_atomic(out / keys.RESULTS_MD, results_markdown(results))
    build_report(out, title="rankbygene demo (synthetic data)")
    return results


def _mean_pcc(summary: dict[str, Any]) -> float:
    """Mean PCC, -inf when undefined (every predicted gene constant)."""
    value = summary.get("pcc", {}).get("mean")
    return float("-inf") if value is None else float(value)


def verdict(summaries: dict[str, dict[str, Any]]) -> str:
    """One honest sentence on who won (by mean PCC)."""
    best = max(summaries, key=lambda m: _mean_pcc(summaries[m]))
    parts = [f"Best mean PCC: {best} ({_mean_pcc(summaries[best]):.3f})."]
    if FROZEN in summaries:
        frozen = _mean_pcc(summaries[FROZEN])
        guided = [m for m in summaries if m != FROZEN and _mean_pcc(summaries[m]) > frozen]
        parts.append(
            f"{len(guided)} of {len(summaries) - 1} gene-guided rows beat the frozen "
            f"initialisation ({frozen:.3f})."
        )
    if "rankbygene" in summaries and best != "rankbygene":
        parts.append("RankByGene did not come first on this run.")
    return " ".join(parts)


def results_markdown(results: dict[str, Any]) -> str:
    """The comparison table a person reads."""
    lines = [
        "# rankbygene demo: gene-expression prediction on synthetic data",
        "",
        f"Train samples {', '.join(results['train_samples'])}; test "
        f"{', '.join(results['test_samples'])} (held-out patient); panel {results['panel']}; "
        f"encoder {results['encoder']}; MLP probe, 5 folds (mean ± std over fold models).",
        "",
    ]
    lines += markdown_table(results["methods"])
    for note in own_predictor_notes(list(results["methods"])):
        lines += ["", note]
    lines += ["", results["verdict"], ""]
    return "\n".join(lines)
