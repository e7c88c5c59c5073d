"""Checkpoints written atomically: ``last.ckpt`` is the previous one or the whole new one.

Lightning's own writer truncates the target and then writes it, so a full disk or a
kill during the write leaves a partial ``last.ckpt`` that ``--resume`` cannot read. Here
the checkpoint is serialised in memory first (Lightning does the same before writing),
then written to a hidden temporary file and renamed over the target; a full disk is an
``OSError`` naming the checkpoint, and no partial file stays behind.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from rankbygene.fileio import write_bytes_atomic

__all__ = ["AtomicCheckpointIO"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """:class:`TorchCheckpointIO` whose saves go through :func:`fileio.write_bytes_atomic`."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_bytes_atomic(path, buffer.getbuffer())
