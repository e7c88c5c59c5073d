"""Lightning training of gene-guided image encoders (docs/method.md §2–4).

``TrainConfig`` is the run's settings, ``train`` runs it, ``load_run`` opens a finished
run directory (:mod:`rankbygene.training.artifacts`).
"""

from rankbygene.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "TrainConfig": "rankbygene.training.config",
        "TrainedRun": "rankbygene.training.artifacts",
        "load_run": "rankbygene.training.artifacts",
        "resolve_config": "rankbygene.training.run",
        "train": "rankbygene.training.run",
    },
)
