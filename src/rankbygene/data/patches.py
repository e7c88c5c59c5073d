"""Lazy random access to one sample's patch file, ``patches/{id}.h5`` (HEST-1k layout).

The file holds ``img`` ``(N, H, W, 3)`` uint8, ``coords`` ``(N, 2)`` int (x, y centres in
full-resolution pixels) and ``barcode`` ``(N, 1)`` bytes; HEST writes the ``pixel_size``
and ``patch_size_src`` attributes on the file or on its datasets. :class:`PatchStore`
reads batches without loading the file and can be handed to DataLoader workers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from rankbygene import keys
from rankbygene.fileio import open_hdf5

__all__ = ["PatchStore"]


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
            self._file = open_hdf5(
                self.path,
                fix="restore it, or re-create the sample (`rankbygene data import ... "
                "--overwrite`)",
            )
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
