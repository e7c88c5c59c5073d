"""What every gene evaluation reads: a checked split, aligned features, the panel, targets."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np

from rankbygene import keys
from rankbygene.data import (
    STDataset,
    assert_patient_disjoint,
    preprocess_expression,
    read_dataset,
    select_panel,
)
from rankbygene.evaluation.genes.config import GeneEvalConfig
from rankbygene.evaluation.predictors.base import SpotSet
from rankbygene.features.io import FeatureFile, assert_same_spots, feature_path, read_features
from rankbygene.text import parse_ids

logger = logging.getLogger(__name__)

__all__ = ["EvalInputs", "check_split", "load_inputs"]


@dataclass
class EvalInputs:
    """The inputs of one evaluation.

    Attributes:
        dataset: the dataset.
        train: training sample ids.
        test: test sample ids.
        adatas: sample id → AnnData (raw counts) of every train and test sample.
        feats: sample id → features aligned with the sample's spots ({} when none read).
        features_dir: where the features came from (None when none read).
        genes: the evaluation panel.
        dropped: genes of a list file absent from some training sample.
        panel: the panel spec (``top250``, a list file) or the fixed panel's file.
        panel_source: where the panel came from, in words (for results.json).
        expr: sample id → preprocessed expression on ``genes``. Shape: (N_id, G).
    """

    dataset: STDataset
    train: list[str]
    test: list[str]
    adatas: dict[str, ad.AnnData]
    feats: dict[str, FeatureFile]
    features_dir: Path | None
    genes: list[str]
    dropped: list[str]
    panel: str
    panel_source: str
    expr: dict[str, np.ndarray]

    def spots(self, ids: Sequence[str]) -> SpotSet:
        """The spots of ``ids`` in order, as predictors take them."""
        return SpotSet(
            sample_ids=np.concatenate([np.full(len(self.expr[s]), s, dtype=object) for s in ids]),
            targets=np.concatenate([self.expr[s] for s in ids]),
            features=np.concatenate([self.feats[s].features for s in ids]) if self.feats else None,
            positions=_positions(self.adatas, ids),
            adatas={s: self.adatas[s] for s in ids},
        )


def _positions(adatas: dict[str, ad.AnnData], ids: Sequence[str]) -> np.ndarray | None:
    """(N, 2) (column, row) array coordinates of the samples' spots, None if any lacks them."""
    columns = [keys.OBS_ARRAY_COL, keys.OBS_ARRAY_ROW]
    if not all(set(columns) <= set(adatas[s].obs) for s in ids):
        return None
    return np.concatenate([adatas[s].obs[columns].to_numpy(dtype=np.float64) for s in ids])


def check_split(
    dataset: STDataset,
    train_ids: list[str],
    test_ids: list[str],
    split_unit: str = "patient",
    *,
    require_test: bool = True,
) -> None:
    """Refuse empty, unknown, overlapping or (unless ``split_unit="section"``) patient-leaking
    splits; ``require_test=False`` accepts training samples alone (fitting a predictor)."""
    if not train_ids or (require_test and not test_ids):
        need = "Both --train-samples and --test-samples" if require_test else "--train-samples"
        raise ValueError(f"{need} need at least one sample id.")
    known = set(dataset.ids)
    unknown = [s for s in train_ids + test_ids if s not in known]
    if unknown:
        raise ValueError(
            f"Unknown sample ids {unknown} in {dataset.root}; known ids: {sorted(known)}."
        )
    both = sorted(set(train_ids) & set(test_ids))
    if both:
        raise ValueError(f"Samples {both} are in both the training and the test samples.")
    if not test_ids:
        return
    if split_unit == "section":
        logger.warning(
            "split_unit=section: test samples may share a patient with training; the "
            "scores measure within-patient generalisation."
        )
        return
    assert_patient_disjoint(
        train_ids,
        test_ids,
        dataset.patients(),
        override="pass --split-unit section to score within patients (the results say so)",
    )


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


def _missing_genes(adatas: dict[str, ad.AnnData], genes: list[str]) -> str:
    """Per sample, the genes of ``genes`` it lacks ('' when none is missing)."""
    gene_arr = np.asarray(genes)
    parts = []
    for sid, adata in adatas.items():
        missing = gene_arr[adata.var_names.get_indexer(genes) < 0]
        if len(missing):
            more = " ..." if len(missing) > 10 else ""
            parts.append(f"sample {sid!r} lacks {len(missing)}: {missing[:10].tolist()}{more}")
    return "; ".join(parts)


def load_inputs(
    dataset: STDataset | str | Path,
    features_dir: str | Path | None,
    train_ids: str | Sequence[str],
    test_ids: str | Sequence[str],
    config: GeneEvalConfig,
    *,
    genes: list[str] | None = None,
    genes_source: str = "",
    require_test: bool = True,
) -> EvalInputs:
    """Check the split, read AnnData and features, fix the panel and preprocess expression.

    Args:
        dataset: an STDataset or its directory.
        features_dir: ``{id}.h5`` feature files of every sample, or None to read none.
        train_ids: training sample ids (list or comma string).
        test_ids: test sample ids.
        config: panel, preprocessing and split settings.
        genes: a fixed panel (a trained run's ``genes.txt``); None selects
            ``config.panel`` on the training samples.
        genes_source: the file a fixed panel came from, for the results.
        require_test: refuse an empty test set (False: fitting a predictor only).

    Raises:
        ValueError: a bad split, features of different dims, a panel with no gene, or
            samples lacking genes of a fixed panel.
        FileNotFoundError: a sample without features.
    """
    ds = read_dataset(dataset) if isinstance(dataset, str | Path) else dataset
    train, test = parse_ids(train_ids), parse_ids(test_ids)
    check_split(ds, train, test, config.split_unit, require_test=require_test)
    adatas = {sid: ds[sid].read_adata() for sid in train + test}
    feats_dir = Path(features_dir) if features_dir is not None else None
    feats = (
        {sid: _load_features(feats_dir, sid, adatas[sid].obs_names) for sid in adatas}
        if feats_dir is not None
        else {}
    )
    dims = {sid: f.features.shape[1] for sid, f in feats.items()}
    if len(set(dims.values())) > 1:
        raise ValueError(
            f"Feature dims differ between samples {dims} in {feats_dir}: extract all "
            "samples with the same encoder (`rankbygene extract --overwrite`)."
        )
    if genes is not None:
        missing = _missing_genes(adatas, genes)
        if missing:
            raise ValueError(
                f"The panel of {genes_source} has {len(genes)} genes, but {missing}. Evaluate "
                "on samples that hold the run's panel."
            )
        dropped: list[str] = []
        panel, source = genes_source, f"the trained run's own panel ({genes_source})"
    else:
        selection = select_panel(
            [adatas[s] for s in train],
            config.panel,
            gene_list=config.gene_list,
            target_sum=config.target_sum,
        )
        genes, dropped = list(selection.genes), list(selection.dropped)
        if not genes:
            raise ValueError(
                f"Panel {config.panel!r} selects no gene present in the training samples {train}."
            )
        within = f" within {config.gene_list}" if config.gene_list else ""
        panel = config.panel
        source = f"{config.panel}{within}, selected on the training samples {', '.join(train)}"
    logger.info("panel: %d genes (%s; %d dropped)", len(genes), source, len(dropped))
    expr = {
        sid: preprocess_expression(
            adatas[sid], genes, target_sum=config.target_sum, smooth=config.smooth, sample_id=sid
        ).astype(np.float32, copy=False)
        for sid in adatas
    }
    return EvalInputs(
        ds, train, test, adatas, feats, feats_dir, genes, dropped, panel, source, expr
    )
