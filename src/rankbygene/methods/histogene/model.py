"""HisToGene (Pang et al. 2021): a transformer over all spots of a section predicts genes.

Each spot's patch is flattened and linearly embedded, its array position (column,
row) adds two learned embeddings, and a transformer encoder lets every spot attend to
every other spot of the section before a linear head regresses the panel genes (MSE).
The paper's settings are 112 px patches, width 1024, depth 8, 16 heads, Adam 1e-5, 100
epochs; ``TrainConfig.extra`` overrides them (``dim``, ``depth``, ``heads``,
``patch_px``, ``n_pos``, ``dropout``, ``mlp_ratio``) for CPU runs.

Downstream, a spot's features are the transformer's outputs in the context of its
section (:meth:`HisToGeneNet.embed`) and the linear head is the run's expression head.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rankbygene import keys
from rankbygene.models.transform import EncoderTransform

__all__ = ["HISTOGENE_DEFAULTS", "HisToGeneNet", "histogene_settings", "section_positions"]

HISTOGENE_DEFAULTS: dict[str, Any] = {
    "dim": 1024,
    "depth": 8,
    "heads": 16,
    "mlp_ratio": 2,
    "dropout": 0.1,
    "patch_px": 112,
    "n_pos": 128,
}


class HisToGeneNet(nn.Module):
    """Patch embedding + position embeddings + transformer encoder + linear gene head.

    Args:
        n_genes: panel size G.
        dim, depth, heads, mlp_ratio, dropout: transformer settings.
        patch_px: side the patches are resized to before flattening.
        n_pos: size of each position embedding table (array coordinates must be below).
    """

    def __init__(
        self,
        n_genes: int,
        *,
        dim: int,
        depth: int,
        heads: int,
        mlp_ratio: int,
        dropout: float,
        patch_px: int,
        n_pos: int,
    ) -> None:
        super().__init__()
        self.n_pos = n_pos
        self.transform = EncoderTransform(patch_px, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
        self.patch_embed = nn.Linear(3 * patch_px * patch_px, dim)
        self.x_embed = nn.Embedding(n_pos, dim)
        self.y_embed = nn.Embedding(n_pos, dim)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim * mlp_ratio, dropout, activation="gelu", batch_first=True,
            norm_first=True,
        )  # fmt: skip
        self.transformer = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_genes)

    def embed(self, patches: Tensor, positions: Tensor) -> Tensor:
        """Spot features in the context of their section.

        Shape:
            patches (N, 3, H, W) uint8; positions (N, 2) long (column, row) → (N, dim).
        """
        x = self.transform.normalize(patches).flatten(1)
        tokens = self.patch_embed(x) + self.x_embed(positions[:, 0]) + self.y_embed(positions[:, 1])
        return self.norm(self.transformer(tokens.unsqueeze(0)).squeeze(0))

    def forward(self, patches: Tensor, positions: Tensor) -> Tensor:
        """Shape: (N, 3, H, W) uint8, (N, 2) long → (N, G) predicted expression."""
        return self.head(self.embed(patches, positions))


def histogene_settings(extra: dict[str, Any]) -> dict[str, Any]:
    """The paper's settings overridden by ``TrainConfig.extra`` (unknown keys refused)."""
    unknown = sorted(set(extra) - set(HISTOGENE_DEFAULTS))
    if unknown:
        raise ValueError(
            f"Unknown HisToGene setting(s) {unknown} in extra; known: {sorted(HISTOGENE_DEFAULTS)}."
        )
    return {**HISTOGENE_DEFAULTS, **extra}


def section_positions(adata: Any, sample_id: str, n_pos: int) -> Tensor:
    """(N, 2) array coordinates (column, row) shifted to start at 0, checked < n_pos."""
    if keys.OBS_ARRAY_ROW not in adata.obs or keys.OBS_ARRAY_COL not in adata.obs:
        raise ValueError(
            f"Sample {sample_id}: HisToGene needs array coordinates (obs "
            f"'{keys.OBS_ARRAY_COL}', '{keys.OBS_ARRAY_ROW}'); re-import it with an importer "
            "that records them."
        )
    pos = adata.obs[[keys.OBS_ARRAY_COL, keys.OBS_ARRAY_ROW]].to_numpy(dtype=np.int64)
    pos = pos - pos.min(axis=0)
    if pos.max() >= n_pos:
        raise ValueError(
            f"Sample {sample_id}: array coordinates span {pos.max() + 1} positions but the "
            f"position tables hold {n_pos}; set extra: {{n_pos: {pos.max() + 1}}}."
        )
    return torch.from_numpy(pos)
