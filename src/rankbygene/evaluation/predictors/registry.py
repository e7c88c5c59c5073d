"""Making the predictors of one evaluation from its ``probe`` name."""

from __future__ import annotations

from rankbygene.evaluation.predictors.base import Predictor
from rankbygene.evaluation.predictors.head import HeadPredictor
from rankbygene.evaluation.predictors.mlp import MLPProbePredictor
from rankbygene.evaluation.predictors.position import PositionPredictor
from rankbygene.evaluation.predictors.retrieval import RetrievalPredictor
from rankbygene.evaluation.predictors.ridge import RidgeProbePredictor
from rankbygene.evaluation.predictors.settings import (
    PROBES,
    MLPProbeConfig,
    PositionSettings,
    RetrievalSettings,
    RidgeProbeConfig,
)
from rankbygene.training import TrainedRun

__all__ = ["build_predictors"]


def build_predictors(
    probe: str,
    *,
    mlp: MLPProbeConfig | None = None,
    ridge: RidgeProbeConfig | None = None,
    retrieval: RetrievalSettings | None = None,
    position: PositionSettings | None = None,
    run: TrainedRun | None = None,
) -> list[Predictor]:
    """The predictors of one evaluation, primary first.

    Raises:
        ValueError: an unknown probe, or a run's own predictor without the run (or one
            its method does not declare).
    """
    if probe not in PROBES:
        raise ValueError(f"Unknown probe {probe!r}; choose one of {', '.join(PROBES)}.")
    if probe in ("head", "retrieval"):
        if run is None:
            raise ValueError(
                f"--probe {probe} scores a trained run's own predictor: pass --run RUN."
            )
        if probe not in run.method.predictors:
            own = ", ".join(run.method.predictors) or "none"
            raise ValueError(
                f"{run.path} is a {run.method.name} run; its own predictors are: {own}. "
                "Use --probe mlp|ridge to probe its features."
            )
        return [HeadPredictor(run) if probe == "head" else RetrievalPredictor(run, retrieval)]
    if probe == "position":
        return [PositionPredictor(position)]
    kinds = ("mlp", "ridge") if probe == "both" else (probe,)
    return [MLPProbePredictor(mlp) if k == "mlp" else RidgeProbePredictor(ridge) for k in kinds]
