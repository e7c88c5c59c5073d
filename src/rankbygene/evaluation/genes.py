"""Gene-expression prediction from frozen features: the pipeline behind ``evaluate genes``.

Protocol (METHOD.md §5): features of the training samples' spots → probe → the test
samples' expression. Gene panel chosen on training samples only; expression
normalised, log1p'd and smoothed; splits by patient (a test patient seen in
training is refused).

Reported metrics, both labelled:
- ``per_sample_mean`` (the paper): PCC per gene across one sample's spots, mean
  over genes, then mean over test samples; MSE/MAE likewise.
- ``pooled`` (HEST-Benchmark): PCC per gene over all test spots pooled.
Each fold model is scored on its own; ``summary`` and ``pooled`` are mean ± std
over the fold models (the ridge probe has a single model, std 0). ``ensemble``
scores the mean prediction of the fold models, which is also what
``predictions/{id}.h5ad`` stores in layer ``predicted``.

With ``probe="both"``, every probe's block sits under ``probes``; the top-level
``summary``/``pooled``/``per_sample``/``folds`` are those of the MLP probe (the
paper's protocol), and ``primary_probe`` says so.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anndata as ad
import numpy as np
import yaml

from rankbygene import keys
from rankbygene.evaluation.metrics import SCALAR_METRICS, gene_metrics, summarise_metrics
from rankbygene.evaluation.probes import (
    MLPProbeConfig,
    RidgeProbeConfig,
    cross_fit_mlp,
    fit_ridge_probe,
)
from rankbygene.features.io import FeatureFile, assert_same_spots, feature_path, read_features
from rankbygene.fileio import atomic_path, write_text_atomic

if TYPE_CHECKING:
    from rankbygene.data import STDataset

logger = logging.getLogger(__name__)

__all__ = [
    "GeneEvalConfig",
    "GeneEvaluation",
    "evaluate_genes",
    "run_gene_evaluation",
    "write_gene_evaluation",
]

ProbeKind = Literal["mlp", "ridge", "both"]


@dataclass
class GeneEvalConfig:
    """Settings of one gene-expression evaluation (written to ``EVAL/config.yaml``).

    Attributes:
        panel: ``topN``, ``hvgN``, or a gene-list file (see ``data.select_panel``).
        gene_list: optional gene-list file; with ``panel="topN"`` gives the top N
            within that list.
        probe: ``"mlp"`` (paper), ``"ridge"`` (HEST-Benchmark) or ``"both"``.
        mlp: MLP probe and fold settings.
        ridge: ridge probe settings.
        smooth: spatially smooth the expression targets (METHOD.md §1).
        split_unit: ``"patient"`` (default) refuses a test sample whose patient is in
            training; ``"section"`` allows it, for data from a single patient
            (leave-one-section-out), and the results say so.
        target_sum: library-size normalisation target.
    """

    panel: str = "top250"
    gene_list: str | None = None
    probe: ProbeKind = "mlp"
    mlp: MLPProbeConfig = field(default_factory=MLPProbeConfig)
    ridge: RidgeProbeConfig = field(default_factory=RidgeProbeConfig)
    smooth: bool = True
    target_sum: float = 1e4
    split_unit: Literal["patient", "section"] = "patient"

    def __post_init__(self) -> None:
        if self.probe not in ("mlp", "ridge", "both"):
            raise ValueError(f"probe must be 'mlp', 'ridge' or 'both'; got {self.probe!r}.")
        if isinstance(self.mlp, Mapping):
            mlp = dict(self.mlp)
            if "hidden_dims" in mlp:
                mlp["hidden_dims"] = tuple(mlp["hidden_dims"])
            self.mlp = MLPProbeConfig(**mlp)
        if isinstance(self.ridge, Mapping):
            self.ridge = RidgeProbeConfig(**dict(self.ridge))

    @property
    def probes(self) -> list[str]:
        """Probes to run, primary first."""
        return ["mlp", "ridge"] if self.probe == "both" else [self.probe]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML/JSON-ready)."""
        d = asdict(self)
        d["mlp"]["hidden_dims"] = list(self.mlp.hidden_dims)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GeneEvalConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(**dict(d))


@dataclass
class GeneEvaluation:
    """Results of :func:`run_gene_evaluation`.

    Attributes:
        results: the JSON-ready results dict (what ``results.json`` holds).
        predictions: probe → sample id → mean prediction of the probe's models (N, G).
        targets: sample id → preprocessed measured expression (N, G).
        adatas: sample id → the test sample's AnnData (for obs and coordinates).
    """

    results: dict[str, Any]
    predictions: dict[str, dict[str, np.ndarray]]
    targets: dict[str, np.ndarray]
    adatas: dict[str, ad.AnnData]


def _as_ids(ids: str | Sequence[str]) -> list[str]:
    if isinstance(ids, str):
        return [s for s in (x.strip() for x in ids.split(",")) if s]
    return list(ids)


def _check_split(
    dataset: STDataset, train_ids: list[str], test_ids: list[str], split_unit: str = "patient"
) -> None:
    """Refuse empty, unknown, overlapping or (unless ``split_unit="section"``) patient-leaking
    splits."""
    from rankbygene.data import assert_patient_disjoint

    if not train_ids or not test_ids:
        raise ValueError("Both --train-samples and --test-samples need at least one sample id.")
    known = set(dataset.ids)
    unknown = [s for s in train_ids + test_ids if s not in known]
    if unknown:
        raise ValueError(
            f"Unknown sample ids {unknown} in {dataset.root}; known ids: {sorted(known)}."
        )
    both = sorted(set(train_ids) & set(test_ids))
    if both:
        raise ValueError(f"Samples {both} are in both the training and the test samples.")
    if split_unit == "section":
        logger.warning(
            "split_unit=section: test samples may share a patient with training; the "
            "scores measure within-patient generalisation."
        )
        return
    assert_patient_disjoint(train_ids, test_ids, dataset.patients())


def _load_features(features_dir: Path, sample_id: str, barcodes: Sequence[str]) -> FeatureFile:
    path = feature_path(features_dir, sample_id)
    if not path.is_file():
        raise FileNotFoundError(
            f"No features for sample {sample_id!r} at {path}. Run `rankbygene extract --data "
            f"DIR --out {features_dir} --samples {sample_id} ...` first."
        )
    ff = read_features(path)
    assert_same_spots(ff, barcodes, sample_id)
    return ff


def _mean_ignoring_nan(values: Sequence[float]) -> float:
    """Mean over the finite values; NaN (without numpy's warning) when none is finite."""
    arr = np.asarray(values, dtype=float)
    finite = arr[np.isfinite(arr)]
    return float(finite.mean()) if finite.size else float("nan")


def _score(
    preds: Mapping[str, np.ndarray], targets: Mapping[str, np.ndarray], genes: Sequence[str]
) -> dict[str, Any]:
    """Per-sample, per-sample-mean and pooled metrics of one set of predictions."""
    per_sample = {}
    for sid, pred in preds.items():
        m = gene_metrics(pred, targets[sid])
        per_sample[sid] = {k: m[k] for k in (*SCALAR_METRICS, "n_spots", "n_genes_excluded")}
    ids = list(preds)
    pooled = gene_metrics(
        np.concatenate([preds[s] for s in ids]), np.concatenate([targets[s] for s in ids])
    )
    return {
        "per_sample": per_sample,
        "per_sample_mean": {
            k: _mean_ignoring_nan([per_sample[s][k] for s in ids]) for k in SCALAR_METRICS
        },
        "pooled": {k: pooled[k] for k in (*SCALAR_METRICS, "n_genes_excluded")},
        "pcc_per_gene_pooled": dict(zip(genes, pooled["pcc_per_gene"].tolist(), strict=True)),
    }


def _probe_block(
    fold_preds: list[dict[str, np.ndarray]],
    fold_info: list[dict[str, Any]],
    targets: Mapping[str, np.ndarray],
    genes: Sequence[str],
    config: Any,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Score each fold model and the ensemble; aggregate mean ± std over fold models."""
    folds = []
    for info, preds in zip(fold_info, fold_preds, strict=True):
        s = _score(preds, targets, genes)
        folds.append({**info, **{k: s[k] for k in ("per_sample_mean", "pooled", "per_sample")}})
    test_ids = list(targets)
    ensemble_pred = {s: np.mean([fp[s] for fp in fold_preds], axis=0) for s in test_ids}
    ens = _score(ensemble_pred, targets, genes)
    per_sample = {}
    for sid in test_ids:
        per_sample[sid] = summarise_metrics([f["per_sample"][sid] for f in folds])
        per_sample[sid]["n_spots"] = len(targets[sid])
        per_sample[sid]["ensemble"] = ens["per_sample"][sid]
    block = {
        "summary": summarise_metrics([f["per_sample_mean"] for f in folds]),
        "pooled": summarise_metrics([f["pooled"] for f in folds]),
        "per_sample": per_sample,
        "folds": folds,
        "ensemble": {
            "per_sample_mean": ens["per_sample_mean"],
            "pooled": ens["pooled"],
            "pcc_per_gene_pooled": ens["pcc_per_gene_pooled"],
        },
        "config": asdict(config),
    }
    return block, ensemble_pred


@dataclass
class _EvalInputs:
    """What every gene evaluation reads: a checked split, aligned features, panel, targets.

    Attributes:
        dataset: the dataset.
        train: training sample ids.
        test: test sample ids.
        adatas: sample id → AnnData (raw counts) of every train and test sample.
        feats: sample id → features aligned with the sample's spots.
        genes: the evaluation panel (chosen on the training samples).
        dropped: panel genes dropped (absent from some training sample).
        expr: sample id → preprocessed expression on ``genes`` (N, G) float32.
    """

    dataset: STDataset
    train: list[str]
    test: list[str]
    adatas: dict[str, ad.AnnData]
    feats: dict[str, FeatureFile]
    genes: list[str]
    dropped: list[str]
    expr: dict[str, np.ndarray]


def _load_inputs(
    dataset: STDataset | str | Path,
    features_dir: Path | None,
    train_ids: str | Sequence[str],
    test_ids: str | Sequence[str],
    config: GeneEvalConfig,
) -> _EvalInputs:
    """Check the split, read AnnData and features (none when ``features_dir`` is None),
    choose the panel on the training samples and preprocess every sample's expression."""
    from rankbygene.data import preprocess_expression, read_dataset, select_panel

    ds = read_dataset(dataset) if isinstance(dataset, str | Path) else dataset
    train, test = _as_ids(train_ids), _as_ids(test_ids)
    _check_split(ds, train, test, config.split_unit)

    adatas = {sid: ds[sid].read_adata() for sid in train + test}
    feats = (
        {sid: _load_features(features_dir, sid, adatas[sid].obs_names) for sid in adatas}
        if features_dir is not None
        else {}
    )
    dims = {sid: f.features.shape[1] for sid, f in feats.items()}
    if len(set(dims.values())) > 1:
        raise ValueError(
            f"Feature dims differ between samples {dims} in {features_dir}: extract all "
            "samples with the same encoder (`rankbygene extract --overwrite`)."
        )
    selection = select_panel(
        [adatas[s] for s in train],
        config.panel,
        gene_list=config.gene_list,
        target_sum=config.target_sum,
    )
    genes = list(selection.genes)
    if not genes:
        raise ValueError(
            f"Panel {config.panel!r} selects no gene present in the training samples {train}."
        )
    logger.info("panel %s: %d genes (%d dropped)", config.panel, len(genes), len(selection.dropped))
    expr = {
        sid: np.asarray(
            preprocess_expression(
                adatas[sid],
                genes,
                target_sum=config.target_sum,
                smooth=config.smooth,
                sample_id=sid,
            ),
            dtype=np.float32,
        )
        for sid in adatas
    }
    return _EvalInputs(ds, train, test, adatas, feats, genes, list(selection.dropped), expr)


def _features_info(feats: Mapping[str, FeatureFile], features_dir: Path | None) -> dict[str, Any]:
    """The ``features`` block of the results: directory, encoder, source run, dim
    (all empty for a predictor that reads no features)."""
    if features_dir is None or not feats:
        return {"dir": None, "encoder": None, "source_run": None, "dim": 0}
    first = next(iter(feats.values()))
    return {
        "dir": str(features_dir.resolve()),
        "encoder": first.encoder,
        "source_run": first.source_run,
        "dim": int(first.features.shape[1]),
    }


def single_predictor_evaluation(
    inp: _EvalInputs,
    preds: dict[str, np.ndarray],
    config: GeneEvalConfig,
    features_dir: Path | None,
    probe_name: str,
    settings: Any,
    fold_info: dict[str, Any],
    extra: dict[str, Any],
) -> GeneEvaluation:
    """Score one deterministic predictor (retrieval, a run's expression head).

    Same results keys as ``evaluate_genes``; ``summary`` is mean ± std across test
    samples (there is one model, not five fold models). ``settings`` is the predictor's
    settings dataclass (recorded under ``probes.<name>.config`` and ``config.<name>``);
    ``fold_info`` describes the single "fold"; ``extra`` adds top-level result keys;
    ``features_dir`` is None for a predictor that reads no image features.

    Shape:
        preds[id]: (N_id, G) on ``inp.genes``.
    """
    test = inp.test
    targets = {s: inp.expr[s] for s in test}
    block, ensemble = _probe_block([preds], [fold_info], targets, inp.genes, settings)
    # One deterministic predictor: report the spread across test samples instead.
    block["summary"] = summarise_metrics([block["folds"][0]["per_sample"][s] for s in test])
    results = {
        "split_unit": config.split_unit,
        "panel": config.panel,
        "gene_list": config.gene_list,
        "genes": inp.genes,
        "dropped_genes": inp.dropped,
        "probe": probe_name,
        "primary_probe": probe_name,
        **extra,
        "metric_labels": {
            "summary": "per_sample_mean: per-gene PCC across a sample's spots, mean over "
            "genes, then mean ± std across test samples (one deterministic predictor)",
            "pooled": "pooled: per-gene PCC over all test spots pooled (HEST-Benchmark); "
            "one predictor, std 0",
        },
        "summary": block["summary"],
        "pooled": block["pooled"],
        "per_sample": block["per_sample"],
        "folds": block["folds"],
        "ensemble": block["ensemble"],
        "probes": {probe_name: block},
        "train_samples": inp.train,
        "test_samples": test,
        "n_test_spots": int(sum(len(p) for p in preds.values())),
        "features": _features_info(inp.feats, features_dir),
        "data": str(Path(inp.dataset.root).resolve()),
        "config": {
            **{k_: v for k_, v in config.to_dict().items() if k_ not in ("mlp", "ridge")},
            "probe": probe_name,
            probe_name: asdict(settings),
        },
    }
    return GeneEvaluation(
        _json_safe(results),
        {probe_name: ensemble},
        targets,
        {s: inp.adatas[s] for s in test},
    )


def run_gene_evaluation(
    dataset: STDataset | str | Path,
    features_dir: str | Path,
    train_ids: str | Sequence[str],
    test_ids: str | Sequence[str],
    config: GeneEvalConfig | None = None,
) -> GeneEvaluation:
    """Fit the configured probe(s) on the training samples and score the test samples.

    Args:
        dataset: an STDataset or its directory.
        features_dir: directory of ``{id}.h5`` feature files (``rankbygene extract``).
        train_ids: training sample ids (list or comma string).
        test_ids: test sample ids; their patients must not be in training.
        config: evaluation settings (defaults: top250, MLP probe).

    Returns:
        The results dict plus the predictions, targets and test AnnData.
    """
    config = config or GeneEvalConfig()
    features_dir = Path(features_dir)
    inp = _load_inputs(dataset, features_dir, train_ids, test_ids, config)
    ds, train, test = inp.dataset, inp.train, inp.test
    feats, expr, genes = inp.feats, inp.expr, inp.genes
    X_train = np.concatenate([feats[s].features for s in train])
    Y_train = np.concatenate([expr[s] for s in train])
    groups = np.concatenate([np.full(len(expr[s]), s) for s in train])
    targets = {s: expr[s] for s in test}

    probe_blocks: dict[str, Any] = {}
    predictions: dict[str, dict[str, np.ndarray]] = {}
    for kind in config.probes:
        if kind == "mlp":
            probes = cross_fit_mlp(X_train, Y_train, config.mlp, groups=groups)
            fold_preds = [{s: p.predict(feats[s].features) for s in test} for p in probes]
            fold_info = [
                {
                    "fold": i,
                    "best_epoch": p.best_epoch,
                    "val_mse": p.best_val_loss,
                    "val_curve": p.val_losses,
                }
                for i, p in enumerate(probes)
            ]
            cfg: Any = config.mlp
        else:
            pipe = fit_ridge_probe(X_train, Y_train, config.ridge)
            fold_preds = [{s: pipe.predict(feats[s].features).astype(np.float32) for s in test}]
            fold_info = [
                {
                    "fold": 0,
                    "alpha": float(pipe.named_steps["ridge"].alpha),
                    "pca_components": int(pipe.named_steps["pca"].n_components_),
                }
            ]
            cfg = config.ridge
        probe_blocks[kind], predictions[kind] = _probe_block(
            fold_preds, fold_info, targets, genes, cfg
        )

    primary = config.probes[0]
    results = {
        "split_unit": config.split_unit,
        "panel": config.panel,
        "gene_list": config.gene_list,
        "genes": genes,
        "dropped_genes": inp.dropped,
        "probe": config.probe,
        "primary_probe": primary,
        "metric_labels": {
            "summary": "per_sample_mean: per-gene PCC across a sample's spots, mean over "
            "genes, mean over test samples; mean ± std over fold models",
            "pooled": "pooled: per-gene PCC over all test spots pooled (HEST-Benchmark); "
            "mean ± std over fold models",
        },
        "summary": probe_blocks[primary]["summary"],
        "pooled": probe_blocks[primary]["pooled"],
        "per_sample": probe_blocks[primary]["per_sample"],
        "folds": probe_blocks[primary]["folds"],
        "ensemble": probe_blocks[primary]["ensemble"],
        "probes": probe_blocks,
        "train_samples": train,
        "test_samples": test,
        "n_train_spots": len(X_train),
        "n_test_spots": int(sum(len(t) for t in targets.values())),
        "features": _features_info(feats, features_dir),
        "data": str(Path(ds.root).resolve()),
        "config": config.to_dict(),
    }
    return GeneEvaluation(
        _json_safe(results), predictions, targets, {s: inp.adatas[s] for s in test}
    )


def _json_safe(obj: Any) -> Any:
    """Replace NaN/inf by None and numpy scalars by Python ones (strict JSON)."""
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _fmt(stat: Mapping[str, Any] | None) -> str:
    if not stat or stat.get("mean") is None:
        return "n/a"
    return f"{stat['mean']:.4f} ± {stat['std']:.4f}"


def _results_markdown(results: Mapping[str, Any]) -> str:
    """A table a person reads: one row per probe, then per test sample."""
    feats = results["features"]
    lines = [
        "# Gene-expression prediction",
        "",
        f"- features: `{feats['encoder']}` (run: {feats['source_run'] or 'none, frozen encoder'})"
        if feats["encoder"]
        else "- features: none (the predictor reads no image features)",
        f"- panel: {results['panel']} ({len(results['genes'])} genes, "
        f"{len(results['dropped_genes'])} dropped)",
        f"- train samples: {', '.join(results['train_samples'])}",
        f"- test samples: {', '.join(results['test_samples'])}",
        *([f"- retrieval heads: run {results['run']}"] if results.get("run") else []),
        *(f"- {label}" for label in results["metric_labels"].values()),
        "",
        "| probe | PCC (per-sample mean) | PCC (pooled) | MSE | MAE |",
        "|---|---|---|---|---|",
    ]
    for name, block in results["probes"].items():
        s, p = block["summary"], block["pooled"]
        lines.append(
            f"| {name} | {_fmt(s['pcc'])} | {_fmt(p['pcc'])} | {_fmt(s['mse'])} | "
            f"{_fmt(s['mae'])} |"
        )
    lines += ["", "| probe | test sample | spots | PCC | MSE | MAE |", "|---|---|---|---|---|---|"]
    for name, block in results["probes"].items():
        for sid, m in block["per_sample"].items():
            lines.append(
                f"| {name} | {sid} | {m['n_spots']} | {_fmt(m['pcc'])} | "
                f"{_fmt(m['mse'])} | {_fmt(m['mae'])} |"
            )
    return "\n".join(lines) + "\n"


def write_gene_evaluation(evaluation: GeneEvaluation, out: str | Path) -> Path:
    """Write ``results.json``, ``results.md``, ``config.yaml`` and ``predictions/{id}.h5ad``.

    Prediction files hold layers ``target`` and ``predicted`` (the primary probe's
    mean over fold models), ``predicted_<probe>`` for every probe, obs copied from
    the dataset and ``obsm["spatial"]``.

    Returns:
        The output directory.
    """
    out = Path(out)
    pred_dir = out / keys.PREDICTIONS_DIR
    pred_dir.mkdir(parents=True, exist_ok=True)
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
            "panel": res["panel"],
            "probe": res["probe"],
            "encoder": res["features"]["encoder"] or "none",
        }
        path = pred_dir / f"{sid}{keys.ST_SUFFIX}"
        with atomic_path(path) as tmp:
            pa.write_h5ad(tmp)
    write_text_atomic(out / keys.RESULTS_JSON, json.dumps(res, indent=2) + "\n")
    write_text_atomic(out / keys.RESULTS_MD, _results_markdown(res))
    write_text_atomic(out / keys.RUN_CONFIG, yaml.safe_dump(res["config"], sort_keys=False))
    logger.info("wrote %s", out / keys.RESULTS_JSON)
    return out


def evaluate_genes(
    dataset: STDataset | str | Path,
    features_dir: str | Path,
    train_ids: str | Sequence[str],
    test_ids: str | Sequence[str],
    *,
    panel: str | None = None,
    probe: ProbeKind | None = None,
    gene_list: str | Path | None = None,
    config: GeneEvalConfig | None = None,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate features by gene-expression prediction; optionally write the outputs.

    Args:
        dataset: an STDataset or its directory.
        features_dir: ``rankbygene extract`` output for this dataset.
        train_ids: training sample ids.
        test_ids: test sample ids (patients disjoint from training).
        panel: overrides ``config.panel`` (``top250``, ``hvg50``, a gene-list file).
        probe: overrides ``config.probe`` (``mlp``, ``ridge``, ``both``).
        gene_list: overrides ``config.gene_list``.
        config: full settings; defaults to :class:`GeneEvalConfig`.
        out: if given, write results.json/.md, config.yaml and predictions there.

    Returns:
        The results dict (see the module docstring and ``results.json``).
    """
    config = config or GeneEvalConfig()
    overrides: dict[str, Any] = {}
    if panel is not None:
        overrides["panel"] = str(panel)
    if probe is not None:
        overrides["probe"] = probe
    if gene_list is not None:
        overrides["gene_list"] = str(gene_list)
    config = replace(config, **overrides)
    evaluation = run_gene_evaluation(dataset, features_dir, train_ids, test_ids, config)
    if out is not None:
        write_gene_evaluation(evaluation, out)
    return evaluation.results
