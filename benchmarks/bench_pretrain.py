"""Self-supervised pretraining throughput on CPU: tiles/s of DINO and SimCLR per encoder.

Pretrains each encoder with each method on the spot patches of one synthetic dataset
(64 px patches; the views are cropped and resized to the encoder's input size: 64 px
for ``tiny``, 224 px for ``resnet18``), batch 32, the default views (DINO: 2 global + 6
local crops; SimCLR: 2 crops) made in the main process (``num_workers`` 0), random
weights. Tiles/s and epoch time are the median over epochs after the first (warm-up),
read from each run's ``metrics.csv``; they include making the views.

Run: ``.venv/bin/python benchmarks/bench_pretrain.py [--tiles 64] [--epochs 3]
[--encoders tiny,resnet18] [--methods dino,simclr] [--threads 2] [--json]``.
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

import harness
from rankbygene import keys
from rankbygene.data import make_synthetic_dataset
from rankbygene.models import create_encoder
from rankbygene.pretraining import PretrainConfig, pretrain
from rankbygene.text import parse_ids

QUICK = {"tiles": 32, "epochs": 2, "encoders": "tiny"}


def run(
    tiles: int = 64,
    epochs: int = 3,
    encoders: str = "tiny,resnet18",
    methods: str = "dino,simclr",
    batch_size: int = 32,
    threads: int = 2,
) -> dict:
    """Tiles/s and epoch time of each encoder × method.

    Args:
        tiles: Tiles of the run (spot patches of one synthetic sample).
        epochs: Epochs of each run (at least 2: the first is warm-up).
        encoders: Comma-separated encoder names.
        methods: Comma-separated pretraining methods.
        batch_size: Tiles per batch.
        threads: torch intra-op threads.

    Returns:
        ``{"rows": [{"encoder", "method", "input_px", "views", "tiles_per_s", "epoch_s"}]}``.
    """
    if epochs < 2:
        raise ValueError("epochs must be >= 2 (the first is warm-up)")
    torch.set_num_threads(threads)
    logging.getLogger("lightning").setLevel(logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_synthetic_dataset(root / "data", n_samples=1, n_spots=tiles, patch_px=64)
        for encoder in parse_ids(encoders):
            for method in parse_ids(methods):
                config = PretrainConfig(
                    images=str(root / "data"),
                    out=str(root / f"{encoder}-{method}"),
                    encoder=encoder,
                    method=method,
                    epochs=epochs,
                    batch_size=batch_size,
                    accelerator="cpu",
                    checkpoint_every=epochs,
                )
                metrics = pd.read_csv(pretrain(config) / keys.RUN_METRICS).iloc[1:]
                views = 2 + (config.n_local_views if method == "dino" else 0)
                rows.append(
                    {
                        "encoder": encoder,
                        "method": method,
                        "input_px": create_encoder(encoder).transform.input_size,
                        "views": views,
                        "tiles_per_s": statistics.median(metrics["tiles_per_second"]),
                        "epoch_s": statistics.median(metrics["epoch_seconds"]),
                    }
                )
    return {"rows": rows}


def table(result: dict) -> str:
    """The Markdown table of BENCHMARKS.md."""
    return harness.markdown_table(
        ["encoder", "method", "views per tile", "tiles/s", "epoch (s)"],
        [
            [
                f"{r['encoder']} ({r['input_px']} px)",
                r["method"],
                str(r["views"]),
                f"{r['tiles_per_s']:.1f}",
                f"{r['epoch_s']:.1f}",
            ]
            for r in result["rows"]
        ],
    )


def main() -> None:
    """Command-line entry point: print the table (or the JSON with ``--json``)."""
    harness.main(sys.modules[__name__])


if __name__ == "__main__":
    main()
