"""Making the predictors of one evaluation from its ``probe`` name."""

from __future__ import annotations

from rankbygene.evaluation.predictors.base import Predictor, PredictorState
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

__all__ = ["SAVABLE", "build_predictors", "predictor_from_state"]

_CLASSES: dict[str, type[Predictor]] = {
    cls.name: cls
    for cls in (MLPProbePredictor, RidgeProbePredictor, HeadPredictor, RetrievalPredictor)
}
SAVABLE: tuple[str, ...] = tuple(_CLASSES)
"""Predictors that can be saved (``rankbygene fit --probe``) and rebuilt from their state."""


def predictor_from_state(name: str, state: PredictorState) -> Predictor:
    """Rebuild a saved predictor of kind ``name`` (see :meth:`Predictor.state`).

    Raises:
        ValueError: an unknown kind, or a state that does not describe it.
    """
    if name not in _CLASSES:
        raise ValueError(f"Unknown saved predictor kind {name!r}; known: {', '.join(SAVABLE)}.")
    return _CLASSES[name].from_state(state)


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
        if probe == "head":
            return [HeadPredictor.from_run(run)]
        return [RetrievalPredictor.from_run(run, retrieval)]
    if probe == "position":
        return [PositionPredictor(position)]
    kinds = ("mlp", "ridge") if probe == "both" else (probe,)
    return [MLPProbePredictor(mlp) if k == "mlp" else RidgeProbePredictor(ridge) for k in kinds]
