"""Gene-expression predictors behind one interface (:class:`Predictor`).

``mlp`` and ``ridge`` are probes fitted on the training spots' features; ``head`` and
``retrieval`` are a trained run's own predictors (the method declares which it has);
``position`` is the image-free baseline. :func:`build_predictors` makes them from a
``probe`` name; :func:`predictor_from_state` rebuilds a saved one (``rankbygene fit``).
"""

from rankbygene.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "Predictor": "rankbygene.evaluation.predictors.base",
        "SpotSet": "rankbygene.evaluation.predictors.base",
        "PredictorState": "rankbygene.evaluation.predictors.base",
        "PROBES": "rankbygene.evaluation.predictors.settings",
        "MLPProbeConfig": "rankbygene.evaluation.predictors.settings",
        "RidgeProbeConfig": "rankbygene.evaluation.predictors.settings",
        "RetrievalSettings": "rankbygene.evaluation.predictors.settings",
        "PositionSettings": "rankbygene.evaluation.predictors.settings",
        "MLPProbePredictor": "rankbygene.evaluation.predictors.mlp",
        "RidgeProbePredictor": "rankbygene.evaluation.predictors.ridge",
        "HeadPredictor": "rankbygene.evaluation.predictors.head",
        "RetrievalPredictor": "rankbygene.evaluation.predictors.retrieval",
        "PositionPredictor": "rankbygene.evaluation.predictors.position",
        "build_predictors": "rankbygene.evaluation.predictors.registry",
        "predictor_from_state": "rankbygene.evaluation.predictors.registry",
        "SAVABLE": "rankbygene.evaluation.predictors.registry",
    },
)
