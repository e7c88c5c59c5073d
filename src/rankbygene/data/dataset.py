"""Read a dataset in the HEST-1k layout: its samples, their metadata and file paths.

A dataset directory holds, per sample ``{id}``::

    st/{id}.h5ad          raw counts (X), obs with array/pixel coordinates, obsm["spatial"]
    patches/{id}.h5       img (N, H, W, 3) uint8, coords (N, 2) int, barcode (N, 1) bytes
    metadata/{id}.json    patient, st_technology, organ, pixel_size_um_estimated, ...
    wsis/{id}.tif         optional whole-slide image

A sample "exists" when its metadata json exists (the writer writes it last), and then
both other files must exist too. A real HEST-1k download is read unchanged. Counts are
loaded on demand (:meth:`Sample.read_adata`), patches through a lazy
:class:`~rankbygene.data.patches.PatchStore` (:meth:`Sample.patches`).

Metadata defaults (applied when a field is missing or ``null``, as HEST often has):

- ``patient``: the sample id, with a logged warning, because splits are by patient;
- ``st_technology`` and ``organ``: ``"unknown"``;
- ``pixel_size_um_estimated``, ``spot_diameter``, ``inter_spot_dist``: ``None``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rankbygene import keys
from rankbygene.data.checks import check_counts, check_spots
from rankbygene.data.patches import PatchStore
from rankbygene.fileio import open_hdf5, read_json

if TYPE_CHECKING:
    import anndata as ad

logger = logging.getLogger(__name__)

__all__ = [
    "METADATA_DEFAULTS",
    "STDataset",
    "Sample",
    "UnknownSampleError",
    "read_dataset",
]

#: What to do about a damaged file of a sample.
REIMPORT = "restore the file, or re-create the sample (`rankbygene data import ... --overwrite`)"

#: Values used for metadata fields that are missing or null (patient is filled separately).
METADATA_DEFAULTS: dict[str, Any] = {
    keys.META_TECHNOLOGY: "unknown",
    keys.META_ORGAN: "unknown",
    keys.META_PIXEL_SIZE: None,
    keys.META_SPOT_DIAMETER: None,
    keys.META_SPOT_PITCH: None,
}


class UnknownSampleError(KeyError, ValueError):
    """A sample id that the dataset does not hold (both a KeyError and a ValueError)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass
class Sample:
    """One sample of a HEST-layout dataset: paths, metadata and lazy accessors.

    Attributes:
        id: sample id (file stem).
        root: dataset directory.
        metadata: the metadata json with documented defaults filled in.
    """

    id: str
    root: Path
    metadata: dict[str, Any] = field(repr=False)

    @property
    def st_path(self) -> Path:
        return self.root / keys.ST_DIR / f"{self.id}{keys.ST_SUFFIX}"

    @property
    def patches_path(self) -> Path:
        return self.root / keys.PATCHES_DIR / f"{self.id}{keys.PATCHES_SUFFIX}"

    @property
    def metadata_path(self) -> Path:
        return self.root / keys.METADATA_DIR / f"{self.id}{keys.METADATA_SUFFIX}"

    @property
    def wsi_path(self) -> Path | None:
        """The whole-slide image if the dataset has one (``wsis/{id}.tif*``)."""
        wsi_dir = self.root / keys.WSIS_DIR
        if not wsi_dir.is_dir():
            return None
        for candidate in sorted(wsi_dir.glob(f"{self.id}.*")):
            if candidate.suffix.lower() in {".tif", ".tiff", ".svs", ".ndpi", ".btf"}:
                return candidate
        return None

    @property
    def patient(self) -> str:
        return str(self.metadata[keys.META_PATIENT])

    @property
    def technology(self) -> str:
        return str(self.metadata[keys.META_TECHNOLOGY])

    @property
    def organ(self) -> str:
        return str(self.metadata[keys.META_ORGAN])

    @property
    def pixel_size_um(self) -> float | None:
        """µm per full-resolution pixel (``pixel_size_um_estimated``), None if unknown."""
        value = self.metadata.get(keys.META_PIXEL_SIZE)
        return None if value is None else float(value)

    @property
    def spot_diameter_um(self) -> float | None:
        value = self.metadata.get(keys.META_SPOT_DIAMETER)
        return None if value is None else float(value)

    @property
    def spot_pitch_um(self) -> float | None:
        value = self.metadata.get(keys.META_SPOT_PITCH)
        return None if value is None else float(value)

    def read_adata(self) -> ad.AnnData:
        """Load ``st/{id}.h5ad`` (raw counts, obs coordinates, obsm["spatial"]), checked.

        The counts must be finite, non-negative and not all zero, and the barcodes
        unique and equal to the patch file's, in order (:mod:`rankbygene.data.checks`).

        Shape:
            returns an AnnData of N spots x G genes.

        Raises:
            OSError: an unreadable (e.g. truncated) file, named.
            ValueError: counts or spots that fail the checks, naming file and sample.
        """
        # anndata (with pandas) takes about a second to import; listing a dataset
        # (`rankbygene data info`) never reads counts, so it is imported here.
        import anndata as ad

        open_hdf5(self.st_path, fix=REIMPORT).close()  # a damaged file is named first
        adata = ad.read_h5ad(self.st_path)
        check_counts(adata, self.st_path, self.id)
        with self.patches() as store:
            check_spots(adata, store.barcodes, self.st_path, self.patches_path, self.id)
        return adata

    def patches(self) -> PatchStore:
        """A lazy patch store over ``patches/{id}.h5`` (use as a context manager)."""
        return PatchStore(self.patches_path)

    @property
    def n_spots(self) -> int:
        """Number of patches, read from the dataset shape only."""
        with self.patches() as store:
            return len(store)

    @property
    def patch_px(self) -> int:
        """Side of the stored patches in pixels."""
        with self.patches() as store:
            return store.patch_size

    @property
    def n_genes(self) -> int:
        """Number of genes in the h5ad, read without loading X."""
        with open_hdf5(self.st_path, fix=REIMPORT) as f:
            var = f["var"]
            index_key = var.attrs.get("_index", "_index")
            if index_key in var:
                return int(var[index_key].shape[0])
            x = f["X"]
            shape = x.attrs.get("shape", x.shape)
            return int(shape[1])


def _load_metadata(sample_id: str, path: Path) -> dict[str, Any]:
    meta = read_json(path, fix=f"fix or re-create the metadata of sample '{sample_id}'")
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: the metadata of sample '{sample_id}' must be a JSON object")
    for key, default in METADATA_DEFAULTS.items():
        if meta.get(key) is None:
            meta[key] = default
    if meta.get(keys.META_PATIENT) in (None, ""):
        logger.warning(
            "sample '%s': metadata %s has no '%s'; using the sample id as patient. Splits are "
            "by patient, so add the field if several samples come from one patient.",
            sample_id,
            path,
            keys.META_PATIENT,
        )
        meta[keys.META_PATIENT] = sample_id
    meta[keys.META_PATIENT] = str(meta[keys.META_PATIENT])
    meta.setdefault(keys.META_ID, sample_id)
    return meta


class STDataset:
    """The samples of one HEST-layout directory.

    Attributes:
        root: the dataset directory.
        ids: sorted sample ids.
    """

    def __init__(self, root: Path, samples: dict[str, Sample]) -> None:
        self.root = Path(root)
        self._samples = dict(sorted(samples.items()))
        self.ids: list[str] = list(self._samples)

    def __getitem__(self, sample_id: str) -> Sample:
        try:
            return self._samples[sample_id]
        except KeyError:
            raise UnknownSampleError(
                f"unknown sample id '{sample_id}' in dataset {self.root}; known ids: "
                f"{', '.join(self.ids)} (list them with `rankbygene data info {self.root}`)"
            ) from None

    def __contains__(self, sample_id: object) -> bool:
        return sample_id in self._samples

    def __iter__(self) -> Iterator[Sample]:
        return iter(self._samples.values())

    def __len__(self) -> int:
        return len(self._samples)

    def patients(self) -> dict[str, str]:
        """Sample id -> patient id."""
        return {sid: s.patient for sid, s in self._samples.items()}

    def subset(self, ids: Iterable[str]) -> STDataset:
        """A dataset restricted to ``ids`` (each must exist)."""
        return STDataset(self.root, {sid: self[sid] for sid in ids})

    def __repr__(self) -> str:
        return f"STDataset(root={str(self.root)!r}, ids={self.ids})"


def read_dataset(path: str | Path) -> STDataset:
    """Open a dataset directory in the HEST-1k layout.

    Samples are listed by their metadata json; each listed sample must also have its
    ``st/{id}.h5ad`` and ``patches/{id}.h5``.

    Args:
        path: dataset root.

    Returns:
        The dataset.

    Raises:
        FileNotFoundError: the directory does not exist.
        ValueError: no metadata directory or samples, or a sample's file is missing.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset directory {root} does not exist; create one with "
            "`rankbygene data synth --out DIR` or a `rankbygene data import` command"
        )
    meta_dir = root / keys.METADATA_DIR
    if not meta_dir.is_dir():
        raise ValueError(
            f"{root} is not a HEST-layout dataset: no '{keys.METADATA_DIR}/' directory; expected "
            f"{keys.ST_DIR}/{{id}}{keys.ST_SUFFIX}, {keys.PATCHES_DIR}/{{id}}{keys.PATCHES_SUFFIX}"
            f" and {keys.METADATA_DIR}/{{id}}{keys.METADATA_SUFFIX}"
        )
    samples: dict[str, Sample] = {}
    for meta_path in sorted(meta_dir.glob(f"*{keys.METADATA_SUFFIX}")):
        sample_id = meta_path.name[: -len(keys.METADATA_SUFFIX)]
        sample = Sample(id=sample_id, root=root, metadata={})
        for needed, field_name in ((sample.st_path, "counts"), (sample.patches_path, "patches")):
            if not needed.is_file():
                raise ValueError(
                    f"sample '{sample_id}': {field_name} file {needed} is missing although "
                    f"{meta_path} exists; restore the file or delete the metadata json to drop "
                    "the sample"
                )
        sample.metadata = _load_metadata(sample_id, meta_path)
        samples[sample_id] = sample
    if not samples:
        raise ValueError(f"no samples in {root}: {meta_dir} holds no *{keys.METADATA_SUFFIX} files")
    logger.debug("read dataset %s with %d samples", root, len(samples))
    return STDataset(root, samples)
