"""Slide-level evaluation of features: ABMIL classification (AUC) and survival (C-index).

:mod:`.config` holds the settings, :mod:`.labels` reads label CSVs, :mod:`.cv` runs the
cross-validation; the ABMIL model and survival maths are :mod:`rankbygene.evaluation.mil`.
"""

from rankbygene.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "SlideEvalConfig": "rankbygene.evaluation.slides.config",
        "SlideLabels": "rankbygene.evaluation.slides.labels",
        "read_slide_labels": "rankbygene.evaluation.slides.labels",
        "evaluate_slides": "rankbygene.evaluation.slides.cv",
        "slide_folds": "rankbygene.evaluation.slides.cv",
        "slides_markdown": "rankbygene.evaluation.slides.cv",
    },
)
