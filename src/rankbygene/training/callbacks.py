"""Callbacks: one ``metrics.csv`` row per epoch with every logged term; the checkpoint rule."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
from lightning.pytorch.callbacks import ModelCheckpoint

from rankbygene import keys
from rankbygene.fileio import atomic_path

_PREFIXES = ("train_", "val_", "momentum")


def count_spots(batch: dict[str, Any]) -> int:
    """Spots in a training batch (a module-level function: DDP spawn pickles callbacks)."""
    return int(batch["expr"].shape[0])


class EpochMetricsCSV(L.Callback):
    """Write ``metrics.csv``: epoch, each loss term, rank accuracies, throughput.

    Rows of epochs at or after the current one are replaced, so a resumed run leaves
    one row per epoch. Written atomically (temp file + rename) by rank 0 only.

    Args:
        path: the CSV file.
        count: the number of items in a batch (default: spots, ``batch["expr"]``).
        unit: what is counted; the throughput column is ``{unit}_per_second``.
    """

    def __init__(
        self,
        path: str | Path,
        count: Callable[[Any], int] | None = None,
        unit: str = "spots",
    ) -> None:
        self.path = Path(path)
        self._count = count or count_spots
        self._unit = unit
        self._start = 0.0
        self._spots = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()
        self._spots = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._spots += self._count(batch)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        seconds = time.perf_counter() - self._start
        row: dict[str, float] = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        for key, value in sorted(trainer.callback_metrics.items()):
            if key.startswith(_PREFIXES):
                row[key] = float(value)
        row["epoch_seconds"] = seconds
        row[f"{self._unit}_per_second"] = self._spots * trainer.world_size / max(seconds, 1e-9)
        table = pd.read_csv(self.path) if self.path.exists() else pd.DataFrame()
        if len(table):
            table = table[table["epoch"] < trainer.current_epoch]
        table = pd.concat([table, pd.DataFrame([row])], ignore_index=True)
        with atomic_path(self.path) as tmp:
            table.to_csv(tmp, index=False)


def checkpoint_callbacks(directory: Path, keep: int) -> list[ModelCheckpoint]:
    """``last.ckpt`` after every epoch, and ``epochNNN.ckpt`` kept every ``keep`` epochs.

    Lightning writes ``save_last`` only in an epoch that saved a top-k file, so with
    no kept epochs ``last.ckpt`` is the single top-k file itself (monitor None: the
    latest). Two callbacks need different ``every_n_epochs`` (their state key).
    """
    epochs = {"filename": "epoch{epoch:03d}", "auto_insert_metric_name": False, "save_top_k": -1}
    if keep == 1:
        return [ModelCheckpoint(directory, every_n_epochs=1, save_last=True, **epochs)]
    last = ModelCheckpoint(
        directory,
        filename=Path(keys.RUN_LAST_CKPT).stem,
        every_n_epochs=1,
        save_top_k=1,
        enable_version_counter=False,
    )
    if keep == 0:
        return [last]
    return [last, ModelCheckpoint(directory, every_n_epochs=keep, **epochs)]
