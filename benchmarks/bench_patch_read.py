"""Random batch reads: the HDF5 patch store vs decoding one PNG file per spot.

Run: ``.venv/bin/python benchmarks/bench_patch_read.py [--patches 512] [--batch 64]
[--px 224] [--repeats 20] [--json]``.
Target (issue "Foundation"): reading a random batch of 64 patches (224 px) from the
patch store is at least 5x faster than decoding 64 per-spot PNG files. The script
renders synthetic H&E-like patches, writes them both ways into a temporary directory
(the store through ``write_sample``, the PNGs with Pillow) and reads the same random
batches from each, checking they agree.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import harness
from rankbygene.data import PatchStore, make_synthetic_dataset

QUICK = {"patches": 64, "batch": 16, "px": 64, "repeats": 3}


def _time(fn, batches: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
    """Median seconds per batch, and the batches read."""
    times, out = [], []
    for idx in batches:
        t0 = time.perf_counter()
        out.append(fn(idx))
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def run(patches: int = 512, batch: int = 64, px: int = 224, repeats: int = 20) -> dict:
    """Write ``patches`` patches both ways and time random batch reads.

    Args:
        patches: Patches written (one synthetic sample).
        batch: Patches per random batch.
        px: Patch side in pixels.
        repeats: Random batches read from each copy (the median is kept).

    Returns:
        ``{"store_ms", "png_ms", "ratio", ...}`` (median per batch).
    """
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ds = make_synthetic_dataset(
            root / "ds", n_samples=1, n_spots=patches, n_genes=20, patch_px=px, seed=0
        )
        store = PatchStore(ds["SYN00"].patches_path)
        images = store[:]
        png_dir = root / "png"
        png_dir.mkdir()
        for i, patch in enumerate(images):
            Image.fromarray(patch).save(png_dir / f"spot_{i:05d}.png")
        store.close()

        rng = np.random.default_rng(0)
        batches = [rng.choice(patches, size=batch, replace=False) for _ in range(repeats)]

        def read_png(idx: np.ndarray) -> np.ndarray:
            return np.stack(
                [np.asarray(Image.open(png_dir / f"spot_{i:05d}.png").convert("RGB")) for i in idx]
            )

        # fresh handle: the timing includes the lazy open on the first batch
        store = PatchStore(ds["SYN00"].patches_path)
        store_s, from_store = _time(store.read, batches)
        png_s, from_png = _time(read_png, batches)
        store.close()
        for a, b in zip(from_store, from_png, strict=True):
            np.testing.assert_array_equal(a, b)
        png_bytes = sum(p.stat().st_size for p in png_dir.iterdir())
        h5_bytes = ds["SYN00"].patches_path.stat().st_size
    return {
        "patches": patches,
        "batch": batch,
        "px": px,
        "repeats": repeats,
        "store_ms": store_s * 1e3,
        "png_ms": png_s * 1e3,
        "ratio": png_s / store_s,
        "target_ratio": 5.0,
        "h5_mb": h5_bytes / 2**20,
        "png_mb": png_bytes / 2**20,
    }


def table(result: dict) -> str:
    """The Markdown table of BENCHMARKS.md: time per batch from each copy, the speed-up."""
    speedup = f"**{result['ratio']:.1f}×** faster (target ≥ {result['target_ratio']:.0f}×)"
    return harness.markdown_table(
        ["reader", f"time / batch of {result['batch']}", "ratio"],
        [
            ["patch store (`PatchStore.read`)", f"{result['store_ms']:.1f} ms", speedup],
            [f"{result['batch']} PNG files", f"{result['png_ms']:.1f} ms", "1"],
        ],
    )


def main() -> None:
    """Command-line entry point: print the table (or the JSON with ``--json``)."""
    harness.main(sys.modules[__name__])


if __name__ == "__main__":
    main()
