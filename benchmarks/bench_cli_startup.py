"""Command-line start-up: wall time of `rankbygene --help`, `data info` and `train --help`.

Run: ``.venv/bin/python benchmarks/bench_cli_startup.py [--runs 7] [--json]``.
Target (usability): ``rankbygene --help`` and ``rankbygene data info DIR`` answer in
under 2 s wall on this machine. Each command runs as a subprocess of the installed
console script (the ``rankbygene`` next to the interpreter) on a small synthetic
dataset the script writes first; after one untimed warm-up round (disk cache,
bytecode), the commands and ``python -c pass`` (the interpreter's own start-up, the
reference) are interleaved in ``--runs`` rounds and the median of each is kept. Also
records what ``import rankbygene.cli.main`` loads: the heavy libraries must stay out
(torch, Lightning... load inside the command that needs them).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness
from rankbygene.data import make_synthetic_dataset

QUICK = {"runs": 1}
TARGET_S = 2.0  # for the commands in TARGETED
TARGETED = ("rankbygene --help", "rankbygene data info DIR")
REFERENCE = "python -c pass"
HEAVY = ("torch", "lightning", "timm", "matplotlib", "anndata", "sklearn")

# Run in a fresh interpreter: which modules `import rankbygene.cli.main` adds.
_IMPORTS = """
import json, sys, time
before = set(sys.modules)
t0 = time.perf_counter()
import rankbygene.cli.main
seconds = time.perf_counter() - t0
new = set(sys.modules) - before
top = {m.split(".")[0] for m in new} - set(sys.stdlib_module_names) - {"rankbygene"}
top = {m for m in top if not m.startswith("_") and m != "cython_runtime"}  # C-extension internals
print(json.dumps({"seconds": seconds, "modules": len(new), "packages": sorted(top)}))
"""


def console_script() -> Path:
    """The ``rankbygene`` console script of the interpreter's environment."""
    return Path(sys.executable).parent / "rankbygene"


def skip_reason(**options: object) -> str | None:
    """Why the bench cannot run: the package's console script is not installed."""
    if not console_script().is_file():
        return f"no console script {console_script()} (install the package: make install)"
    return None


def _wall(argv: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds


def run(runs: int = 7, spots: int = 50) -> dict:
    """Median wall time of each command, its ratio to ``python -c pass``, the CLI's imports.

    Args:
        runs: Interleaved timed rounds (the median of each command is kept).
        spots: Spots per sample of the dataset ``data info`` reads (2 samples).

    Returns:
        ``{"runs", "median_s": {command: s}, "ratio": {command: x}, "target_s",
        "imports": {"seconds", "modules", "packages", "heavy"}}``.
    """
    script = str(console_script())
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        make_synthetic_dataset(data, n_samples=2, n_spots=spots, n_genes=20, patch_px=32)
        commands = {
            REFERENCE: [sys.executable, "-c", "pass"],
            "rankbygene --help": [script, "--help"],
            "rankbygene data info DIR": [script, "data", "info", str(data)],
            "rankbygene train --help": [script, "train", "--help"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for timed in [False] + [True] * runs:
            for name, argv in commands.items():
                seconds = _wall(argv)
                if timed:
                    times[name].append(seconds)
    median = {name: statistics.median(values) for name, values in times.items()}
    probe = subprocess.run(
        [sys.executable, "-c", _IMPORTS], capture_output=True, text=True, check=True
    )
    imports = json.loads(probe.stdout)
    imports["heavy"] = [m for m in HEAVY if m in imports["packages"]]
    return {
        "runs": runs,
        "median_s": median,
        "ratio": {name: s / median[REFERENCE] for name, s in median.items()},
        "target_s": TARGET_S,
        "imports": imports,
    }


def table(result: dict) -> str:
    """The Markdown table: median wall time per command and its ratio to the interpreter's."""
    rows = []
    for name, seconds in result["median_s"].items():
        wall = f"{seconds:.2f}"
        if name in TARGETED:
            wall = f"**{wall}** (target < {result['target_s']:g} s)"
        ratio = f"{result['ratio'][name]:.0f}×" if name != REFERENCE else "1"
        rows.append([f"`{name}`", wall, ratio])
    text = harness.markdown_table(["command", "median wall (s)", f"ratio to `{REFERENCE}`"], rows)
    imports = result["imports"]
    heavy = ", ".join(imports["heavy"]) or "none"
    return (
        f"{text}\n\n`import rankbygene.cli.main` loads {imports['modules']} modules in "
        f"{imports['seconds']:.2f} s; heavy libraries ({', '.join(HEAVY)}) among them: "
        f"{heavy}; third-party packages: {', '.join(imports['packages']) or 'none'}."
    )


def main() -> None:
    """Command-line entry point: print the table (or the JSON with ``--json``)."""
    harness.main(sys.modules[__name__])


if __name__ == "__main__":
    main()
