"""Feature extraction with frozen encoders and the CLAM/TRIDENT feature-file format."""

from rankbygene.features.extract import extract_features, feature_name, obsm_key
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
    "extract_features",
    "feature_name",
    "feature_path",
    "list_feature_files",
    "obsm_key",
    "read_features",
    "read_summary",
    "write_features",
]
