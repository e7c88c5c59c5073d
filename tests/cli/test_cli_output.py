"""What a person sees on the console when a command runs."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from rankbygene.data import make_synthetic_dataset

CLI = [sys.executable, "-c", "from rankbygene.cli.main import app; app()"]


@pytest.mark.slow
def test_train_prints_each_log_line_once(tmp_path: Path) -> None:
    make_synthetic_dataset(tmp_path / "d", n_samples=2, n_spots=40, n_genes=20, patch_px=16)
    args = ["train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "run")]
    args += ["--method", "stnet", "--epochs", "1", "--batch-size", "16", "--panel", "top8"]
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("INFO")]
    messages = Counter(line.split(": ", 1)[-1] for line in lines)
    assert messages["GPU available: False, used: False"] == 1, lines
    assert not [m for m, n in messages.items() if n > 1], lines
    assert not any("NumExpr" in line for line in lines)
    assert done.stdout.strip().endswith(f"Run written to {tmp_path / 'run'}")
