"""A torch Dataset over the spots of several samples: patch image + expression target."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from rankbygene.data.dataset import PatchStore, STDataset
from rankbygene.data.preprocessing import preprocess_expression

logger = logging.getLogger(__name__)

__all__ = ["SpotDataset"]


def _obs_names(dataset: STDataset, sample_id: str) -> pd.Index:
    """obs_names of a sample without loading its counts (backed mode)."""
    backed = ad.read_h5ad(dataset[sample_id].st_path, backed="r")
    try:
        return pd.Index(np.asarray(backed.obs_names, dtype=str))
    finally:
        backed.file.close()


class SpotDataset(Dataset):
    """Spots of several samples, concatenated in sample order.

    Images are read lazily from each sample's patch store (opened per worker process, so
    it is safe with a multi-process DataLoader). Expression is either given by the caller
    (sample id -> (N, G) array in the spot order of the sample's h5ad) or computed with
    :func:`preprocess_expression`. Spots are the patches of a sample; a patch whose
    barcode has no row in the h5ad is dropped with a warning.

    An item is ``{"image": uint8 (3, H, W), "expr": float32 (G,), "sample": str,
    "index": int}`` where ``index`` is the spot's row in the sample's patch store.

    Attributes:
        sample_ids: the samples, in concatenation order.
        genes: the panel.
        spot_sample: (n,) sample position of each spot.
        spot_index: (n,) patch-store row of each spot.
        expression: (n, G) float32 tensor.
    """

    def __init__(
        self,
        dataset: STDataset,
        sample_ids: Sequence[str],
        genes: Sequence[str],
        *,
        expression: Mapping[str, np.ndarray] | None = None,
        target_sum: float = 1e4,
        smooth: bool = True,
    ) -> None:
        """Index the spots and prepare the expression targets.

        Args:
            dataset: the dataset.
            sample_ids: samples to include.
            genes: the gene panel (column order of ``expr``).
            expression: precomputed targets per sample, rows in h5ad spot order.
            target_sum: library size for :func:`preprocess_expression` (if computed).
            smooth: spatial smoothing for :func:`preprocess_expression` (if computed).
        """
        if not sample_ids:
            raise ValueError("SpotDataset needs at least one sample id")
        self.sample_ids = list(sample_ids)
        self.genes = list(genes)
        self._stores: dict[str, PatchStore] = {}
        self._cache: dict[str, torch.Tensor] | None = None
        spot_sample, spot_index, exprs = [], [], []
        patch_sizes: dict[str, int] = {}
        for pos, sid in enumerate(self.sample_ids):
            sample = dataset[sid]
            store = sample.patches()
            self._stores[sid] = store
            patch_sizes[sid] = store.patch_size
            if expression is not None:
                if sid not in expression:
                    raise ValueError(f"expression has no entry for sample '{sid}'")
                expr = np.asarray(expression[sid], dtype=np.float32)
                obs_names = _obs_names(dataset, sid)
            else:
                adata = sample.read_adata()
                expr = preprocess_expression(
                    adata, self.genes, target_sum=target_sum, smooth=smooth, sample_id=sid
                )
                obs_names = adata.obs_names
            if expr.shape != (len(obs_names), len(self.genes)):
                raise ValueError(
                    f"sample '{sid}': expression has shape {expr.shape}, expected "
                    f"(n_spots, n_genes) = ({len(obs_names)}, {len(self.genes)})"
                )
            row = pd.Index(obs_names).get_indexer(store.barcodes)
            keep = np.flatnonzero(row >= 0)
            if keep.size < len(row):
                logger.warning(
                    "sample '%s': %d patches have no counts row (barcode not in the h5ad) and "
                    "are skipped",
                    sid,
                    len(row) - keep.size,
                )
            # no handle is kept open here: DataLoader workers forked later open their own
            store.close()
            spot_sample.append(np.full(keep.size, pos, dtype=np.int64))
            spot_index.append(keep.astype(np.int64))
            exprs.append(expr[row[keep]])
        if len(set(patch_sizes.values())) > 1:
            raise ValueError(
                f"patch sizes differ between samples {patch_sizes}; re-import them with one "
                "patch size so spots can be batched together"
            )
        self.patch_size = next(iter(patch_sizes.values()))
        self.spot_sample = np.concatenate(spot_sample)
        self.spot_index = np.concatenate(spot_index)
        self.expression = torch.from_numpy(np.concatenate(exprs, axis=0))

    def __len__(self) -> int:
        return int(self.spot_sample.shape[0])

    def _check(self, indices: np.ndarray) -> np.ndarray:
        n = len(self)
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        indices = np.where(indices < 0, indices + n, indices)
        if indices.size and (indices.min() < 0 or indices.max() >= n):
            raise IndexError(f"spot indices out of range for a SpotDataset of {n} spots")
        return indices

    def _images(self, indices: np.ndarray) -> torch.Tensor:
        """Patches of many spots, read once per sample in sorted order.

        Shape:
            returns (B, 3, H, W) uint8.
        """
        out = torch.empty((indices.size, 3, self.patch_size, self.patch_size), dtype=torch.uint8)
        samples = self.spot_sample[indices]
        for pos in np.unique(samples):
            where = np.flatnonzero(samples == pos)
            rows = self.spot_index[indices[where]]
            sid = self.sample_ids[pos]
            if self._cache is not None:
                out[torch.from_numpy(where)] = self._cache[sid][torch.from_numpy(rows)]
            else:
                patches = torch.from_numpy(self._stores[sid].read(rows))
                out[torch.from_numpy(where)] = patches.permute(0, 3, 1, 2)
        return out

    def __getitem__(self, i: int) -> dict[str, Any]:
        idx = self._check(np.array([i]))
        return {
            "image": self._images(idx)[0],
            "expr": self.expression[int(idx[0])],
            "sample": self.sample_ids[int(self.spot_sample[idx[0]])],
            "index": int(self.spot_index[idx[0]]),
        }

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """Many spots at once (fast path: one sorted read per sample).

        Returns:
            ``{"image": uint8 (B, 3, H, W), "expr": float32 (B, G), "sample": list[str],
            "index": int64 (B,)}``.
        """
        idx = self._check(np.asarray(indices))
        return {
            "image": self._images(idx),
            "expr": self.expression[torch.from_numpy(idx)],
            "sample": [self.sample_ids[p] for p in self.spot_sample[idx]],
            "index": torch.from_numpy(self.spot_index[idx].copy()),
        }

    def load_all_patches(self) -> torch.Tensor:
        """Read every sample's patches into memory (small datasets); later reads use it.

        Returns:
            All spots' images in dataset order. Shape: (n, 3, H, W) uint8.
        """
        cache: dict[str, torch.Tensor] = {}
        for sid, store in self._stores.items():
            cache[sid] = torch.from_numpy(np.ascontiguousarray(store[:])).permute(0, 3, 1, 2)
        self._cache = cache
        return self._images(np.arange(len(self)))

    def close(self) -> None:
        """Close the patch files opened by this process."""
        for store in self._stores.values():
            store.close()
