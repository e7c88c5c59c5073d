"""``rankbygene fit``: fit a predictor on every training spot and save it (``PREDICTOR/``).

The predictor is fitted exactly as ``evaluate genes`` fits it
(:func:`rankbygene.evaluation.genes.fit_gene_predictors`: the panel chosen on the
training samples, targets normalised, log1p'd and smoothed, the MLP probe's k fold
models each kept at its best validation epoch), so the saved predictor predicts what
the evaluation's ``predicted`` layer holds. The card records the scale of its
predictions and the identity of the encoder behind the training features.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rankbygene.data import STDataset
from rankbygene.evaluation.genes import GeneEvalConfig, fit_gene_predictors
from rankbygene.evaluation.predictors import SAVABLE
from rankbygene.features.io import FeatureFile
from rankbygene.features.runs import SECTION_ENCODER
from rankbygene.models import weights_sha256
from rankbygene.predict.identity import EncoderIdentity, same_run
from rankbygene.predict.saved import check_predictor_out, write_predictor
from rankbygene.predict.settings import PATCH_UM_TOLERANCE
from rankbygene.training import TrainedRun, load_run

logger = logging.getLogger(__name__)

__all__ = ["dataset_patch_um", "features_identity", "fit_predictor", "prediction_scale"]

EXPRESSION_UNITS = "log1p(norm.) expression"


def dataset_patch_um(dataset: STDataset, sample_ids: Sequence[str]) -> float | None:
    """The physical side (µm) of the samples' spot patches; None if not recorded.

    Raises:
        ValueError: samples whose patches differ in size (features of different windows).
    """
    sizes = {}
    for sid in sample_ids:
        with dataset[sid].patches() as store:
            um = store.pixel_size_um
            sizes[sid] = None if um is None else store.patch_size * um
    known = {s: v for s, v in sizes.items() if v is not None}
    if not known:
        return None
    lo, hi = min(known.values()), max(known.values())
    if hi - lo > PATCH_UM_TOLERANCE * lo:
        shown = ", ".join(f"{s}: {v:.1f} µm" for s, v in known.items())
        raise ValueError(
            f"The training samples' patches cover different windows ({shown}); re-import "
            "them with one --patch-um so their features are comparable."
        )
    if len(known) < len(sizes):
        logger.warning("patch size not recorded for some samples; using %.1f µm", lo)
    return float(sum(known.values()) / len(known))


def features_identity(files: Mapping[str, FeatureFile], patch_um: float | None) -> EncoderIdentity:
    """The identity of the encoder behind feature files; they must all agree on it.

    A file that does not record its weights digest but names an existing run gets the
    digest of that run's network (features extracted before digests were recorded).

    Raises:
        ValueError: files from different encoders.
    """
    seen = {(f.encoder, f.source_run, f.weights_sha256) for f in files.values()}
    if len(seen) > 1:
        where = sorted({str(f.path.parent) for f in files.values() if f.path is not None})
        raise ValueError(
            f"The features in {', '.join(where)} come from different encoders "
            f"({sorted(map(str, seen))}); extract every sample with one encoder "
            "(`rankbygene extract --overwrite`)."
        )
    first = next(iter(files.values()))
    run = first.source_run
    digest = first.weights_sha256
    if digest is None and run is not None and Path(run).is_dir():
        trained = load_run(run)  # features extracted before digests were recorded
        net = trained.histogene() if first.encoder == SECTION_ENCODER else trained.encoder()
        digest = weights_sha256(net)
    if digest is None:
        logger.warning(
            "features in %s do not record their encoder's weights digest; predict can check "
            "only the encoder name and run. Re-extract them to record it.",
            first.path.parent if first.path is not None else "memory",
        )
    return EncoderIdentity(
        encoder=first.encoder,
        source_run=str(Path(run).resolve()) if run else None,
        weights_sha256=digest,
        transform=dict(first.attrs.get("transform") or {}),
        embed_dim=int(first.features.shape[1]),
        patch_um=patch_um,
    )


def prediction_scale(config: GeneEvalConfig, run: TrainedRun | None) -> dict[str, Any]:
    """The scale of a predictor's output (the card's ``scale``).

    A run's head predicts on the targets the run was trained on; every other predictor
    on the evaluation's targets.
    """
    if run is not None and config.probe == "head":
        target_sum, smooth = run.config.target_sum, run.config.smooth
    else:
        target_sum, smooth = config.target_sum, config.smooth
    return {
        "units": EXPRESSION_UNITS,
        "target_sum": float(target_sum),
        "log1p": True,
        "smooth": bool(smooth),
        "description": (
            f"log1p of counts normalised to {target_sum:g} per spot (all genes)"
            + (
                ", spatially smoothed over each spot's grid neighbours for training; "
                "predictions on tiles or spots are per tile or spot (not smoothed)"
                if smooth
                else ""
            )
        ),
    }


def fit_predictor(
    dataset: STDataset | str | Path,
    features_dir: str | Path,
    train_ids: str | Sequence[str],
    out: str | Path,
    *,
    config: GeneEvalConfig | None = None,
    overwrite: bool = False,
) -> Path:
    """Fit ``config.probe`` on every spot of the training samples and save it to ``out``.

    Args:
        dataset: an STDataset or its directory.
        features_dir: ``rankbygene extract`` output for the training samples.
        train_ids: training sample ids.
        out: the predictor directory (see :mod:`rankbygene.predict.saved`).
        config: panel, probe and preprocessing (``evaluate genes``' settings); ``probe``
            must be one of mlp, ridge, head, retrieval (``run`` for the last two).
        overwrite: replace a predictor already in ``out``.

    Returns:
        ``out``.

    Raises:
        ValueError: a probe that cannot be saved, an existing predictor, a bad panel or
            features from mixed encoders.
    """
    config = config or GeneEvalConfig()
    if config.probe not in SAVABLE:
        raise ValueError(
            f"--probe {config.probe} cannot be saved as one predictor; choose one of "
            f"{', '.join(SAVABLE)}."
        )
    check_predictor_out(out, overwrite=overwrite)  # before any work
    fitted = fit_gene_predictors(dataset, features_dir, train_ids, (), config, require_test=False)
    inp, (predictor,) = fitted.inputs, fitted.predictors
    if fitted.run is not None and not same_run(
        next(iter(inp.feats.values())).source_run, str(fitted.run.path)
    ):
        logger.warning("the features in %s do not come from run %s", features_dir, fitted.run.path)
    patch_um = dataset_patch_um(inp.dataset, inp.train)
    card = {
        "scale": prediction_scale(config, fitted.run),
        "panel": {
            "spec": inp.panel,
            "gene_list": config.gene_list,
            "source": inp.panel_source,
            "dropped": inp.dropped,
        },
        "encoder": features_identity({s: inp.feats[s] for s in inp.train}, patch_um).to_dict(),
        "training": {
            "data": str(Path(inp.dataset.root).resolve()),
            "samples": inp.train,
            "n_spots": int(sum(len(inp.expr[s]) for s in inp.train)),
            "features": str(Path(features_dir).resolve()),
        },
        "config": config.to_dict(),
    }
    return write_predictor(out, predictor, inp.genes, card, overwrite=overwrite)
