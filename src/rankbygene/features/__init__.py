"""Features of spots and slides from frozen encoders, in the CLAM/TRIDENT file format.

- :mod:`~rankbygene.features.extract`: spot patches of a dataset through an encoder;
- :mod:`~rankbygene.features.runs`: a training run's spot features (the extractor its
  method declares);
- :mod:`~rankbygene.features.slides`: tissue tiles of whole-slide images;
- :mod:`~rankbygene.features.io`: the one reader/writer of feature files;
- :mod:`~rankbygene.features.bags`: per-slide bags for slide-level models.
"""

from rankbygene.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "FEATURES_SUMMARY": "rankbygene.features.io",
        "FeatureFile": "rankbygene.features.io",
        "assert_same_spots": "rankbygene.features.io",
        "feature_path": "rankbygene.features.io",
        "list_feature_files": "rankbygene.features.io",
        "read_features": "rankbygene.features.io",
        "read_summary": "rankbygene.features.io",
        "write_features": "rankbygene.features.io",
        "SlideBags": "rankbygene.features.bags",
        "extract_features": "rankbygene.features.extract",
        "feature_name": "rankbygene.features.extract",
        "obsm_key": "rankbygene.features.extract",
        "extract_run_features": "rankbygene.features.runs",
        "extract_slide_features": "rankbygene.features.slides",
    },
)
