"""Loss cost: sampled / all-triplet ranking vs the InfoNCE term, forward + backward.

Run: ``.venv/bin/python benchmarks/bench_losses.py [--n 64] [--d 1024] [--threads 1]
[--min-run-time 5] [--rounds 5] [--json]``.
Target (issue "Gene-guided alignment training"): the sampled ranking loss costs at
most 2x the InfoNCE term on the same batch (N=64, D=1024).
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable

import torch
from torch.utils import benchmark

import harness
from rankbygene.losses import info_nce_loss, ranking_consistency_loss

QUICK = {"n": 16, "d": 64, "min_run_time": 0.2, "rounds": 2}
TARGET_RATIO = 2.0  # sampled ranking vs InfoNCE
LABELS = {
    "info_nce": "InfoNCE (image→gene)",
    "ranking_sampled": "ranking, sampled triplets (default)",
    "ranking_all": "ranking, all triplets (N³ tensor)",
    "ranking_reference_code": "ranking, reference-code variant",
}


def _fwd_bwd(
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    v: torch.Tensor,
    g: torch.Tensor,
) -> Callable[[], None]:
    """A closure running one forward + backward pass of ``loss_fn`` on (v, g)."""

    def step() -> None:
        v.grad = None
        g.grad = None
        loss_fn(v, g).backward()

    return step


def run(
    n: int = 64, d: int = 1024, threads: int = 1, min_run_time: float = 5.0, rounds: int = 5
) -> dict:
    """Time each loss and return per-call times and ratios to InfoNCE.

    The losses are timed in interleaved rounds (each round a blocked autorange of
    every loss) and the median over rounds is kept, so a load change on a shared
    machine hits all losses alike instead of biasing the ratios.

    Args:
        n: Batch size N.
        d: Feature width D.
        threads: torch intra-op threads for the timing.
        min_run_time: Seconds of measurement per loss, split over the rounds.
        rounds: Number of interleaved rounds.

    Returns:
        ``{"n", "d", "threads", "times_us": {...}, "ratio_vs_infonce": {...}}``.
    """
    torch.manual_seed(0)
    v = torch.randn(n, d, requires_grad=True)
    g = torch.randn(n, d, requires_grad=True)
    gen = torch.Generator().manual_seed(0)
    losses: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
        "info_nce": lambda a, b: info_nce_loss(a, b),
        "ranking_sampled": lambda a, b: ranking_consistency_loss(a, b, generator=gen),
        "ranking_all": lambda a, b: ranking_consistency_loss(a, b, triplets="all"),
        "ranking_reference_code": lambda a, b: ranking_consistency_loss(
            a, b, generator=gen, variant="reference-code"
        ),
    }
    timers = {
        name: benchmark.Timer(
            stmt="step()", globals={"step": _fwd_bwd(fn, v, g)}, num_threads=threads
        )
        for name, fn in losses.items()
    }
    samples: dict[str, list[float]] = {name: [] for name in losses}
    for _ in range(rounds):
        for name, timer in timers.items():
            measured = timer.blocked_autorange(min_run_time=min_run_time / rounds)
            samples[name].append(measured.median * 1e6)
    times = {name: statistics.median(vals) for name, vals in samples.items()}
    base = times["info_nce"]
    return {
        "n": n,
        "d": d,
        "threads": threads,
        "rounds": rounds,
        "times_us": {k: round(t, 1) for k, t in times.items()},
        "ratio_vs_infonce": {k: round(t / base, 2) for k, t in times.items()},
    }


def table(result: dict) -> str:
    """The Markdown table of BENCHMARKS.md: time per call and ratio to InfoNCE per loss."""
    rows = []
    for key, label in LABELS.items():
        ratio = f"{result['ratio_vs_infonce'][key]:.2f}"
        if key == "ranking_sampled":
            ratio = f"**{ratio}** (target ≤ {TARGET_RATIO:g})"
        rows.append([label, f"{result['times_us'][key]:.0f}", ratio])
    return harness.markdown_table(["loss", "time / call (µs)", "ratio to InfoNCE"], rows)


def main() -> None:
    """Command-line entry point: print the table (or the JSON with ``--json``)."""
    harness.main(sys.modules[__name__])


if __name__ == "__main__":
    main()
