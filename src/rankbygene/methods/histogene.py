"""HisToGene (Pang et al. 2021): a transformer over all spots of a section predicts genes.

Each spot's patch is flattened and linearly embedded, its array position (column,
row) adds two learned embeddings, and a transformer encoder lets every spot attend to
every other spot of the section before a linear head regresses the panel genes (MSE).
One section is one training step. The paper's settings are 112 px patches, width 1024,
depth 8, 16 heads, Adam 1e-5, 100 epochs; ``TrainConfig.extra`` overrides them
(``dim``, ``depth``, ``heads``, ``patch_px``, ``n_pos``, ``dropout``) for CPU runs.

Downstream, a HisToGene run is read like an ST-Net run: its spot features are the
transformer's outputs in the context of their section (:func:`extract_histogene_features`)
and its linear head is the run's expression head (``evaluate genes --probe head``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from rankbygene import __version__, keys
from rankbygene.data import STDataset, preprocess_expression, read_dataset
from rankbygene.fileio import atomic_path, write_text_atomic
from rankbygene.models.transform import EncoderTransform

logger = logging.getLogger(__name__)

__all__ = [
    "HISTOGENE_DEFAULTS",
    "HisToGeneModule",
    "HisToGeneNet",
    "build_section_training",
    "extract_histogene_features",
    "load_histogene",
]

HISTOGENE_DEFAULTS: dict[str, Any] = {
    "dim": 1024,
    "depth": 8,
    "heads": 16,
    "mlp_ratio": 2,
    "dropout": 0.1,
    "patch_px": 112,
    "n_pos": 128,
}
MODEL_FILE = "histogene.safetensors"
MODEL_CARD = "histogene.json"


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

    def export(self, out: Path, genes: Sequence[str]) -> None:
        """Write the whole network, and its head in the expression-head layout."""
        from rankbygene.training.run import write_heads

        with atomic_path(out / MODEL_FILE) as tmp:
            save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, str(tmp))
        card = {"n_genes": len(genes), "settings": self.settings, "version": __version__}
        write_text_atomic(out / MODEL_CARD, json.dumps(card, indent=2))
        heads_card = {
            "embed_dim": self.settings["dim"],
            "proj_dim": None,
            "n_genes": len(genes),
            "method": "histogene",
            "predicts_expression": True,
        }
        write_heads(out, self.net.head, nn.Identity(), heads_card)  # no gene encoder


def histogene_settings(extra: dict[str, Any]) -> dict[str, Any]:
    """The paper's settings overridden by ``TrainConfig.extra`` (unknown keys refused)."""
    unknown = sorted(set(extra) - set(HISTOGENE_DEFAULTS))
    if unknown:
        raise ValueError(
            f"Unknown HisToGene setting(s) {unknown} in extra; known: {sorted(HISTOGENE_DEFAULTS)}."
        )
    return {**HISTOGENE_DEFAULTS, **extra}


def build_section_training(
    config: Any, dataset: STDataset, fit_ids: list[str], val_ids: list[str], genes: list[str]
) -> tuple[HisToGeneModule, L.LightningDataModule, int]:
    """Module, data module and number of training spots of a HisToGene run."""
    settings = histogene_settings(config.extra)
    common = {"n_pos": settings["n_pos"], "target_sum": config.target_sum, "smooth": config.smooth}
    train_sections = load_sections(dataset, fit_ids, genes, **common)
    val_sections = load_sections(dataset, val_ids, genes, **common) if val_ids else []
    datamodule = SectionDataModule(train_sections, val_sections, config.seed)
    module = HisToGeneModule(settings, len(genes), config.lr_image)
    return module, datamodule, sum(len(s.expr) for s in train_sections)


def load_histogene(run_dir: str | Path) -> HisToGeneNet:
    """The trained network of a HisToGene run (eval mode)."""
    run_dir = Path(run_dir)
    card_path = run_dir / MODEL_CARD
    if not card_path.is_file():
        raise FileNotFoundError(
            f"{card_path} not found: not a finished HisToGene run (rankbygene train --method "
            "histogene)."
        )
    card = json.loads(card_path.read_text())
    net = HisToGeneNet(card["n_genes"], **card["settings"])
    net.load_state_dict(load_file(str(run_dir / MODEL_FILE)))
    return net.eval()


def is_histogene_run(run_dir: str | Path) -> bool:
    """Whether a run directory holds a HisToGene network."""
    return (Path(run_dir) / MODEL_CARD).is_file()


@torch.inference_mode()
def extract_histogene_features(
    run_dir: str | Path,
    dataset: STDataset | str | Path,
    out_dir: str | Path,
    *,
    sample_ids: Sequence[str] | None = None,
) -> list[Path]:
    """Each spot's transformer output in the context of its section → ``out_dir/{id}.h5``."""
    from rankbygene.features.io import feature_path, update_summary, write_features

    net = load_histogene(run_dir)
    ds = read_dataset(dataset) if isinstance(dataset, str | Path) else dataset
    ids = list(sample_ids) if sample_ids is not None else list(ds.ids)
    out_dir = Path(out_dir)
    run = str(Path(run_dir))
    written, paths = {}, []
    for sid in ids:
        (section,) = load_sections(ds, [sid], None, n_pos=net.n_pos)
        feats = net.embed(section.patches, section.positions).numpy()
        with ds[sid].patches() as store:
            coords, barcodes = store.coords, store.barcodes
        attrs = {
            keys.FEAT_ATTR_ENCODER: "histogene",
            keys.FEAT_ATTR_SOURCE_RUN: run,
            keys.FEAT_ATTR_TRANSFORM: net.transform.to_dict(),
            "sample_id": sid,
            "embed_dim": int(feats.shape[1]),
            "rankbygene_version": __version__,
        }
        path = write_features(feature_path(out_dir, sid), feats, coords, barcodes, attrs)
        paths.append(path)
        written[sid] = {"n_spots": len(feats), "dim": int(feats.shape[1]), "file": path.name}
        logger.info("sample %s: %d spots -> %s", sid, len(feats), path)
    header = {
        "encoder": "histogene",
        "name": Path(run_dir).name,
        "source_run": run,
        "embed_dim": int(net.norm.normalized_shape[0]),
        "transform": net.transform.to_dict(),
        "data": str(Path(ds.root).resolve()),
    }
    update_summary(out_dir, header, written)
    return paths
