"""Training throughput on CPU with the `tiny` encoder, and frozen-backbone caching.

Measures, in one process on one synthetic dataset:
  * spots/s of full training for each method (rankbygene, hest-ft, bleep);
  * epoch time with a frozen backbone whose features are cached once, versus the
    same frozen backbone recomputed every epoch (``cache_frozen_features=False``),
    with a real backbone size (``resnet50-trunc`` at 224 px, random weights).
Epoch times are the median over epochs after the first (warm-up excluded).

Run: .venv/bin/python benchmarks/bench_training.py [--spots 300] [--epochs 4]
     [--frozen-encoder resnet50-trunc] [--frozen-spots 64]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
from pathlib import Path

import pandas as pd

from rankbygene import keys
from rankbygene.data import make_synthetic_dataset
from rankbygene.training import TrainConfig, train


def _epoch_stats(run: Path) -> tuple[float, float]:
    metrics = pd.read_csv(run / keys.RUN_METRICS).iloc[1:]  # drop the warm-up epoch
    return (
        statistics.median(metrics["epoch_seconds"]),
        statistics.median(metrics["spots_per_second"]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spots", type=int, default=300, help="Spots per sample (4 samples).")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--patch-px", type=int, default=64)
    parser.add_argument("--frozen-encoder", default="resnet50-trunc")
    parser.add_argument("--frozen-spots", type=int, default=64, help="Spots per sample.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_synthetic_dataset(root / "data", n_spots=args.spots, patch_px=args.patch_px)
        base = TrainConfig(
            data=str(root / "data"),
            encoder="tiny",
            epochs=args.epochs,
            panel="top100",
            accelerator="cpu",
            val_split="none",
            checkpoint_every=args.epochs,
        )
        rows = []
        for method in ("rankbygene", "hest-ft", "bleep"):
            run = train(base.updated(out=str(root / method), method=method))
            seconds, rate = _epoch_stats(run)
            rows.append((f"train {method} (tiny, {args.patch_px} px)", seconds, rate))
        make_synthetic_dataset(root / "data224", n_spots=args.frozen_spots, patch_px=224)
        frozen = base.updated(
            data=str(root / "data224"),
            method="rankbygene",
            encoder=args.frozen_encoder,
            freeze_backbone=True,
            batch_size=32,
            epochs=3,
            checkpoint_every=3,
        )
        cached = train(frozen.updated(out=str(root / "cached")))
        uncached = frozen.updated(out=str(root / "recomputed"), cache_frozen_features=False)
        recomputed = train(uncached)
        label = f"frozen {args.frozen_encoder} (224 px)"
        rows.append((f"{label}, cached features", *_epoch_stats(cached)))
        rows.append((f"{label}, recomputed each epoch", *_epoch_stats(recomputed)))
    print("| setting | epoch (s) | spots/s |")
    print("|---|---:|---:|")
    for name, seconds, rate in rows:
        print(f"| {name} | {seconds:.2f} | {rate:.0f} |")
    ratio = rows[-1][1] / rows[-2][1]
    print(f"\ncached frozen epochs are {ratio:.1f}x faster than recomputing the backbone")


if __name__ == "__main__":
    main()
