"""HisToGene's LightningModule (one section per step, MSE) and its training setup."""

from __future__ import annotations

from typing import Any, Protocol

import lightning as L
import torch
from torch import Tensor, nn

from rankbygene.data import STDataset
from rankbygene.methods.histogene.data import SectionDataModule, load_sections
from rankbygene.methods.histogene.model import HisToGeneNet, histogene_settings

__all__ = ["HisToGeneModule", "SectionTrainingSettings", "build_section_training"]


class SectionTrainingSettings(Protocol):
    """The training settings HisToGene reads (``TrainConfig`` has them all)."""

    target_sum: float
    smooth: bool
    seed: int
    lr_image: float
    extra: dict[str, Any]


class HisToGeneModule(L.LightningModule):
    """Lightning wrapper: one section per step, MSE on the panel genes."""

    def __init__(self, settings: dict[str, Any], n_genes: int, lr: float) -> None:
        super().__init__()
        self.settings = dict(settings)
        self.lr = lr
        self.net = HisToGeneNet(n_genes, **self.settings)
        self.save_hyperparameters({"settings": self.settings, "n_genes": n_genes, "lr": lr})

    def _mse(self, batch: dict[str, Tensor]) -> Tensor:
        pred = self.net(batch["image"], batch["positions"])
        return nn.functional.mse_loss(pred, batch["expr"])

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self._mse(batch)
        n = batch["expr"].shape[0]
        self.log("train_mse", loss.detach(), on_epoch=True, on_step=False, batch_size=n)
        self.log("train_total", loss.detach(), on_epoch=True, on_step=False, batch_size=n)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        loss = self._mse(batch)
        self.log("val_mse", loss, on_epoch=True, batch_size=batch["expr"].shape[0])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.net.parameters(), lr=self.lr)


def build_section_training(
    config: SectionTrainingSettings,
    dataset: STDataset,
    fit_ids: list[str],
    val_ids: list[str],
    genes: list[str],
) -> tuple[HisToGeneModule, L.LightningDataModule, int]:
    """Module, data module and number of training spots of a HisToGene run."""
    settings = histogene_settings(config.extra)
    common = {"n_pos": settings["n_pos"], "target_sum": config.target_sum, "smooth": config.smooth}
    train_sections = load_sections(dataset, fit_ids, genes, **common)
    val_sections = load_sections(dataset, val_ids, genes, **common) if val_ids else []
    datamodule = SectionDataModule(train_sections, val_sections, config.seed)
    module = HisToGeneModule(settings, len(genes), config.lr_image)
    return module, datamodule, sum(len(s.expr) for s in train_sections)
