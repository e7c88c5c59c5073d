"""Helpers of the reliability matrix (docs/reliability.md), importable by any row.

``tests/reliability`` is on ``sys.path`` while its tests run (pytest's rootdir
conftest mode), so a row file imports these as ``from reliability_helpers import ...``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import pickle
import shutil
import sys
from pathlib import Path

from typer.testing import CliRunner, Result

from rankbygene.cli.main import app

__all__ = [
    "CHILD",
    "N_GENES",
    "N_SPOTS",
    "PATCH_PX",
    "SMALL_RUN",
    "TEST",
    "TRAIN",
    "USER_ERROR_EXIT",
    "assert_refused_untrusted",
    "assert_user_error",
    "child_env",
    "copy_tree",
    "error_message",
    "eval_args",
    "file_state",
    "rbg",
    "signal_and_wait",
    "start_paused",
    "temp_leftovers",
    "train_args",
    "tree_state",
    "wait_for",
    "write_code_running_pickle",
]

USER_ERROR_EXIT = 2

# 4 samples of 3 patients (sample s belongs to patient s % 3: SYN00 and SYN03 share one).
N_SPOTS, N_GENES, PATCH_PX = 24, 16, 16
TRAIN = "SYN00,SYN01"
TEST = "SYN02"
SMALL_RUN = {"proj_dim": 32}  # a small head keeps checkpoints and heads at a few MB


def copy_tree(src: Path, dst: Path) -> Path:
    """A private copy of a fixture directory that a row may damage."""
    shutil.copytree(src, dst)
    return dst


def train_args(data: Path, out: Path, *extra: str) -> list[str | Path]:
    """``rankbygene train`` on the fixture dataset: 1 epoch of the tiny encoder."""
    return [
        "train",
        "--data",
        data,
        "--out",
        out,
        "--train-samples",
        TRAIN,
        "--val-split",
        "none",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--panel",
        "top8",
        "--accelerator",
        "cpu",
        *extra,
    ]


def eval_args(data: Path, features: Path | None, out: Path, *extra: str) -> list[str | Path]:
    """``rankbygene evaluate genes``: ridge probe (fast), train SYN00,SYN01, test SYN02."""
    feats = ["--features", features] if features is not None else []
    return [
        "evaluate",
        "genes",
        "--data",
        data,
        *feats,
        "--train-samples",
        TRAIN,
        "--test-samples",
        TEST,
        "--panel",
        "top8",
        "--probe",
        "ridge",
        "--out",
        out,
        *extra,
    ]


def _reopen_log_streams() -> None:
    """Point log handlers left on the runner's closed stderr back at the real one.

    A command's ``logging.basicConfig`` (and Lightning, imported during a command)
    binds stream handlers to the stderr that typer's runner captures and then closes;
    a new process would bind them to its own stderr.
    """
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            stream = getattr(handler, "stream", None)
            if isinstance(handler, logging.StreamHandler) and getattr(stream, "closed", False):
                handler.stream = sys.stderr  # setStream would flush the closed one


def rbg(*args: str | Path) -> Result:
    """Run ``rankbygene ARGS`` in-process through the real command (typer's CliRunner)."""
    try:
        return CliRunner().invoke(app, [str(a) for a in args])
    finally:
        _reopen_log_streams()


def error_message(stderr: str) -> str:
    """The ``error: ...`` message in a command's stderr ('' if none).

    Progress bars and log lines may come before it; the message is the rest of the
    stream from the line that starts with ``error: ``.
    """
    lines = stderr.replace("\r", "\n").split("\n")
    for i, line in enumerate(lines):
        if line.startswith("error: "):
            return "\n".join(lines[i:]).strip()
    return ""


def assert_user_error(result: Result, *fragments: str | Path, usage: bool = False) -> str:
    """The policy: ``error: ...`` on stderr, exit status 2, no traceback; returns the message.

    Every fragment (a file, an argument, the fix) must appear in the message.
    ``usage=True`` also accepts typer's own usage error (a bad option value that the
    command line itself rejects, printed in a box as ``Error``).
    """
    assert result.exit_code == USER_ERROR_EXIT, (
        f"exit {result.exit_code}, exception {result.exception!r}\n{result.output}"
    )
    assert "Traceback" not in result.output, result.output
    message = error_message(result.stderr)
    if not message and usage and "Error" in result.stderr:
        message = result.stderr
    assert message, result.stderr
    flat = " ".join(message.split())  # typer wraps long usage errors in a box
    for fragment in fragments:
        assert " ".join(str(fragment).split()) in flat, f"{fragment!r} not in {message!r}"
    return message


def file_state(path: Path) -> tuple[str, int]:
    """(sha256 of the bytes, mtime in ns) of one file."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def tree_state(root: Path) -> dict[str, tuple[str, int]]:
    """:func:`file_state` of every file under ``root``, by relative path."""
    return {str(p.relative_to(root)): file_state(p) for p in sorted(root.rglob("*")) if p.is_file()}


def temp_leftovers(root: Path) -> list[Path]:
    """Temporary files of interrupted atomic writes (``fileio.atomic_path``) under ``root``."""
    return sorted(p for p in root.rglob("*") if ".tmp-" in p.name)


class _RunsCodeWhenLoaded:
    """Unpickling this calls ``Path(marker).touch()``: code a weights file must never run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def write_code_running_pickle(path: Path, marker: Path, *, torch_zip: bool = False) -> Path:
    """Write a "weights" file whose unpickling would create ``marker``.

    ``torch_zip=False`` writes a bare pickle; ``True`` the zip container of
    ``torch.save`` (what a ``.pt``/``.ckpt`` file is), with the payload under
    ``state_dict`` as real checkpoints nest it.
    """
    payload = {"state_dict": _RunsCodeWhenLoaded(marker)}
    if torch_zip:
        import torch

        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    assert not marker.exists()
    return path


def assert_refused_untrusted(result: Result, weights: Path, marker: Path) -> None:
    """The command refused the file as unsafe to unpickle, and its code never ran."""
    assert not marker.exists(), "the pickled code ran"
    assert_user_error(result, weights, "unsafe")


def child_env() -> dict[str, str]:
    """Environment of a child ``rankbygene`` process: this source tree first, and this
    process's torch thread count (results depend on it, and rows compare a child's
    numbers with this process's)."""
    import torch

    src = Path(__file__).resolve().parents[2] / "src"
    path = os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), "PYTHONPATH": path}


# -- child processes for the signal rows (test_faults.py) --------------------------------

# Run the real command in a child process after installing a pause: ``PAUSE`` (Python
# source) replaces one function by a wrapper that, at the chosen moment, touches the
# marker file (argv[1]) and sleeps, so the test can signal the process at exactly that
# point. The rest of argv is the command line.
CHILD = """
import pathlib, sys, time
MARKER = pathlib.Path(sys.argv[1])
def pause():
    MARKER.touch()
    time.sleep(600)
{pause}
from rankbygene.cli.main import app
sys.argv = ["rankbygene", *sys.argv[2:]]
app()
"""


def start_paused(pause: str, marker: Path, *args: str | Path):
    """Start ``rankbygene ARGS`` in a child that calls ``pause()`` where ``pause`` says."""
    import subprocess

    code = CHILD.format(pause=pause)
    return subprocess.Popen(
        [sys.executable, "-c", code, str(marker), *(str(a) for a in args)],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a suite started in the background (`make test &`) ignores SIGINT, and an
        # ignored signal is inherited: give the child a terminal's Ctrl-C back
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    """In the child before exec: SIGINT to its default (Python then raises KeyboardInterrupt)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(marker: Path, proc, timeout: float = 300.0) -> None:
    """Wait until the child reached its pause (fails with its output if it exited)."""
    import time

    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"child exited with {proc.returncode} before pausing:\n{err}")
        assert time.monotonic() < deadline, "child did not reach its pause in time"
        time.sleep(0.05)


def signal_and_wait(proc, signum: int) -> tuple[int, str]:
    """Send ``signum`` to the child and return (exit status, stderr)."""
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err
