"""``make bench`` keeps working: run_all runs every bench, prints its table, reports failures."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

# The start of each bench's table header, as BENCHMARKS.md shows it.
HEADERS = {
    "bench_cli_startup": "| command | median wall (s) | ratio to `python -c pass` |",
    "bench_extract": "| configuration | tiny @ 64 px |",
    "bench_losses": "| loss | time / call (µs) | ratio to InfoNCE |",
    "bench_metrics": "| implementation | time (",
    "bench_patch_read": "| reader | time / batch of ",
    "bench_pretrain": "| encoder | method | views per tile | tiles/s | epoch (s) |",
    "bench_smoothing": "| implementation | time for ",
    "bench_training": "| setting | epoch (s) | spots/s |",
}


def _run_all(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(folder / "run_all.py"), *args],
        capture_output=True,
        text=True,
        cwd=folder.parent,
        timeout=600,
    )


def _sections(stdout: str) -> dict[str, list[str]]:
    """Output lines of each bench, by the name in its ``## name`` heading."""
    sections: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        if line.startswith("## "):
            sections[line[3:]] = []
        elif sections:
            sections[next(reversed(sections))].append(line)
    return sections


@pytest.mark.slow
def test_quick_run_prints_every_bench_table() -> None:
    done = _run_all(BENCHMARKS, "--quick")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sections = _sections(done.stdout)
    names = sorted(p.stem for p in BENCHMARKS.glob("bench_*.py"))
    assert list(sections) == names
    assert set(HEADERS) <= set(names)
    for name, lines in sections.items():
        commands = [line for line in lines if line.startswith("Command: `")]
        assert len(commands) == 1 and f"benchmarks/{name}.py" in commands[0], lines
        table = [i for i, line in enumerate(lines) if line.startswith("| ")]
        assert table, f"{name} printed no table:\n" + "\n".join(lines)
        assert lines[table[0] + 1].startswith("|---|"), name
        assert lines[table[0]].startswith(HEADERS.get(name, "| ")), lines[table[0]]
    assert done.stdout.rstrip().endswith(f"ok {len(names)}; skipped 0; failed 0")


_FAKE_BENCH = '''"""{doc}"""
import sys

import harness

QUICK = {{"size": 1}}


def run(size: int = 10) -> dict:
    """Fake measurements.

    Args:
        size: Problem size.
    """
    {body}
    return {{"size": size}}


def table(result: dict) -> str:
    return harness.markdown_table(["size", "value"], [["n", str(result["size"])]])
{extra}

if __name__ == "__main__":
    harness.main(sys.modules[__name__])
'''


def _fake(folder: Path, name: str, doc: str, body: str = "pass", extra: str = "") -> None:
    text = _FAKE_BENCH.format(doc=doc, body=body, extra=extra)
    (folder / f"{name}.py").write_text(text, encoding="utf-8")


def test_run_all_discovers_new_benches_runs_past_failures_and_reports_them(tmp_path) -> None:
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    for script in ("run_all.py", "harness.py"):
        shutil.copy(BENCHMARKS / script, folder / script)
    _fake(folder, "bench_b_broken", "Fails.", body='raise RuntimeError("boom")')
    _fake(folder, "bench_a_fine", "A fine bench.")
    _fake(
        folder,
        "bench_c_optional",
        "Needs an input.",
        extra='\ndef skip_reason(**options):\n    return "no input file here"\n',
    )
    _fake(folder, "bench_predict", "Added later, with the same interface.")
    (folder / "bench_d_unimportable.py").write_text("import no_such_module_here\n")

    done = _run_all(folder, "--quick")

    assert done.returncode == 1
    sections = _sections(done.stdout)
    assert list(sections) == [
        "bench_a_fine",
        "bench_b_broken",
        "bench_c_optional",
        "bench_d_unimportable",
        "bench_predict",
    ]
    assert "| n | 1 |" in sections["bench_a_fine"]  # the QUICK options reached run()
    assert "| n | 1 |" in sections["bench_predict"]
    assert "FAILED: RuntimeError: boom" in sections["bench_b_broken"]
    assert "skipped: no input file here" in sections["bench_c_optional"]
    assert (
        "FAILED: ModuleNotFoundError: No module named 'no_such_module_here'"
        in sections["bench_d_unimportable"]
    )
    # the command that reproduces a bench alone, relative to the working directory
    command = f"Command: `{sys.executable} benchmarks/bench_predict.py --size 1`"
    assert command in sections["bench_predict"]
    assert done.stdout.rstrip().endswith(
        "ok 2; skipped 1 (bench_c_optional); failed 2 (bench_b_broken, bench_d_unimportable)"
    )


def test_bench_script_runs_alone_with_its_options(tmp_path) -> None:
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    shutil.copy(BENCHMARKS / "harness.py", folder / "harness.py")
    _fake(folder, "bench_x", "One bench.")
    script = [sys.executable, str(folder / "bench_x.py")]
    table = subprocess.run([*script, "--size", "3"], capture_output=True, text=True, check=True)
    assert table.stdout == "| size | value |\n|---|---:|\n| n | 3 |\n"
    quick = subprocess.run([*script, "--quick", "--json"], capture_output=True, text=True)
    assert quick.stdout == '{\n  "size": 1\n}\n'
