"""Training throughput on CPU with the `tiny` encoder, and frozen-backbone caching.

Measures, in one process on one synthetic dataset:
  * spots/s of full training for each method (rankbygene, hest-ft, bleep);
  * epoch time with a frozen backbone whose features are cached once, versus the
    same frozen backbone recomputed every epoch (``cache_frozen_features=False``),
    with a real backbone size (``resnet50-trunc`` at 224 px, random weights).
Epoch times are the median over epochs after the first (warm-up excluded).

Run: ``.venv/bin/python benchmarks/bench_training.py [--spots 300] [--epochs 4]
[--frozen-encoder resnet50-trunc] [--frozen-spots 64] [--json]``
(``--frozen-spots 0`` leaves the frozen-backbone comparison out).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import pandas as pd

import harness
from rankbygene import keys
from rankbygene.data import make_synthetic_dataset
from rankbygene.text import parse_ids
from rankbygene.training import TrainConfig, train

# The frozen ResNet is the heavy part: the smoke run trains the tiny encoder only.
QUICK = {"samples": 2, "spots": 32, "epochs": 2, "frozen_spots": 0}
TARGET_RATIO = 10.0  # cached vs recomputed frozen epochs


def _epoch_stats(run: Path) -> dict[str, float]:
    metrics = pd.read_csv(run / keys.RUN_METRICS).iloc[1:]  # drop the warm-up epoch
    return {
        "epoch_s": statistics.median(metrics["epoch_seconds"]),
        "spots_per_s": statistics.median(metrics["spots_per_second"]),
    }


def run(
    samples: int = 4,
    spots: int = 300,
    epochs: int = 4,
    patch_px: int = 64,
    methods: str = "rankbygene,hest-ft,bleep",
    frozen_encoder: str = "resnet50-trunc",
    frozen_spots: int = 64,
    frozen_epochs: int = 3,
) -> dict:
    """Epoch time and spots/s of each method, then of a frozen backbone cached or not.

    Args:
        samples: Samples of each synthetic dataset.
        spots: Spots per sample for the method runs (``tiny`` encoder).
        epochs: Epochs of each method run (at least 2: the first is warm-up).
        patch_px: Patch side of the method runs.
        methods: Comma-separated methods to train.
        frozen_encoder: Backbone of the frozen-caching comparison (224 px patches).
        frozen_spots: Spots per sample of that comparison; 0 leaves it out.
        frozen_epochs: Epochs of each frozen run (at least 2).

    Returns:
        ``{"rows": [{"setting", "epoch_s", "spots_per_s"}], "cached_speedup"}`` (the
        speed-up is None without the frozen comparison).
    """
    if epochs < 2 or (frozen_spots and frozen_epochs < 2):
        raise ValueError("epochs and frozen_epochs must be >= 2 (the first is warm-up)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_synthetic_dataset(root / "data", n_samples=samples, n_spots=spots, patch_px=patch_px)
        base = TrainConfig(
            data=str(root / "data"),
            encoder="tiny",
            epochs=epochs,
            panel="top100",
            accelerator="cpu",
            val_split="none",
        )
        for method in parse_ids(methods):
            run_dir = train(base.updated(out=str(root / method), method=method))
            rows.append({"setting": f"train {method} (tiny, {patch_px} px)"})
            rows[-1].update(_epoch_stats(run_dir))
        speedup = None
        if frozen_spots > 0:
            make_synthetic_dataset(
                root / "data224", n_samples=samples, n_spots=frozen_spots, patch_px=224
            )
            frozen = base.updated(
                data=str(root / "data224"),
                method="rankbygene",
                encoder=frozen_encoder,
                freeze_backbone=True,
                batch_size=32,
                epochs=frozen_epochs,
            )
            label = f"frozen {frozen_encoder} (224 px)"
            for suffix, cache in (("cached features", True), ("recomputed each epoch", False)):
                run_dir = train(
                    frozen.updated(out=str(root / f"frozen-{cache}"), cache_frozen_features=cache)
                )
                rows.append({"setting": f"{label}, {suffix}", **_epoch_stats(run_dir)})
            speedup = rows[-1]["epoch_s"] / rows[-2]["epoch_s"]
    return {"rows": rows, "cached_speedup": speedup}


def table(result: dict) -> str:
    """The Markdown table of BENCHMARKS.md, and the caching speed-up below it."""
    text = harness.markdown_table(
        ["setting", "epoch (s)", "spots/s"],
        [[r["setting"], f"{r['epoch_s']:.2f}", f"{r['spots_per_s']:.0f}"] for r in result["rows"]],
    )
    if result["cached_speedup"] is not None:
        text += (
            f"\n\nCached frozen epochs are **{result['cached_speedup']:.0f}×** faster than "
            f"recomputing the backbone (target ≥ {TARGET_RATIO:.0f}×)."
        )
    return text


def main() -> None:
    """Command-line entry point: print the table (or the JSON with ``--json``)."""
    harness.main(sys.modules[__name__])


if __name__ == "__main__":
    main()
