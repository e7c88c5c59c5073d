"""Retrieval-based gene-expression prediction from a trained run (BLEEP, METHOD.md §6).

Protocol: the run's image head projects the test spots' features (``rankbygene
extract --run RUN`` output) into the joint space; its gene encoder projects the
training spots' expression on the run's own panel (``genes.txt``, preprocessed with
the run's ``target_sum``/``smooth``). Each test spot's prediction is the (weighted)
mean expression of its top-k most similar training spots (cosine similarity), on the
evaluation panel chosen on the training samples as in ``evaluate_genes``. Every
prediction is thus a convex combination of training expression rows.

The split checks, feature loading, panel choice, scoring and output files are those
of :mod:`rankbygene.evaluation.genes`; the results dict has the same keys. The
predictor is deterministic (one "model"), so:
- ``summary`` is mean ± std **across test samples** of the per-sample scores (the
  mean is the paper's per-sample mean);
- ``pooled``, ``per_sample`` and ``folds`` hold one model, std 0;
- ``ensemble`` equals the single prediction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from rankbygene import keys
from rankbygene.evaluation.genes import (
    GeneEvalConfig,
    GeneEvaluation,
    _load_inputs,
    single_predictor_evaluation,
    write_gene_evaluation,
)
from rankbygene.evaluation.retrieval import Weighting, retrieval_predict

if TYPE_CHECKING:
    from rankbygene.data import STDataset

logger = logging.getLogger(__name__)

__all__ = ["RetrievalSettings", "evaluate_retrieval", "run_retrieval_evaluation"]

PROBE_NAME = "retrieval"
_EMBED_CHUNK = 4096  # rows per forward pass of a head (bounds memory)


@dataclass(frozen=True)
class RetrievalSettings:
    """Settings of the retrieval predictor (recorded under ``probes.retrieval.config``).

    Attributes:
        run: the training run directory whose heads are used.
        k: number of neighbours (capped at the number of training spots).
        weighting: ``"mean"`` (BLEEP's plain average), ``"similarity"`` or ``"softmax"``.
        temperature: softmax temperature (``weighting="softmax"`` only).
    """

    run: str
    k: int = 50
    weighting: Weighting = "mean"
    temperature: float = 0.1


def _embed(head: torch.nn.Module, x: np.ndarray) -> torch.Tensor:
    """Project rows through a head in chunks and L2-normalise.

    Shape:
        x: (N, in_dim); returns (N, out_dim) float32.
    """
    t = torch.as_tensor(x, dtype=torch.float32)
    with torch.inference_mode():
        out = torch.cat([head(c) for c in torch.split(t, _EMBED_CHUNK)])
    return F.normalize(out, dim=1)


def _missing_run_genes(adatas: dict[str, Any], ids: Sequence[str], genes: list[str]) -> str:
    """Message listing, per sample, the run panel genes it lacks ('' when none is missing)."""
    gene_arr = np.asarray(genes)
    missing = {sid: gene_arr[adatas[sid].var_names.get_indexer(genes) < 0] for sid in ids}
    return "; ".join(
        f"sample {sid!r} lacks {len(m)} of them: {m[:10].tolist()}"
        + (" ..." if len(m) > 10 else "")
        for sid, m in missing.items()
        if len(m)
    )


def _load_run(run_dir: Path) -> tuple[torch.nn.Module, torch.nn.Module, list[str], Any]:
    """Image head, gene encoder, panel genes and TrainConfig of a finished run."""
    from rankbygene.training import TrainConfig, load_run_heads
    from rankbygene.training.run import HEADS_CARD, HEADS_FILE

    needed = [run_dir / HEADS_FILE, run_dir / HEADS_CARD, run_dir / keys.RUN_GENES]
    needed.append(run_dir / keys.RUN_CONFIG)
    absent = [p.name for p in needed if not p.is_file()]
    if absent:
        raise FileNotFoundError(
            f"{run_dir} lacks {absent}: not a finished training run with a gene encoder. "
            f"Run `rankbygene train ... --out {run_dir}` to completion first."
        )
    image_head, gene_encoder, genes = load_run_heads(run_dir)
    return image_head, gene_encoder, genes, TrainConfig.from_yaml(run_dir / keys.RUN_CONFIG)


def run_retrieval_evaluation(
    dataset: STDataset | str | Path,
    run_dir: str | Path,
    features_dir: str | Path,
    train_ids: str | Sequence[str],
    test_ids: str | Sequence[str],
    config: GeneEvalConfig | None = None,
    *,
    k: int = 50,
    weighting: Weighting = "mean",
    temperature: float = 0.1,
) -> GeneEvaluation:
    """Predict the test samples' expression by retrieval among the training spots.

    Args:
        dataset: an STDataset or its directory; must hold the run's panel genes in the
            training samples.
        run_dir: finished training run (``heads.safetensors``, ``genes.txt``, ...).
        features_dir: features of every train/test sample extracted with the run's
            encoder (``rankbygene extract --run RUN``).
        train_ids: reference (training) sample ids.
        test_ids: test sample ids (patients disjoint from training unless
            ``config.split_unit="section"``).
        config: panel, preprocessing and split settings (probe settings unused).
        k: neighbours per test spot.
        weighting: neighbour weighting (see :func:`retrieval_predict`).
        temperature: softmax temperature.

    Returns:
        Results, predictions (under ``"retrieval"``), targets and the test AnnData.

    Shape:
        predictions["retrieval"][id] and targets[id]: (N_id, G), G = len(results["genes"]).

    Raises:
        ValueError: bad split, feature dims that do not fit the run's image head, or
            training samples lacking genes of the run's panel.
        FileNotFoundError: an unfinished run or missing feature files.
    """
    config = config or GeneEvalConfig()
    run_dir, features_dir = Path(run_dir), Path(features_dir)
    settings = RetrievalSettings(str(run_dir.resolve()), k, weighting, temperature)
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}.")
    image_head, gene_encoder, run_genes, run_cfg = _load_run(run_dir)
    inp = _load_inputs(dataset, features_dir, train_ids, test_ids, config)
    train, test = inp.train, inp.test

    dim = int(next(iter(inp.feats.values())).features.shape[1])
    if dim != image_head.in_dim:
        raise ValueError(
            f"Features in {features_dir} have dim {dim} but the image head of run {run_dir} "
            f"expects {image_head.in_dim}: extract them with `rankbygene extract --run {run_dir}`."
        )
    source = next(iter(inp.feats.values())).source_run
    if source and Path(source).resolve() != run_dir.resolve():
        logger.warning("features in %s come from run %s, not %s", features_dir, source, run_dir)
    missing = _missing_run_genes(inp.adatas, train, run_genes)
    if missing:
        raise ValueError(
            f"Run {run_dir} has a gene encoder over {len(run_genes)} genes "
            f"({run_dir / keys.RUN_GENES}), but {missing}. Evaluate on training samples "
            "that hold the run's panel."
        )

    from rankbygene.data import preprocess_expression

    run_expr = np.concatenate(
        [
            preprocess_expression(
                inp.adatas[s],
                run_genes,
                target_sum=run_cfg.target_sum,
                smooth=run_cfg.smooth,
                sample_id=s,
            )
            for s in train
        ]
    )
    ref_gene_emb = _embed(gene_encoder, run_expr)  # (R, d)
    query_emb = _embed(image_head, np.concatenate([inp.feats[s].features for s in test]))
    ref_expr = np.concatenate([inp.expr[s] for s in train])  # (R, G) evaluation panel
    if k > len(ref_expr):
        logger.warning("k=%d > %d training spots: using all of them", k, len(ref_expr))
    logger.info(
        "retrieval: %d test spots among %d training spots, k=%d, %s weighting",
        len(query_emb),
        len(ref_expr),
        min(k, len(ref_expr)),
        weighting,
    )
    pred = retrieval_predict(
        query_emb, ref_gene_emb, ref_expr, k, weighting=weighting, temperature=temperature
    ).numpy()
    bounds = np.cumsum([len(inp.expr[s]) for s in test])[:-1]
    preds = dict(zip(test, np.split(pred, bounds), strict=True))
    extra = {
        "k": k,
        "weighting": weighting,
        "run": settings.run,
        "run_genes": len(run_genes),
        "n_train_spots": len(ref_expr),
    }
    fold_info = {"fold": 0, "k": min(k, len(ref_expr))}
    return single_predictor_evaluation(
        inp, preds, config, features_dir, PROBE_NAME, settings, fold_info, extra
    )


def evaluate_retrieval(
    dataset: STDataset | str | Path,
    run_dir: str | Path,
    features_dir: str | Path,
    train_ids: str | Sequence[str],
    test_ids: str | Sequence[str],
    *,
    config: GeneEvalConfig | None = None,
    k: int = 50,
    weighting: Weighting = "mean",
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate a run's retrieval predictor; optionally write the outputs.

    Args:
        dataset: an STDataset or its directory.
        run_dir: finished training run with a gene encoder.
        features_dir: ``rankbygene extract --run RUN`` output for this dataset.
        train_ids: reference (training) sample ids.
        test_ids: test sample ids.
        config: panel, preprocessing and split settings; defaults to
            :class:`GeneEvalConfig` (``top250``).
        k: neighbours per test spot.
        weighting: ``"mean"`` (BLEEP), ``"similarity"`` or ``"softmax"``.
        out: if given, write results.json/.md, config.yaml and
            ``predictions/{id}.h5ad`` there (as ``evaluate_genes``).

    Returns:
        The results dict (see the module docstring).
    """
    evaluation = run_retrieval_evaluation(
        dataset, run_dir, features_dir, train_ids, test_ids, config, k=k, weighting=weighting
    )
    if out is not None:
        write_gene_evaluation(evaluation, out)
    return evaluation.results
