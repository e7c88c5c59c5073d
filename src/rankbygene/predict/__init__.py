"""From a trained model to gene-expression maps of new slides and sections.

- :mod:`.fit`: ``rankbygene fit``, a predictor fitted as ``evaluate genes`` fits it, saved;
- :mod:`.saved`: the saved predictor ``PREDICTOR/`` (weights, genes, card);
- :mod:`.identity` / :mod:`.encoders`: what encoder made features, checked before predicting;
- :mod:`.slides` / :mod:`.sections`: ``rankbygene predict --slides`` / ``--data``;
- :mod:`.outputs` / :mod:`.maps`: the h5ad, GeoJSON, summary and PNG maps they write.
"""

from rankbygene.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "PREDICT": "rankbygene.predict.settings",
        "PredictSettings": "rankbygene.predict.settings",
        "EncoderIdentity": "rankbygene.predict.identity",
        "check_same_encoder": "rankbygene.predict.identity",
        "EncoderSource": "rankbygene.predict.encoders",
        "open_encoder": "rankbygene.predict.encoders",
        "SavedPredictor": "rankbygene.predict.saved",
        "load_predictor": "rankbygene.predict.saved",
        "write_predictor": "rankbygene.predict.saved",
        "fit_predictor": "rankbygene.predict.fit",
        "predict_slides": "rankbygene.predict.slides",
        "predict_sections": "rankbygene.predict.sections",
    },
)
