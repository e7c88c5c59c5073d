"""Feature extraction with frozen encoders and the CLAM/TRIDENT feature-file format."""

from rankbygene.features.io import (
    FEATURES_SUMMARY,
    FeatureFile,
    assert_same_spots,
    feature_path,
    list_feature_files,
    read_features,
    read_summary,
    write_features,
)

__all__ = [
    "FEATURES_SUMMARY",
    "FeatureFile",
    "assert_same_spots",
    "feature_path",
    "list_feature_files",
    "read_features",
    "read_summary",
    "write_features",
]
