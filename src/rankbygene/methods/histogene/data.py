"""HisToGene's training data: whole sections (all spots of a sample per item)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from rankbygene.data import STDataset, preprocess_expression
from rankbygene.methods.histogene.model import section_positions

__all__ = ["Section", "SectionDataModule", "SectionDataset", "load_sections"]


@dataclass
class Section:
    """One section as a HisToGene step sees it."""

    patches: Tensor  # (N, 3, S, S) uint8
    positions: Tensor  # (N, 2) long
    expr: Tensor  # (N, G) float32


class SectionDataset(Dataset):
    """Whole sections (one item = one section, all its spots)."""

    def __init__(self, sections: Sequence[Section]) -> None:
        self.sections = list(sections)

    def __len__(self) -> int:
        return len(self.sections)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        s = self.sections[i]
        return {"image": s.patches, "positions": s.positions, "expr": s.expr}


def load_sections(
    dataset: STDataset,
    sample_ids: Sequence[str],
    genes: Sequence[str] | None,
    *,
    n_pos: int,
    target_sum: float = 1e4,
    smooth: bool = True,
) -> list[Section]:
    """Read every spot of each sample: patches, positions and (with ``genes``) targets."""
    sections = []
    for sid in sample_ids:
        sample = dataset[sid]
        adata = sample.read_adata()
        with sample.patches() as store:
            patches = torch.from_numpy(np.ascontiguousarray(store[np.arange(len(store))]))
        expr = (
            torch.from_numpy(
                preprocess_expression(adata, genes, target_sum=target_sum, smooth=smooth)
            ).float()
            if genes is not None
            else torch.zeros(adata.n_obs, 0)
        )
        positions = section_positions(adata, sid, n_pos)
        sections.append(Section(patches.permute(0, 3, 1, 2), positions, expr))
    return sections


class SectionDataModule(L.LightningDataModule):
    """Training sections shuffled reproducibly (one per step); validation sections in order."""

    def __init__(self, train: list[Section], val: list[Section], seed: int) -> None:
        super().__init__()
        self.train, self.val, self.seed = train, val, seed

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            SectionDataset(self.train), batch_size=None, shuffle=True, generator=generator
        )

    def val_dataloader(self) -> DataLoader | list:
        return DataLoader(SectionDataset(self.val), batch_size=None) if self.val else []
