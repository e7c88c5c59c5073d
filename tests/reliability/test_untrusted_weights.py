"""Rows "untrusted weights": a pickle that runs code never runs; wrong weights are named.

Every command with a ``--weights`` option has a row in :data:`ROWS` (or in
:data:`PENDING`, for a command being built elsewhere: ``predict``, tested once it
exists); :func:`test_every_weights_option_is_in_the_matrix` walks the command tree, so
a new command that takes ``--weights`` fails here until its row is added. A row is the
command line with ``WEIGHTS`` where the file goes (see
``reliability_helpers.write_code_running_pickle`` and ``assert_refused_untrusted``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from reliability_helpers import (
    TRAIN,
    assert_refused_untrusted,
    assert_user_error,
    copy_tree,
    rbg,
    train_args,
    write_code_running_pickle,
)

from rankbygene import keys
from rankbygene.cli.main import app

WEIGHTS = "<weights>"


def _commands_with_option(command: Any, option: str, path=()) -> list[tuple[str, ...]]:
    """Paths of the (sub)commands that have ``option`` (typer vendors its own click)."""
    found = []
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands_with_option(sub, option, (*path, name))
    if any(option in p.opts for p in command.params):
        found.append(path)
    return found


WITH_WEIGHTS = _commands_with_option(typer.main.get_command(app), "--weights")

# command path -> command line with WEIGHTS where the file goes, from a Row's paths
ROWS: dict[tuple[str, ...], Callable[[Row], list]] = {
    ("train",): lambda r: train_args(r.data, r.out, "--weights", WEIGHTS),
    ("extract",): lambda r: [
        "extract", "--data", r.data, "--encoder", "tiny", "--weights", WEIGHTS, "--out", r.out,
    ],
    ("pretrain",): lambda r: [
        "pretrain", "--images", r.data, "--encoder", "tiny", "--weights", WEIGHTS, "--out", r.out,
    ],
    ("experiment", "her2st"): lambda r: [
        "experiment", "her2st", "--root", r.her2st, "--sections", "C2,C3", "--weights", WEIGHTS,
        "--out", r.out,
    ],
}  # fmt: skip
# Rows of commands being built elsewhere, tested once the command exists.
PENDING: dict[tuple[str, ...], Callable[[Row], list]] = {
    ("predict",): lambda r: [
        "predict", "--data", r.data, "--predictor", r.predictor(), "--encoder", "tiny",
        "--weights", WEIGHTS, "--out", r.out,
    ],
}  # fmt: skip
WEIGHTS_COMMANDS = {**ROWS, **{k: v for k, v in PENDING.items() if k in WITH_WEIGHTS}}


@dataclass
class Row:
    """The paths a row's command line needs."""

    data: Path
    out: Path
    her2st: Path
    predictor: Callable[[], Path]


def test_every_weights_option_is_in_the_matrix() -> None:
    assert sorted(WITH_WEIGHTS) == sorted(WEIGHTS_COMMANDS), (
        "a command takes --weights: add its row to ROWS"
    )


@pytest.fixture
def predictor(tmp_path: Path, dataset: Path, features: Path) -> Callable[[], Path]:
    """A saved predictor (``rankbygene fit``, ridge on the tiny encoder's features), made
    only when a row asks for it."""

    def make() -> Path:
        out = tmp_path / "predictor"
        r = rbg("fit", "--data", dataset, "--features", features, "--train-samples", TRAIN,
                "--probe", "ridge", "--panel", "top8", "--out", out)  # fmt: skip
        assert r.exit_code == 0, r.output
        return out

    return make


def _her2st_root(tmp_path: Path) -> Path:
    """A her2st folder; the weights must be refused before any section is read."""
    root = tmp_path / "her2st"
    root.mkdir()
    return root


@pytest.mark.parametrize("torch_zip", [False, True], ids=["bare pickle", "torch zip"])
@pytest.mark.parametrize("command", list(WEIGHTS_COMMANDS), ids=" ".join)
def test_code_in_a_weights_pickle_never_runs(
    command: tuple[str, ...], torch_zip: bool, tmp_path: Path, dataset: Path, predictor
) -> None:
    marker = tmp_path / "pwned"
    weights = write_code_running_pickle(tmp_path / "weights.pt", marker, torch_zip=torch_zip)
    row = Row(dataset, tmp_path / "out", _her2st_root(tmp_path), predictor)
    args = WEIGHTS_COMMANDS[command](row)
    args = [weights if a == WEIGHTS else a for a in args]
    assert_refused_untrusted(rbg(*args), weights, marker)


def test_code_in_a_resumed_checkpoint_never_runs(
    tmp_path: Path, dataset: Path, run_dir: Path
) -> None:
    """``train --resume`` reads RUN/checkpoints/last.ckpt: a run directory from elsewhere."""
    run = copy_tree(run_dir, tmp_path / "run")
    marker = tmp_path / "pwned"
    ckpt = run / keys.RUN_CHECKPOINTS / keys.RUN_LAST_CKPT
    write_code_running_pickle(ckpt, marker, torch_zip=True)
    assert_refused_untrusted(rbg(*train_args(dataset, run, "--resume")), ckpt, marker)


def test_weights_of_another_architecture_list_the_mismatched_keys(
    tmp_path: Path, dataset: Path
) -> None:
    from safetensors.torch import save_file

    from rankbygene.models import create_encoder

    other = create_encoder("resnet18").backbone.state_dict()
    weights = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in other.items()}, str(weights))
    for args in (
        train_args(dataset, tmp_path / "run", "--weights", str(weights)),
        [
            "extract",
            "--data",
            dataset,
            "--encoder",
            "tiny",
            "--weights",
            weights,
            "--out",
            tmp_path / "f",
        ],
    ):
        message = assert_user_error(
            rbg(*args), weights, "'tiny'", "missing key(s)", "unexpected key(s)", "bn1.weight"
        )
        assert "more" in message  # long lists are cut, with the count of the rest
    assert not (tmp_path / "run").exists() and not (tmp_path / "f").exists()


def test_hub_weights_without_network_are_an_error_not_random_weights(
    tmp_path: Path, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    for args in (
        train_args(dataset, tmp_path / "run", "--encoder", "resnet50-trunc", "--weights", "hub"),
        [
            "extract",
            "--data",
            dataset,
            "--encoder",
            "resnet50-trunc",
            "--weights",
            "hub",
            "--out",
            tmp_path / "f",
        ],
    ):
        assert_user_error(rbg(*args), "'resnet50-trunc'", "could not fetch", "weights=PATH")
    assert not (tmp_path / "run").exists() and not (tmp_path / "f").exists()
