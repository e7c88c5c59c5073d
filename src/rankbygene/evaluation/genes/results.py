"""The results of a gene evaluation: one builder, one writer.

``EVAL/`` holds ``results.json`` (strict JSON), ``results.md`` (a table a person reads),
``config.yaml`` (the resolved settings) and ``predictions/{id}.h5ad`` (layers ``target``
and ``predicted``: the primary predictor's ensemble; ``predicted_<probe>`` for each).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import yaml

from rankbygene import keys
from rankbygene.data.writer import write_h5ad
from rankbygene.evaluation.genes.config import GeneEvalConfig
from rankbygene.evaluation.genes.inputs import EvalInputs
from rankbygene.evaluation.outputs import GENE_EVAL_FILES, clear_eval_directory
from rankbygene.fileio import json_safe, write_json, write_text_atomic
from rankbygene.text import format_mean_std

logger = logging.getLogger(__name__)

__all__ = ["GeneEvaluation", "build_results", "results_markdown", "write_gene_evaluation"]


@dataclass
class GeneEvaluation:
    """An evaluation in memory.

    Attributes:
        results: the JSON-ready results dict (what ``results.json`` holds).
        predictions: probe → sample id → the probe's ensemble prediction (N, G).
        targets: sample id → preprocessed measured expression (N, G).
        adatas: sample id → the test sample's AnnData (for obs and coordinates).
    """

    results: dict[str, Any]
    predictions: dict[str, dict[str, np.ndarray]]
    targets: dict[str, np.ndarray]
    adatas: dict[str, ad.AnnData]


def _features_info(inp: EvalInputs) -> dict[str, Any]:
    """Directory, encoder, source run and dim of the features (all empty when none read)."""
    if inp.features_dir is None or not inp.feats:
        return {"dir": None, "encoder": None, "source_run": None, "dim": 0}
    first = next(iter(inp.feats.values()))
    return {
        "dir": str(inp.features_dir.resolve()),
        "encoder": first.encoder,
        "source_run": first.source_run,
        "dim": int(first.features.shape[1]),
    }


def _spread_label(block: Mapping[str, Any]) -> str:
    return f"mean ± std over {block['summary_spread']}"


def build_results(
    inp: EvalInputs, blocks: Mapping[str, dict[str, Any]], config: GeneEvalConfig
) -> dict[str, Any]:
    """The results dict: panel, split, features, every predictor's block (primary first).

    The top-level ``summary``/``pooled``/``per_sample``/``folds``/``ensemble`` are the
    primary predictor's (the first), named by ``primary_probe``.
    """
    primary = next(iter(blocks))
    first = blocks[primary]
    results = {
        "split_unit": config.split_unit,
        "panel": inp.panel,
        "panel_source": inp.panel_source,
        "gene_list": config.gene_list,
        "genes": inp.genes,
        "dropped_genes": inp.dropped,
        "probe": config.probe,
        "primary_probe": primary,
        "metric_labels": {
            "summary": "per_sample_mean: per-gene PCC across a sample's spots, mean over "
            f"genes, then over test samples; {_spread_label(first)}",
            "pooled": "pooled: per-gene PCC over all test spots pooled (HEST-Benchmark); "
            "mean ± std over the predictor's models",
        },
        **{k: first[k] for k in ("summary", "pooled", "per_sample", "folds", "ensemble")},
        "probes": dict(blocks),
        "train_samples": inp.train,
        "test_samples": inp.test,
        "n_train_spots": int(sum(len(inp.expr[s]) for s in inp.train)),
        "n_test_spots": int(sum(len(inp.expr[s]) for s in inp.test)),
        "features": _features_info(inp),
        "data": str(Path(inp.dataset.root).resolve()),
        "config": config.to_dict(),
    }
    return json_safe(results)


def results_markdown(results: Mapping[str, Any]) -> str:
    """A table a person reads: one row per predictor, then per test sample."""
    feats = results["features"]
    lines = [
        "# Gene-expression prediction",
        "",
        f"- features: `{feats['encoder']}` (run: {feats['source_run'] or 'none, frozen encoder'})"
        if feats["encoder"]
        else "- features: none (the predictor reads no image features)",
        f"- panel: {results['panel_source']} ({len(results['genes'])} genes, "
        f"{len(results['dropped_genes'])} dropped)",
        f"- train samples: {', '.join(results['train_samples'])}",
        f"- test samples: {', '.join(results['test_samples'])}",
        *(f"- {label}" for label in results["metric_labels"].values()),
        "",
        "| probe | PCC (per-sample mean) | PCC (pooled) | MSE | MAE | ± over |",
        "|---|---|---|---|---|---|",
    ]
    for name, block in results["probes"].items():
        s, p = block["summary"], block["pooled"]
        cells = [format_mean_std(x, 4) for x in (s["pcc"], p["pcc"], s["mse"], s["mae"])]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {block['summary_spread']} |")
    lines += ["", "| probe | test sample | spots | PCC | MSE | MAE |", "|---|---|---|---|---|---|"]
    for name, block in results["probes"].items():
        for sid, m in block["per_sample"].items():
            cells = [format_mean_std(m[k], 4) for k in ("pcc", "mse", "mae")]
            lines.append(f"| {name} | {sid} | {m['n_spots']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_gene_evaluation(evaluation: GeneEvaluation, out: str | Path) -> Path:
    """Write ``results.json``, ``results.md``, ``config.yaml`` and ``predictions/{id}.h5ad``.

    Every file is written atomically; ``results.json`` last, so a directory with it is
    a complete evaluation. The files of a previous evaluation in ``out`` are deleted
    first (``evaluate_genes`` has checked that this may be done).

    Returns:
        The output directory.
    """
    out = Path(out)
    clear_eval_directory(out, GENE_EVAL_FILES)
    res = evaluation.results
    genes = res["genes"]
    for sid, target in evaluation.targets.items():
        src = evaluation.adatas[sid]
        pa = ad.AnnData(X=target.copy(), obs=src.obs.copy())
        pa.var_names = genes
        pa.layers[keys.LAYER_TARGET] = target
        pa.layers[keys.LAYER_PREDICTED] = evaluation.predictions[res["primary_probe"]][sid]
        for kind, preds in evaluation.predictions.items():
            pa.layers[f"{keys.LAYER_PREDICTED}_{kind}"] = preds[sid]
        if keys.OBSM_SPATIAL in src.obsm:
            pa.obsm[keys.OBSM_SPATIAL] = np.asarray(src.obsm[keys.OBSM_SPATIAL])
        pa.uns["rankbygene"] = {
            "panel": res["panel_source"],
            "probe": res["probe"],
            "encoder": res["features"]["encoder"] or "none",
        }
        write_h5ad(out / keys.PREDICTIONS_DIR / f"{sid}{keys.ST_SUFFIX}", pa)
    write_text_atomic(out / keys.RESULTS_MD, results_markdown(res))
    write_text_atomic(out / keys.EVAL_CONFIG, yaml.safe_dump(res["config"], sort_keys=False))
    write_json(out / keys.RESULTS_JSON, res)
    logger.info("wrote %s", out / keys.RESULTS_JSON)
    return out
