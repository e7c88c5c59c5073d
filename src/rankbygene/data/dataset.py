"""Reader for datasets in the HEST-1k layout: samples, their metadata and a lazy patch store.

A dataset directory holds, per sample ``{id}``::

    st/{id}.h5ad          raw counts (X), obs with array/pixel coordinates, obsm["spatial"]
    patches/{id}.h5       img (N, H, W, 3) uint8, coords (N, 2) int, barcode (N, 1) bytes
    metadata/{id}.json    patient, st_technology, organ, pixel_size_um_estimated, ...
    wsis/{id}.tif         optional whole-slide image

A sample "exists" when its metadata json exists (the writer writes it last), and then
both other files must exist too. A real HEST-1k download is read unchanged.

Metadata defaults (applied when a field is missing or ``null``, as HEST often has):

- ``patient``: the sample id, with a logged warning, because splits are by patient;
- ``st_technology`` and ``organ``: ``"unknown"``;
- ``pixel_size_um_estimated``, ``spot_diameter``, ``inter_spot_dist``: ``None``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anndata as ad
import h5py
import numpy as np

from rankbygene import keys

logger = logging.getLogger(__name__)

__all__ = [
    "METADATA_DEFAULTS",
    "PatchStore",
    "STDataset",
    "Sample",
    "UnknownSampleError",
    "read_dataset",
]

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


def _decode_strings(ds: h5py.Dataset) -> np.ndarray:
    """Read a string dataset of any shape ((N,), (N, 1); fixed or variable length) as str.

    Shape:
        returns (N,) array of ``str``.
    """
    raw = ds[()]
    flat = np.asarray(raw).reshape(-1)
    if flat.dtype.kind == "S":
        return np.char.decode(flat, "utf-8")
    if flat.dtype.kind == "U":
        return flat
    # variable-length strings come back as an object array of bytes
    return np.asarray(ds.asstr()[()]).reshape(-1).astype(str)


class PatchStore:
    """Lazy, random-access view of one ``patches/{id}.h5`` file.

    The file is opened on first access and re-opened after a fork (h5py handles must
    not be shared between processes), so a store can be handed to DataLoader workers.
    Indexing follows numpy: an int gives one patch, a slice, an index array or a
    boolean mask give a batch, in the order asked (unsorted and repeated indices are
    fine: the read is sorted and de-duplicated for h5py, then reordered).

    Shape:
        ``store[i]`` -> (H, W, 3) uint8; ``store[idx]`` -> (n, H, W, 3) uint8;
        ``coords`` (N, 2) int64 (x, y); ``barcodes`` (N,) str.
    """

    def __init__(self, path: str | Path) -> None:
        """Create the store without opening the file.

        Args:
            path: the ``patches/{id}.h5`` file.
        """
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"patch file {self.path} does not exist")
        self._file: h5py.File | None = None
        self._pid: int | None = None
        self._coords: np.ndarray | None = None
        self._barcodes: np.ndarray | None = None

    # -- file handle -------------------------------------------------------------------
    def _h5(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            # after a fork the inherited handle belongs to the parent: open our own
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
            if keys.H5_IMG not in self._file:
                names = sorted(self._file.keys())
                raise ValueError(
                    f"patch file {self.path} has no '{keys.H5_IMG}' dataset (found {names}); "
                    "re-create it with rankbygene.data.write_sample or a `rankbygene data "
                    "import` command"
                )
        return self._file

    @property
    def _img(self) -> h5py.Dataset:
        return self._h5()[keys.H5_IMG]

    def close(self) -> None:
        """Close the file handle if this process opened one."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None
        self._pid = None

    def __enter__(self) -> PatchStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        # never pickle an open h5py handle (spawned DataLoader workers re-open)
        state = self.__dict__.copy()
        state["_file"] = None
        state["_pid"] = None
        return state

    def __del__(self) -> None:
        # during interpreter shutdown h5py may already be torn down
        with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
            self.close()

    # -- metadata ----------------------------------------------------------------------
    def _attr(self, name: str) -> Any:
        """An attribute from the file, or (HEST writes them per dataset) img/coords."""
        f = self._h5()
        for obj in (f, f[keys.H5_IMG], f.get(keys.H5_COORDS)):
            if obj is not None and name in obj.attrs:
                value = obj.attrs[name]
                return value.item() if isinstance(value, np.generic) else value
        return None

    def __len__(self) -> int:
        return int(self._img.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the ``img`` dataset, (N, H, W, 3)."""
        return tuple(int(s) for s in self._img.shape)

    @property
    def patch_size(self) -> int:
        """Side of the stored patches in pixels."""
        return int(self._img.shape[1])

    @property
    def pixel_size_um(self) -> float | None:
        """µm per pixel of the stored patches (attr ``pixel_size``), None if not recorded."""
        value = self._attr(keys.H5_ATTR_PIXEL_SIZE)
        return None if value is None else float(value)

    @property
    def patch_size_src(self) -> int | None:
        """Window side in full-resolution pixels (attr ``patch_size_src``), if recorded."""
        value = self._attr(keys.H5_ATTR_PATCH_SIZE_SRC)
        return None if value is None else int(value)

    @property
    def coords(self) -> np.ndarray:
        """Patch centres in full-resolution pixels, x then y. Shape: (N, 2) int64."""
        if self._coords is None:
            f = self._h5()
            if keys.H5_COORDS not in f:
                raise ValueError(f"patch file {self.path} has no '{keys.H5_COORDS}' dataset")
            self._coords = np.asarray(f[keys.H5_COORDS][()]).reshape(-1, 2).astype(np.int64)
        return self._coords

    @property
    def barcodes(self) -> np.ndarray:
        """Spot barcodes, decoded. Shape: (N,) str."""
        if self._barcodes is None:
            f = self._h5()
            if keys.H5_BARCODE not in f:
                raise ValueError(f"patch file {self.path} has no '{keys.H5_BARCODE}' dataset")
            self._barcodes = _decode_strings(f[keys.H5_BARCODE])
        return self._barcodes

    # -- reading -----------------------------------------------------------------------
    def _normalise_indices(self, idx: np.ndarray) -> np.ndarray:
        n = len(self)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise IndexError(
                    f"boolean mask of shape {idx.shape} does not match {n} patches in {self.path}"
                )
            return np.flatnonzero(idx)
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise IndexError(f"patch indices must be integers, got dtype {idx.dtype}")
        idx = idx.astype(np.int64, copy=False).reshape(-1)
        idx = np.where(idx < 0, idx + n, idx)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            bad = idx[(idx < 0) | (idx >= n)][:5].tolist()
            raise IndexError(f"patch indices {bad} out of range for {n} patches in {self.path}")
        return idx

    def read(self, indices: Iterable[int] | np.ndarray) -> np.ndarray:
        """Read a batch of patches in the order given.

        Args:
            indices: integer indices (any order, repeats allowed) or a boolean mask.

        Returns:
            The patches. Shape: (n, H, W, 3) uint8.
        """
        idx = self._normalise_indices(np.asarray(indices))
        img = self._img
        if idx.size == 0:
            return np.empty((0, *img.shape[1:]), dtype=img.dtype)
        # read each unique index once, in increasing order, then reorder. h5py's own
        # fancy indexing (img[list]) is ~100x slower than reading runs of consecutive
        # patches as slices (measured in benchmarks/bench_patch_read.py), so the loop
        # below is over runs, at most one per requested patch.
        uniq, inverse = np.unique(idx, return_inverse=True)
        block = np.empty((uniq.size, *img.shape[1:]), dtype=img.dtype)
        breaks = np.flatnonzero(np.diff(uniq) != 1) + 1
        starts = np.concatenate([[0], breaks])
        stops = np.concatenate([breaks, [uniq.size]])
        for lo, hi in zip(starts.tolist(), stops.tolist(), strict=True):
            first = int(uniq[lo])
            block[lo:hi] = img[first : first + (hi - lo)]
        if uniq.size == idx.size and np.array_equal(uniq, idx):
            return block
        return block[inverse.reshape(-1)]

    def __getitem__(self, idx: int | slice | np.ndarray | list[int]) -> np.ndarray:
        if isinstance(idx, (int, np.integer)):
            n = len(self)
            i = int(idx) + n if idx < 0 else int(idx)
            if not 0 <= i < n:
                raise IndexError(f"patch index {idx} out of range for {n} patches in {self.path}")
            return self._img[i]
        if isinstance(idx, slice):
            return self._img[idx]
        return self.read(idx)

    def __repr__(self) -> str:
        return f"PatchStore({str(self.path)!r})"


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
        """Load ``st/{id}.h5ad`` (raw counts, obs coordinates, obsm["spatial"])."""
        return ad.read_h5ad(self.st_path)

    def patches(self) -> PatchStore:
        """A lazy patch store over ``patches/{id}.h5`` (use as a context manager)."""
        return PatchStore(self.patches_path)

    @property
    def n_spots(self) -> int:
        """Number of patches, read from the dataset shape only."""
        with h5py.File(self.patches_path, "r") as f:
            return int(f[keys.H5_IMG].shape[0])

    @property
    def patch_px(self) -> int:
        """Side of the stored patches in pixels."""
        with h5py.File(self.patches_path, "r") as f:
            return int(f[keys.H5_IMG].shape[1])

    @property
    def n_genes(self) -> int:
        """Number of genes in the h5ad, read without loading X."""
        with h5py.File(self.st_path, "r") as f:
            var = f["var"]
            index_key = var.attrs.get("_index", "_index")
            if index_key in var:
                return int(var[index_key].shape[0])
            x = f["X"]
            shape = x.attrs.get("shape", x.shape)
            return int(shape[1])


def _load_metadata(sample_id: str, path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as fh:
            meta = json.load(fh)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"sample '{sample_id}': metadata file {path} is not valid JSON ({err}); fix or "
            "re-create it"
        ) from err
    if not isinstance(meta, dict):
        raise ValueError(f"sample '{sample_id}': metadata file {path} must hold a JSON object")
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
