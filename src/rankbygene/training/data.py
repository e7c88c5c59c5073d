"""Training data: panel and expression from the training samples, spots in memory, a DataModule.

Expression is preprocessed once per sample (normalise, log1p, smooth, panel) and the
panel is chosen on the alignment-training samples only. Patches of small datasets are
preloaded as one uint8 tensor (a her2st-sized dataset at 224 px is ~140 MB), which
makes a batch one index operation; large datasets stream from the patch store.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from rankbygene.data import STDataset, preprocess_expression, select_panel
from rankbygene.data.splits import assert_patient_disjoint

logger = logging.getLogger(__name__)


@dataclass
class SpotTable:
    """Spots of some samples, aligned row by row.

    Attributes:
        images: uint8 patches, or None when streamed. Shape: (N, 3, H, W).
        expr: Preprocessed panel expression. Shape: (N, G).
        sample_ids: Sample id of each row. Shape: (N,).
        spot_index: Row of the spot within its sample. Shape: (N,).
    """

    images: torch.Tensor | None
    expr: torch.Tensor
    sample_ids: np.ndarray
    spot_index: np.ndarray

    def __len__(self) -> int:
        return int(self.expr.shape[0])


def choose_validation(
    dataset: STDataset,
    train_ids: Sequence[str],
    val_ids: Sequence[str] | None,
    val_split: str,
    seed: int,
) -> tuple[list[str], list[str]]:
    """Split the training ids into alignment-train and validation ids.

    Explicit ``val_ids`` win. Otherwise ``patient`` holds out one whole patient (when
    the training ids span at least two), ``section`` holds out one sample, ``none``
    keeps everything for training. The choice is seeded, so a run is reproducible.

    Returns:
        (train ids, validation ids), disjoint.
    """
    train_ids = list(train_ids)
    if val_ids:
        missing = sorted(set(val_ids) - set(dataset.ids))
        if missing:
            raise ValueError(
                f"Validation sample(s) {missing} are not in {dataset.root}; known ids: "
                f"{', '.join(dataset.ids)}."
            )
        remaining = [s for s in train_ids if s not in set(val_ids)]
        return remaining, list(val_ids)
    rng = np.random.default_rng(seed)
    patients = dataset.patients()
    if val_split == "patient":
        by_patient = sorted({patients[s] for s in train_ids})
        if len(by_patient) >= 2:
            held = by_patient[int(rng.integers(len(by_patient)))]
            val = [s for s in train_ids if patients[s] == held]
            train = [s for s in train_ids if patients[s] != held]
            assert_patient_disjoint(train, val, patients)
            return train, val
        logger.info("Only one patient among the training samples: validating on one section.")
        val_split = "section"
    if val_split == "section" and len(train_ids) >= 2:
        held = train_ids[int(rng.integers(len(train_ids)))]
        return [s for s in train_ids if s != held], [held]
    return train_ids, []


def describe_split(
    fit_ids: Sequence[str], val_ids: Sequence[str], *, chosen: bool, val_split: str
) -> str:
    """The split a run will use, said before it starts, with how to change it.

    Args:
        fit_ids: Samples the encoder is trained on.
        val_ids: Validation samples (held out of the training samples given).
        chosen: Whether the validation ids were given explicitly (``--val-samples``).
        val_split: The automatic hold-out rule, when they were not.
    """
    train = f"Training on {','.join(fit_ids)}"
    if not val_ids:
        return f"{train}; no validation samples."
    held = f"{train}; validating on {','.join(val_ids)}"
    if chosen:
        return f"{held} (--val-samples)."
    return (
        f"{held} (held out by --val-split {val_split}; --val-split none trains on all "
        "of them, --val-samples chooses the validation samples)."
    )


def build_spot_table(
    dataset: STDataset,
    sample_ids: Sequence[str],
    genes: Sequence[str],
    *,
    target_sum: float,
    smooth: bool,
    preload: bool,
) -> SpotTable:
    """Preprocess expression and (optionally) load the patches of ``sample_ids``."""
    exprs, images, owners, rows = [], [], [], []
    for sample_id in sample_ids:
        sample = dataset[sample_id]
        adata = sample.read_adata()
        exprs.append(preprocess_expression(adata, genes, target_sum=target_sum, smooth=smooth))
        n = adata.n_obs
        owners.append(np.full(n, sample_id, dtype=object))
        rows.append(np.arange(n))
        if preload:
            with sample.patches() as store:
                patches = store[np.arange(len(store))]
            if len(patches) != n:
                raise ValueError(
                    f"Sample {sample_id}: {len(patches)} patches but {n} spots in the counts; "
                    "re-import the sample."
                )
            images.append(torch.from_numpy(np.ascontiguousarray(patches)).permute(0, 3, 1, 2))
    return SpotTable(
        images=torch.cat(images).contiguous() if preload else None,
        expr=torch.from_numpy(np.concatenate(exprs).astype(np.float32)),
        sample_ids=np.concatenate(owners),
        spot_index=np.concatenate(rows),
    )


class SpotTensorDataset(Dataset):
    """Batches of spots from a :class:`SpotTable` (or cached backbone features).

    ``__getitems__`` makes the DataLoader fetch a whole batch with one index operation.
    """

    def __init__(
        self,
        table: SpotTable,
        dataset: STDataset | None = None,
        features: torch.Tensor | None = None,
    ) -> None:
        self.table = table
        self.dataset = dataset
        self.features = features
        if features is None and table.images is None and dataset is None:
            raise ValueError("Streaming spots needs the dataset to read patches from.")

    def __len__(self) -> int:
        return len(self.table)

    def _images(self, idx: np.ndarray) -> torch.Tensor:
        if self.table.images is not None:
            return self.table.images[torch.from_numpy(idx)]
        assert self.dataset is not None
        owners = self.table.sample_ids[idx]
        out: torch.Tensor | None = None
        for sample_id in np.unique(owners):  # a loop over samples, not spots
            where = torch.from_numpy(np.flatnonzero(owners == sample_id))
            with self.dataset[sample_id].patches() as store:
                patches = torch.from_numpy(store[self.table.spot_index[idx[where.numpy()]]])
            patches = patches.permute(0, 3, 1, 2)
            if out is None:
                out = torch.empty((len(idx), *patches.shape[1:]), dtype=torch.uint8)
            out[where] = patches
        assert out is not None
        return out

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        batch = {"expr": self.table.expr[torch.from_numpy(idx)]}
        if self.features is not None:
            batch["features"] = self.features[torch.from_numpy(idx)]
        else:
            batch["image"] = self._images(idx)
        return batch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([index]).items()}


def _identity_collate(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch


class EpochSeededSampler(Sampler[int]):
    """A permutation that depends only on (seed, epoch): resuming reproduces the order."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def __iter__(self):
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=gen).tolist())

    def __len__(self) -> int:
        return self.n


class SpotDataModule(L.LightningDataModule):
    """Train/validation loaders over preprocessed spots."""

    def __init__(
        self,
        train: SpotTensorDataset,
        val: SpotTensorDataset | None,
        batch_size: int,
        num_workers: int,
        seed: int,
    ) -> None:
        super().__init__()
        self.train = train
        self.val = val
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed

    def _loader(self, ds: SpotTensorDataset, sampler: Sampler | None, drop_last: bool):
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=False,
            drop_last=drop_last,
            num_workers=self.num_workers,
            collate_fn=_identity_collate,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        # Full batches only: the contrastive and ranking losses compare spots within a batch.
        return self._loader(self.train, EpochSeededSampler(len(self.train), self.seed), True)

    def val_dataloader(self) -> DataLoader | list:
        if self.val is None:
            return []  # the trainer is built with limit_val_batches=0 then
        # Keep a small last batch unless it is too small to form a triplet.
        drop_last = len(self.val) % self.batch_size < 3 and len(self.val) >= self.batch_size
        return self._loader(self.val, None, drop_last)


def select_training_panel(
    dataset: STDataset,
    train_ids: Sequence[str],
    panel: str,
    gene_list: str | None,
    target_sum: float = 1e4,
) -> list[str]:
    """Choose the gene panel on the training samples only (docs/method.md).

    ``topN``/``hvgN`` rank genes on expression normalised to ``target_sum``, as the targets.
    """
    adatas = [dataset[s].read_adata() for s in train_ids]
    selection = select_panel(adatas, panel, gene_list=gene_list, target_sum=target_sum)
    if selection.dropped:
        logger.warning(
            "%d gene(s) of the list are absent from the training samples and were dropped "
            "(first: %s).",
            len(selection.dropped),
            ", ".join(list(selection.dropped)[:5]),
        )
    return list(selection.genes)
