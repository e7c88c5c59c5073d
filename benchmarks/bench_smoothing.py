"""Spatial smoothing: one sparse product vs the per-spot pandas loop of research code.

Run: ``.venv/bin/python benchmarks/bench_smoothing.py [--spots 5000] [--genes 1000]
[--ref-spots 200] [--repeats 5] [--json]``.
Target (issue "Foundation"): smoothing a 5,000-spot x 1,000-gene sample is at least
100x faster than the reference loop. The reference (for each spot: build its neighbour
ids, mask the DataFrame, take the mean) is timed on ``--ref-spots`` spots and
extrapolated linearly to all spots; its output on those spots is checked against ours.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

import harness
from rankbygene.data import smooth_expression

QUICK = {"spots": 500, "genes": 50, "ref_spots": 20, "repeats": 2}

HEX_OFFSETS = [(0, -2), (0, 2), (-1, -1), (-1, 1), (1, -1), (1, 1)]


def hex_sample(n_spots: int, n_genes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A Visium-like sample: hex array coordinates and log-normalised-looking expression.

    Shape:
        returns rc (N, 2) int64 and X (N, G) float32.
    """
    rng = np.random.default_rng(seed)
    per_row = int(np.ceil(np.sqrt(n_spots)))
    r, k = np.divmod(np.arange(n_spots), per_row)
    rc = np.stack([r, 2 * k + r % 2], axis=1).astype(np.int64)
    X = np.log1p(rng.poisson(0.4, size=(n_spots, n_genes)).astype(np.float32) * 50.0)
    return rc, X


def reference_smoothing(expr: pd.DataFrame, coords: pd.DataFrame, spots: np.ndarray) -> np.ndarray:
    """The per-spot loop found in research code (the baseline, deliberately not vectorised).

    Shape:
        returns (len(spots), G).
    """
    out = []
    for i in spots:
        r, c = coords.iloc[i]["array_row"], coords.iloc[i]["array_col"]
        mask = (coords["array_row"] == r) & (coords["array_col"] == c)
        for dr, dc in HEX_OFFSETS:
            mask |= (coords["array_row"] == r + dr) & (coords["array_col"] == c + dc)
        out.append(expr[mask.to_numpy()].mean(axis=0).to_numpy())
    return np.stack(out)


def run(spots: int = 5000, genes: int = 1000, ref_spots: int = 200, repeats: int = 5) -> dict:
    """Time both implementations and return the timings and the speed-up.

    Args:
        spots: Spots in the sample (a hex grid).
        genes: Genes.
        ref_spots: Spots the reference loop is timed on (then extrapolated).
        repeats: Runs of the vectorised version (the best is kept).

    Returns:
        ``{"spots", "genes", "ours_s", "reference_s_extrapolated", "ratio", ...}``.
    """
    rc, X = hex_sample(spots, genes)
    expr = pd.DataFrame(X)
    coords = pd.DataFrame(rc, columns=["array_row", "array_col"])

    ours = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        smoothed = smooth_expression(X, rc, "auto")
        ours.append(time.perf_counter() - t0)
    ours_s = min(ours)

    subset = np.random.default_rng(1).choice(spots, size=min(ref_spots, spots), replace=False)
    t0 = time.perf_counter()
    ref = reference_smoothing(expr, coords, subset)
    ref_sub_s = time.perf_counter() - t0
    np.testing.assert_allclose(smoothed[subset], ref, rtol=1e-4, atol=1e-5)
    ref_s = ref_sub_s * spots / len(subset)
    return {
        "spots": spots,
        "genes": genes,
        "ours_s": ours_s,
        "reference_spots_timed": len(subset),
        "reference_s_on_subset": ref_sub_s,
        "reference_s_extrapolated": ref_s,
        "ratio": ref_s / ours_s,
        "target_ratio": 100.0,
    }


def _seconds(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.1f} s"


def table(result: dict) -> str:
    """The Markdown table of BENCHMARKS.md: both times and the speed-up."""
    ours, ref = result["ours_s"], result["reference_s_extrapolated"]
    timed = result["reference_spots_timed"]
    ref_label = f"per-spot pandas loop (extrapolated from {timed:,} spots)"
    if timed == result["spots"]:
        ref_label = "per-spot pandas loop"
    speedup = f"**{result['ratio']:.0f}×** (target ≥ {result['target_ratio']:.0f}×)"
    return harness.markdown_table(
        ["implementation", f"time for {result['spots']:,} spots", "ratio"],
        [
            ["`smooth_expression` (sparse product)", _seconds(ours), "1"],
            [ref_label, _seconds(ref), speedup],
        ],
    )


def main() -> None:
    """Command-line entry point: print the table (or the JSON with ``--json``)."""
    harness.main(sys.modules[__name__])


if __name__ == "__main__":
    main()
