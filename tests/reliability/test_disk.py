"""Rows "disk": an output path that cannot be a directory, a read-only filesystem, a full disk.

Each gives ``error: ...`` naming the path and what the system said, exit status 2, and
leaves nothing half-written: no temporary files of interrupted atomic writes, and no
file a later command would take as complete (a run's ``heads.json``, features under
their own name, an evaluation's ``results.json``).

Root ignores permission bits, so a read-only or full filesystem is a small tmpfs
mounted for the test (``mount -t tmpfs``, root only); without root the read-only row
uses ``chmod 0o500`` and the full-disk rows are skipped.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_helpers import assert_user_error, eval_args, rbg, temp_leftovers, train_args

from rankbygene import keys

IS_ROOT = os.geteuid() == 0


def _mount_tmpfs(target: Path, options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")


@pytest.fixture
def small_disk(tmp_path: Path, request) -> Iterator[Path]:
    """A tmpfs of ``request.param`` bytes (a disk that fills up)."""
    if not IS_ROOT:
        pytest.skip("mounting a small filesystem needs root")
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, f"size={request.param}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nothing can be written to (a read-only tmpfs as root, else mode 0o500)."""
    target = tmp_path / "ro"
    if IS_ROOT:
        _mount_tmpfs(target, "ro,size=64k")
        try:
            yield target
        finally:
            subprocess.run(["umount", str(target)], check=False)
    else:
        target.mkdir()
        target.chmod(0o500)
        yield target
        target.chmod(0o700)


def _commands(data: Path, feats: Path, out: Path, bags_labels) -> dict[str, list]:
    bags, labels = bags_labels
    return {
        "data synth": ["data", "synth", "--out", out, "--samples", "1", "--spots", "24"],
        "train": train_args(data, out),
        "extract": ["extract", "--data", data, "--encoder", "tiny", "--out", out],
        "evaluate genes": eval_args(data, feats, out),
        "evaluate slides": [
            "evaluate",
            "slides",
            "--features",
            bags,
            "--labels",
            labels,
            "--out",
            out,
            "--folds",
            "2",
            "--epochs",
            "1",
        ],
        "report": ["report", data, "--out", out / keys.REPORT_HTML],
    }


COMMANDS = ["data synth", "train", "extract", "evaluate genes", "evaluate slides", "report"]


@pytest.mark.parametrize("command", COMMANDS)
def test_output_under_a_regular_file(
    command: str, tmp_path: Path, dataset: Path, features: Path, slide_bags
) -> None:
    blocker = tmp_path / "results.txt"
    blocker.write_text("a file where a directory is expected\n")
    out = blocker / "out"
    args = _commands(dataset, features, out, slide_bags[:2])[command]
    assert_user_error(rbg(*args), blocker, "Not a directory")
    assert blocker.read_text() == "a file where a directory is expected\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_read_only_output_directory(
    command: str, read_only_dir: Path, dataset: Path, features: Path, slide_bags
) -> None:
    out = read_only_dir / "out"
    args = _commands(dataset, features, out, slide_bags[:2])[command]
    assert_user_error(rbg(*args), read_only_dir)
    assert list(read_only_dir.iterdir()) == []


def _nothing_taken_as_complete(out: Path) -> None:
    assert temp_leftovers(out) == [], temp_leftovers(out)
    assert not (out / keys.RUN_HEADS_CARD).exists()
    assert not (out / keys.RESULTS_JSON).exists()


@pytest.mark.parametrize("small_disk", ["256k"], indirect=True)
def test_disk_full_during_train(small_disk: Path, dataset: Path, small_config: Path) -> None:
    """A checkpoint does not fit: the run stops with the system's message, no partial file."""
    out = small_disk / "run"
    r = rbg(*train_args(dataset, out, "--config", str(small_config)))  # a ~1.5 MB checkpoint
    ckpt = out / keys.RUN_CHECKPOINTS / keys.RUN_LAST_CKPT
    assert_user_error(r, f"{ckpt}: No space left on device")
    _nothing_taken_as_complete(out)
    ckpts = out / keys.RUN_CHECKPOINTS
    assert not ckpts.exists() or list(ckpts.iterdir()) == []


@pytest.mark.parametrize("small_disk", ["40k"], indirect=True)
def test_disk_full_during_extract(small_disk: Path, dataset: Path) -> None:
    out = small_disk / "feats"
    r = rbg("extract", "--data", dataset, "--encoder", "tiny", "--out", out)
    assert_user_error(r, "No space left on device")
    _nothing_taken_as_complete(out)
    from rankbygene.features.io import read_features

    for path in out.glob(f"*{keys.PATCHES_SUFFIX}"):  # what is there is whole
        assert read_features(path).features.shape == (24, 128)


@pytest.mark.parametrize("small_disk", ["8k"], indirect=True)
def test_disk_full_during_evaluate(small_disk: Path, dataset: Path, features: Path) -> None:
    out = small_disk / "eval"
    r = rbg(*eval_args(dataset, features, out))
    assert_user_error(r, "No space left on device")
    _nothing_taken_as_complete(out)
