"""Run a gene evaluation: build the predictors, fit, predict, score; optionally write.

:func:`fit_gene_predictors` is the fitting half alone, shared with ``rankbygene fit``
(a saved predictor is fitted exactly as the evaluation fits it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rankbygene import keys
from rankbygene.data import STDataset
from rankbygene.evaluation.genes.config import GeneEvalConfig
from rankbygene.evaluation.genes.inputs import EvalInputs, load_inputs
from rankbygene.evaluation.genes.results import (
    GeneEvaluation,
    build_results,
    write_gene_evaluation,
)
from rankbygene.evaluation.genes.scoring import score_members
from rankbygene.evaluation.outputs import GENE_EVAL_FILES, check_eval_directory
from rankbygene.evaluation.predictors.base import Predictor
from rankbygene.evaluation.predictors.registry import build_predictors
from rankbygene.training import TrainedRun, load_run

logger = logging.getLogger(__name__)

__all__ = ["FittedPredictors", "evaluate_genes", "fit_gene_predictors", "run_gene_evaluation"]


def _fixed_panel(predictors: Sequence[Predictor]) -> list[str] | None:
    """The genes a trained predictor fixes (all of them must agree), else None."""
    fixed = {tuple(p.genes) for p in predictors if p.genes is not None}
    if len(fixed) > 1:
        raise ValueError("These predictors are trained on different panels; evaluate them apart.")
    return list(fixed.pop()) if fixed else None


@dataclass
class FittedPredictors:
    """Predictors fitted on an evaluation's training spots.

    Attributes:
        inputs: the split, features, panel and targets they were fitted on.
        predictors: the fitted predictors, primary first.
        run: the training run of a run's own predictor (else None).
    """

    inputs: EvalInputs
    predictors: list[Predictor]
    run: TrainedRun | None


def fit_gene_predictors(
    dataset: STDataset | str | Path,
    features_dir: str | Path | None,
    train_ids: str | Sequence[str],
    test_ids: str | Sequence[str],
    config: GeneEvalConfig,
    *,
    require_test: bool = True,
) -> FittedPredictors:
    """Build the configured predictor(s) and fit them on the training samples' spots.

    The one fitting path of ``evaluate genes`` and ``rankbygene fit``: the panel is
    chosen on the training samples (or fixed by the run), the targets preprocessed with
    ``config``, and each predictor fitted on every training spot.

    Args:
        dataset: an STDataset or its directory.
        features_dir: ``{id}.h5`` feature files; None for a predictor reading none.
        train_ids: training sample ids (list or comma string).
        test_ids: test sample ids (read and checked, not fitted on).
        config: evaluation settings; ``config.run`` names a run's own predictor.
        require_test: False accepts no test sample (fitting a predictor to save).

    Raises:
        ValueError: bad split, panel or predictor settings.
        FileNotFoundError: missing features, or an unfinished run.
    """
    run = load_run(config.run) if config.run else None
    predictors = build_predictors(
        config.probe,
        mlp=config.mlp,
        ridge=config.ridge,
        retrieval=config.retrieval,
        position=config.position,
        run=run,
    )
    reads_features = any(p.reads_features for p in predictors)
    if reads_features and features_dir is None:
        raise ValueError(f"--probe {config.probe} reads image features: pass --features FEATS.")
    genes = _fixed_panel(predictors)
    source = str(run.path / keys.RUN_GENES) if run is not None else ""
    inp = load_inputs(
        dataset,
        features_dir if reads_features else None,
        train_ids,
        test_ids,
        config,
        genes=genes,
        genes_source=source,
        require_test=require_test,
    )
    if run is not None:
        _warn_on_mismatch(inp, run, config)
    train = inp.spots(inp.train)
    for predictor in predictors:
        predictor.fit(train, inp.genes)
    return FittedPredictors(inp, predictors, run)


def run_gene_evaluation(
    dataset: STDataset | str | Path,
    features_dir: str | Path | None,
    train_ids: str | Sequence[str],
    test_ids: str | Sequence[str],
    config: GeneEvalConfig | None = None,
) -> GeneEvaluation:
    """Fit the configured predictor(s) on the training samples and score the test samples.

    Args:
        dataset: an STDataset or its directory.
        features_dir: directory of ``{id}.h5`` feature files (``rankbygene extract``);
            None for a predictor that reads no features (``position``).
        train_ids: training sample ids (list or comma string).
        test_ids: test sample ids; their patients must not be in training.
        config: evaluation settings (defaults: top250, MLP probe); ``config.run`` names
            the run of a ``head``/``retrieval`` evaluation.

    Returns:
        The results dict plus the predictions, targets and test AnnData.

    Raises:
        ValueError: bad split, panel or predictor settings.
        FileNotFoundError: missing features, or an unfinished run.
    """
    config = config or GeneEvalConfig()
    fitted = fit_gene_predictors(dataset, features_dir, train_ids, test_ids, config)
    inp = fitted.inputs
    targets = {s: inp.expr[s] for s in inp.test}
    test_spots = inp.spots(inp.test)  # gathered once: every predictor reads the same spots
    blocks: dict[str, Any] = {}
    predictions = {}
    for predictor in fitted.predictors:
        member_preds = [
            _split_by_sample(pred, inp, inp.test) for pred in predictor.predict(test_spots)
        ]
        blocks[predictor.name], predictions[predictor.name] = score_members(
            member_preds, predictor.members(), targets, inp.genes, predictor.settings()
        )
    results = build_results(inp, blocks, config)
    return GeneEvaluation(results, predictions, targets, {s: inp.adatas[s] for s in inp.test})


def _split_by_sample(pred: Any, inp: EvalInputs, ids: Sequence[str]) -> dict[str, Any]:
    """Rows of a prediction over ``ids`` (concatenated in order) → sample id → rows."""
    out, start = {}, 0
    for sid in ids:
        n = len(inp.expr[sid])
        out[sid] = pred[start : start + n]
        start += n
    return out


def _warn_on_mismatch(inp: EvalInputs, run: TrainedRun, config: GeneEvalConfig) -> None:
    """Warn about features from another run, or targets on another scale than the run's."""
    if inp.feats:
        source = next(iter(inp.feats.values())).source_run
        if source and Path(source).resolve() != run.path.resolve():
            logger.warning(
                "features in %s come from run %s, not %s", inp.features_dir, source, run.path
            )
    if not run.genes:
        return  # a pretraining run saw no expression: no target scale to compare
    if (run.config.target_sum, run.config.smooth) != (config.target_sum, config.smooth):
        logger.warning(
            "run %s was trained on targets with target_sum=%g, smooth=%s; the evaluation uses "
            "%g, %s: MSE/MAE compare different scales (PCC is less affected)",
            run.path, run.config.target_sum, run.config.smooth, config.target_sum, config.smooth,
        )  # fmt: skip


def evaluate_genes(
    dataset: STDataset | str | Path,
    features_dir: str | Path | None,
    train_ids: str | Sequence[str],
    test_ids: str | Sequence[str],
    *,
    config: GeneEvalConfig | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """Evaluate gene-expression prediction; optionally write ``EVAL/``.

    Args:
        dataset: an STDataset or its directory.
        features_dir: ``rankbygene extract`` output for this dataset (None for
            ``probe="position"``).
        train_ids: training sample ids.
        test_ids: test sample ids (patients disjoint from training).
        config: full settings; defaults to :class:`GeneEvalConfig`.
        out: if given, write results.json/.md, config.yaml and predictions there
            (:mod:`rankbygene.evaluation.outputs` says when an existing one is replaced).
        overwrite: replace a finished evaluation in ``out``.
        **overrides: fields of ``config`` to replace (``panel``, ``probe``,
            ``gene_list``, ``run``...), None values ignored.

    Returns:
        The results dict (see :mod:`rankbygene.evaluation.genes.results`).
    """
    changes = {
        k: (str(v) if isinstance(v, Path) else v) for k, v in overrides.items() if v is not None
    }
    config = replace(config or GeneEvalConfig(), **changes)
    if out is not None:
        check_eval_directory(out, GENE_EVAL_FILES, overwrite=overwrite)
    evaluation = run_gene_evaluation(dataset, features_dir, train_ids, test_ids, config)
    if out is not None:
        write_gene_evaluation(evaluation, out)
    return evaluation.results
