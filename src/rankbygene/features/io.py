"""Feature files in the CLAM/TRIDENT layout: ``FEATS/{sample_id}.h5``.

Each file holds ``features`` (N × D float32), ``coords`` (N × 2, patch centres in
full-resolution pixels), ``barcode`` (N × 1 bytes, as HEST's patch files) and attrs
naming the encoder, its source run and its eval transform (JSON). A directory of
feature files also holds ``features.json`` summarising encoder, samples and dims.
Writes are atomic (temporary file + ``os.replace``) so an interrupted extraction
never leaves a half-written file that a later run would skip.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from rankbygene import keys
from rankbygene.fileio import atomic_path, open_hdf5, read_json, write_json
from rankbygene.keys import FEATURES_SUMMARY

logger = logging.getLogger(__name__)

#: What to do about a damaged feature file.
REEXTRACT = "re-extract it (`rankbygene extract ... --overwrite`)"

__all__ = [
    "FEATURES_SUMMARY",
    "REEXTRACT",
    "FeatureFile",
    "assert_same_spots",
    "feature_matrix_shape",
    "feature_path",
    "list_feature_files",
    "read_feature_matrix",
    "read_features",
    "read_summary",
    "update_summary",
    "write_features",
]


@dataclass(frozen=True)
class FeatureFile:
    """One sample's features as read from ``FEATS/{id}.h5``.

    Attributes:
        features: (N, D) float32 embeddings, one row per spot.
        coords: (N, 2) patch centres, x then y, full-resolution pixels.
        barcodes: (N,) spot barcodes (str), in the dataset's spot order.
        attrs: file attributes; ``encoder`` (str), ``source_run`` (str or None),
            ``transform`` (dict parsed from JSON) and any extra ones.
        path: where it was read from.
    """

    features: np.ndarray
    coords: np.ndarray
    barcodes: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def sample_id(self) -> str | None:
        """The sample id (file stem), if read from a file."""
        return self.path.stem if self.path is not None else None

    @property
    def encoder(self) -> str:
        """Name of the encoder that produced the features."""
        return str(self.attrs.get(keys.FEAT_ATTR_ENCODER, ""))

    @property
    def name(self) -> str:
        """Display name: the source run directory's name, else the encoder's."""
        run = self.source_run
        return Path(run).name if run else self.encoder

    @property
    def source_run(self) -> str | None:
        """Training run directory the encoder came from (None for a frozen encoder)."""
        return self.attrs.get(keys.FEAT_ATTR_SOURCE_RUN)

    @property
    def weights_sha256(self) -> str | None:
        """Digest of the encoder's weights (``models.weights_sha256``); None when the
        file does not record it (CLAM/TRIDENT files, older extractions)."""
        return self.attrs.get(keys.FEAT_ATTR_WEIGHTS_SHA256) or None


def feature_path(features_dir: str | Path, sample_id: str) -> Path:
    """Path of one sample's feature file: ``features_dir/{sample_id}.h5``."""
    return Path(features_dir) / f"{sample_id}{keys.PATCHES_SUFFIX}"


def list_feature_files(features_dir: str | Path) -> dict[str, Path]:
    """Sample id → feature file for every ``*.h5`` in a features directory (sorted by id)."""
    root = Path(features_dir)
    return {p.stem: p for p in sorted(root.glob(f"*{keys.PATCHES_SUFFIX}"))}


def _attr_value(value: Any) -> Any:
    """HDF5 attributes cannot hold None or dicts: store None as '' and dicts as JSON."""
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return json.dumps(dict(value), sort_keys=True)
    return value


def write_features(
    path: str | Path,
    features: np.ndarray,
    coords: np.ndarray,
    barcodes: Iterable[str] | np.ndarray,
    attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Write one feature file atomically.

    Args:
        path: destination ``.h5``.
        features: embeddings (stored as float32).
        coords: patch centres.
        barcodes: spot barcodes (stored as N × 1 bytes, as HEST).
        attrs: encoder name, source run, transform (dict → JSON) and extras.

    Returns:
        The written path.

    Shape:
        features: (N, D); coords: (N, 2); barcodes: (N,).
    """
    path = Path(path)
    feats = np.asarray(features, dtype=np.float32)
    coords = np.asarray(coords)
    codes = np.asarray([str(b) for b in barcodes], dtype="S")
    if feats.ndim != 2 or coords.shape != (len(feats), 2) or codes.shape != (len(feats),):
        raise ValueError(
            f"Feature file {path}: features {feats.shape}, coords {coords.shape} and "
            f"{codes.shape[0]} barcodes must describe the same N spots."
        )
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset(keys.FEAT_FEATURES, data=feats)
        f.create_dataset(keys.FEAT_COORDS, data=coords)
        f.create_dataset(keys.FEAT_BARCODE, data=codes[:, None])
        for name, value in (attrs or {}).items():
            f.attrs[name] = _attr_value(value)
    return path


def read_features(path: str | Path) -> FeatureFile:
    """Read a feature file written by :func:`write_features` (or CLAM/TRIDENT).

    Args:
        path: a ``.h5`` feature file.

    Returns:
        The features, coords, decoded barcodes and attrs (transform parsed from JSON,
        empty source run as None).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No feature file {path}. Run `rankbygene extract --data DIR --out {path.parent} ...` "
            "first."
        )
    with open_hdf5(path, fix=REEXTRACT) as f:
        if keys.FEAT_FEATURES not in f:
            raise ValueError(f"{path} has no '{keys.FEAT_FEATURES}' dataset: not a feature file.")
        feats = f[keys.FEAT_FEATURES][()].astype(np.float32, copy=False)
        _check_finite(feats, path)
        coords = f[keys.FEAT_COORDS][()] if keys.FEAT_COORDS in f else np.zeros((len(feats), 2))
        if keys.FEAT_BARCODE in f:
            raw = np.asarray(f[keys.FEAT_BARCODE][()]).reshape(-1)
            barcodes = np.array([b.decode() if isinstance(b, bytes) else str(b) for b in raw])
        else:
            barcodes = np.array([], dtype=str)
        attrs: dict[str, Any] = {}
        for name, value in f.attrs.items():
            if isinstance(value, bytes):
                value = value.decode()
            elif isinstance(value, np.generic):
                value = value.item()
            attrs[name] = value
    if isinstance(attrs.get(keys.FEAT_ATTR_TRANSFORM), str) and attrs[keys.FEAT_ATTR_TRANSFORM]:
        attrs[keys.FEAT_ATTR_TRANSFORM] = json.loads(attrs[keys.FEAT_ATTR_TRANSFORM])
    if attrs.get(keys.FEAT_ATTR_SOURCE_RUN) == "":
        attrs[keys.FEAT_ATTR_SOURCE_RUN] = None
    return FeatureFile(feats, coords, barcodes, attrs, path)


def _check_finite(features: np.ndarray, path: str | Path) -> None:
    """Refuse NaN/inf features (a bf16 overflow, a broken encoder): they score as NaN."""
    n_bad = int(features.size - np.count_nonzero(np.isfinite(features)))
    if n_bad:
        raise ValueError(
            f"{path}: features hold {n_bad} NaN/inf value(s); {REEXTRACT} (without --bf16 if "
            "it was used)"
        )


def feature_matrix_shape(path: str | Path) -> tuple[int, int]:
    """(n, D) of a file's ``features`` from its HDF5 header (no data read).

    CLAM stores bags as (1, n, D); leading axes are folded into n.

    Raises:
        ValueError: no ``features`` dataset, or a file without any row.
    """
    with open_hdf5(path, fix=REEXTRACT) as f:
        if keys.FEAT_FEATURES not in f:
            raise ValueError(f"{path} has no '{keys.FEAT_FEATURES}' dataset: not a feature file.")
        shape = tuple(f[keys.FEAT_FEATURES].shape)
    n = int(np.prod(shape[:-1])) if len(shape) >= 2 else 0
    if n == 0:
        raise ValueError(f"{path}: features of shape {shape}: no patches in this file.")
    return n, int(shape[-1])


def read_feature_matrix(path: str | Path) -> np.ndarray:
    """Only the ``features`` of a file, as (n, D) float32 (one contiguous read).

    Shape:
        returns (n, D); a CLAM (1, n, D) bag is reshaped.
    """
    with open_hdf5(path, fix=REEXTRACT) as f:
        feats = np.asarray(f[keys.FEAT_FEATURES][()], dtype=np.float32)
    _check_finite(feats, path)
    return feats.reshape(-1, feats.shape[-1])


def read_summary(features_dir: str | Path) -> dict[str, Any]:
    """Read ``features.json`` of a features directory ({} if absent)."""
    path = Path(features_dir) / FEATURES_SUMMARY
    fix = "delete it: `rankbygene extract` writes it again"
    return read_json(path, fix=fix) if path.is_file() else {}


def update_summary(
    features_dir: str | Path, header: Mapping[str, Any], samples: Mapping[str, Any]
) -> Path:
    """Merge extraction info into ``features.json`` (atomically).

    Args:
        features_dir: the features directory.
        header: encoder-level fields (encoder, source_run, embed_dim, transform).
        samples: sample id → {"n_spots", "dim", "file"} for the samples just written.

    Returns:
        Path of the summary file.
    """
    root = Path(features_dir)
    summary = read_summary(root)
    previous = summary.get("encoder")
    if previous is not None and previous != header.get("encoder"):
        logger.warning(
            "%s: features of encoder %r are added to a directory of encoder %r",
            root,
            header.get("encoder"),
            previous,
        )
    summary.update(header)
    merged = dict(summary.get("samples", {}))
    merged.update(samples)
    summary["samples"] = dict(sorted(merged.items()))
    return write_json(root / FEATURES_SUMMARY, summary, sort_keys=True)


def assert_same_spots(
    features: FeatureFile | np.ndarray, barcodes: Iterable[str], sample_id: str
) -> None:
    """Check that a feature file covers the dataset's spots in the dataset's order.

    Args:
        features: the sample's feature file, or its barcodes.
        barcodes: the dataset's barcodes for the sample (``obs_names``).
        sample_id: for the error message.

    Raises:
        ValueError: naming the sample, the first mismatch and the fix.
    """
    expected = np.asarray([str(b) for b in barcodes])
    is_file = isinstance(features, FeatureFile)
    got = np.asarray([str(b) for b in (features.barcodes if is_file else features)])
    if got.shape == expected.shape and bool(np.all(got == expected)):
        return
    where = features.path if is_file and features.path is not None else "the features"
    if got.shape != expected.shape:
        detail = f"{len(got)} spots in {where} but {len(expected)} in the dataset"
    else:
        i = int(np.argmax(got != expected))
        detail = f"spot {i} is {str(got[i])!r} in {where} but {str(expected[i])!r} in the dataset"
    raise ValueError(
        f"Sample {sample_id!r}: features and dataset disagree on field 'barcode' ({detail}). "
        "Re-extract the features of this dataset with `rankbygene extract --overwrite`."
    )
