"""Per-slide feature bags for slide-level models, read through :mod:`rankbygene.features.io`.

A bag is one slide's (n_tiles, D) features (CLAM, TRIDENT or ``rankbygene extract
--slides``). Shapes are checked up front from the HDF5 headers; the bags are then held
in memory when they fit in a limit, else read from disk on every access, so a
TCGA-scale set of UNI features (tens of GB) still trains.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from rankbygene.features.io import feature_matrix_shape, list_feature_files, read_feature_matrix

logger = logging.getLogger(__name__)

__all__ = ["SlideBags"]


class SlideBags:
    """The bags of some slides of a features directory, by position.

    Args:
        features_dir: directory of ``{slide_id}.h5`` files with a ``features`` dataset.
        slide_ids: the slides to load, in order.
        memory_limit_gb: keep everything in memory below this total size.

    Raises:
        FileNotFoundError: a slide without a feature file.
        ValueError: files that disagree on D, or a file without any tile.
    """

    def __init__(
        self,
        features_dir: str | Path,
        slide_ids: Sequence[str] | np.ndarray,
        memory_limit_gb: float = 4.0,
    ) -> None:
        files = list_feature_files(features_dir)
        missing = [s for s in slide_ids if s not in files]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} labelled slide(s) have no feature file in {features_dir} "
                f"(e.g. {', '.join(missing[:5])}). Extract their features first or drop "
                "their rows from the label file."
            )
        self.paths = [files[s] for s in slide_ids]
        shapes = [feature_matrix_shape(path) for path in self.paths]
        dims = {d for _, d in shapes}
        if len(dims) > 1:
            raise ValueError(f"Feature files in {features_dir} disagree on D: {sorted(dims)}.")
        self.dim = dims.pop()
        total_gb = sum(n * d for n, d in shapes) * 4 / 1e9
        self._cache: list[Tensor] | None = None
        if total_gb <= memory_limit_gb:
            self._cache = [
                self._read(p) for p in tqdm(self.paths, desc="Reading bags", leave=False)
            ]
        else:
            logger.info("%.1f GB of features: reading each bag from disk when used", total_gb)

    @staticmethod
    def _read(path: Path) -> Tensor:
        return torch.from_numpy(read_feature_matrix(path))

    @property
    def in_memory(self) -> bool:
        """Whether the bags are held in memory (else read from disk on access)."""
        return self._cache is not None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Tensor:
        """Shape: (n_tiles, D) float32."""
        return self._cache[i] if self._cache is not None else self._read(self.paths[i])
