"""Run every benchmark in this folder and print its Markdown table (``make bench``).

Run: ``.venv/bin/python benchmarks/run_all.py [--quick] [NAME ...]``.

Every ``bench_*.py`` module here is run in turn, in file-name order (a new module
with the interface of ``harness.py`` is picked up without editing this script); NAMEs
(``losses`` or ``bench_losses``) restrict the run to those. For each bench it prints a
heading, the command that reproduces it alone and its table: the tables of
BENCHMARKS.md. ``--quick`` passes each module's ``QUICK`` options (tiny sizes, the
heavy ResNet parts left out) for a smoke run of a minute: the numbers then mean
nothing, only that every bench still runs. A bench whose optional inputs are absent is
skipped with its reason; one that fails does not stop the others, and the exit
status is 1 if any failed (they are named at the end).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

import harness

FOLDER = Path(__file__).resolve().parent
INTERFACE = ("run", "table", "QUICK")


def discover(folder: Path = FOLDER) -> list[str]:
    """Module names of the benchmarks in ``folder`` (``bench_*.py``), in a stable order."""
    return sorted(path.stem for path in folder.glob("bench_*.py"))


def _select(names: list[str], wanted: Sequence[str]) -> list[str]:
    chosen = [w if w.startswith("bench_") else f"bench_{w}" for w in wanted]
    unknown = [c for c in chosen if c not in names]
    if unknown:
        raise SystemExit(f"error: no benchmark(s) {unknown}; known: {', '.join(names)}")
    return [n for n in names if n in chosen] if chosen else names


def run_one(name: str, quick: bool) -> str:
    """Print one bench's heading, command and table; return "ok", "skipped" or "failed"."""
    print(f"## {name}\n", flush=True)
    try:
        module = importlib.import_module(name)
        missing = [attr for attr in INTERFACE if not hasattr(module, attr)]
        if missing:
            raise TypeError(f"{name} lacks {', '.join(missing)} (see benchmarks/harness.py)")
        options = dict(module.QUICK) if quick else {}
        print(f"{(module.__doc__ or '').strip().splitlines()[0]}\n")
        print(f"Command: `{harness.command(module, options)}`\n", flush=True)
        reason = harness.skip_reason(module, options)
        if reason:
            print(f"skipped: {reason}\n", flush=True)
            return "skipped"
        t0 = time.perf_counter()
        result = harness.measure(module, options)
        print(module.table(result))
        print(f"\n({time.perf_counter() - t0:.1f} s)\n", flush=True)
        return "ok"
    except Exception as error:  # one broken bench must not hide the others' results
        traceback.print_exc()
        print(f"FAILED: {type(error).__name__}: {error}\n", flush=True)
        return "failed"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; the exit status is 1 if any failed."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="Smoke run: each bench's QUICK.")
    parser.add_argument("names", nargs="*", metavar="NAME", help="Only these benches.")
    args = parser.parse_args(argv)
    # Before any bench imports tqdm, which reads its settings from the environment
    # once: progress bars would bury the tables.
    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    names = _select(discover(), args.names)
    t0 = time.perf_counter()
    status = {name: run_one(name, args.quick) for name in names}
    by = {s: [n for n, v in status.items() if v == s] for s in ("ok", "skipped", "failed")}
    print(
        f"{len(names)} benchmarks in {time.perf_counter() - t0:.0f} s: "
        + "; ".join(
            f"{s} {len(v)}" + (f" ({', '.join(v)})" if v and s != "ok" else "")
            for s, v in by.items()
        )
    )
    return 1 if by["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
