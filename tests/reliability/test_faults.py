"""Rows "faults": SIGKILL / SIGINT of train, extract and evaluate at a chosen moment.

The command runs in a child process (the real command line) that pauses at the
moment under test (see ``reliability_helpers.CHILD``); the test then signals it and
checks that nothing a later command reads looks complete when it is not, and that
rerunning finishes the job.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pandas as pd
import pytest
import torch
from reliability_helpers import (
    copy_tree,
    eval_args,
    rbg,
    signal_and_wait,
    start_paused,
    temp_leftovers,
    train_args,
    tree_state,
    wait_for,
)
from safetensors.torch import load_file

from rankbygene import keys

TIMING_COLUMNS = ["epoch_seconds", "spots_per_second"]  # wall-clock: never equal twice

# Pause inside the third training step of the second epoch (epoch index 1).
PAUSE_TRAIN_MID_EPOCH_2 = """
from rankbygene.training.module import AlignmentModule
_step = AlignmentModule.training_step
def training_step(self, batch, batch_idx):
    if self.current_epoch == 1 and batch_idx == 2:
        pause()
    return _step(self, batch, batch_idx)
AlignmentModule.training_step = training_step
"""


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(
    tmp_path: Path, dataset: Path, small_config: Path
) -> None:
    common = ("--config", str(small_config), "--epochs", "3", "--seed", "7")
    full, parts = tmp_path / "full", tmp_path / "parts"
    r = rbg(*train_args(dataset, full, *common))
    assert r.exit_code == 0, r.output

    marker = tmp_path / "in-epoch-2"
    child = start_paused(PAUSE_TRAIN_MID_EPOCH_2, marker, *train_args(dataset, parts, *common))
    wait_for(marker, child)
    last = parts / keys.RUN_CHECKPOINTS / keys.RUN_LAST_CKPT
    assert torch.load(last, weights_only=True)["epoch"] == 0  # epoch 1 is saved, 2 is not
    status, _ = signal_and_wait(child, signal.SIGKILL)
    assert status == -signal.SIGKILL
    assert not (parts / keys.RUN_HEADS_CARD).exists()  # not a finished run

    r = rbg("train", "--data", dataset, "--out", parts, "--resume")  # with its saved settings
    assert r.exit_code == 0, r.output
    a = pd.read_csv(full / keys.RUN_METRICS).drop(columns=TIMING_COLUMNS)
    b = pd.read_csv(parts / keys.RUN_METRICS).drop(columns=TIMING_COLUMNS)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert list(b["epoch"]) == [0, 1, 2]
    for name in (f"{keys.RUN_ENCODER_DIR}/{keys.ENCODER_WEIGHTS}", keys.RUN_HEADS):
        ta, tb = load_file(str(full / name)), load_file(str(parts / name))
        assert ta.keys() == tb.keys()
        for key in ta:
            assert torch.equal(ta[key], tb[key]), f"{name}: {key}"


# Pause while the second feature file is being written: its temporary file exists.
PAUSE_EXTRACT_WRITING_SECOND_FILE = """
import h5py
_create = h5py.Group.create_dataset
_seen = []
def create_dataset(self, name, *args, **kwargs):
    if name == "barcode" and ".tmp-" in self.file.filename:
        _seen.append(self.file.filename)
        if len(_seen) == 2:
            pause()
    return _create(self, name, *args, **kwargs)
h5py.Group.create_dataset = create_dataset
"""


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_interrupted_extract_leaves_no_file_taken_as_complete(
    signum: int, tmp_path: Path, dataset: Path
) -> None:
    out = tmp_path / "feats"
    args = ["extract", "--data", dataset, "--encoder", "tiny", "--out", out]
    marker = tmp_path / "writing"
    child = start_paused(PAUSE_EXTRACT_WRITING_SECOND_FILE, marker, *args)
    wait_for(marker, child)
    status, err = signal_and_wait(child, signum)
    assert status != 0
    assert "Traceback" not in err
    done = sorted(p.name for p in out.glob(f"*{keys.PATCHES_SUFFIX}"))
    assert done == ["SYN00.h5"]  # the file being written is not visible under its name
    leftovers = temp_leftovers(out)
    if signum == signal.SIGINT:
        assert leftovers == []  # an interrupt cleans up its temporary file
    first = tree_state(out)["SYN00.h5"]

    r = rbg(*args)  # the rerun skips SYN00 and extracts the rest
    assert r.exit_code == 0, r.output
    assert tree_state(out)["SYN00.h5"] == first
    done = sorted(p.name for p in out.glob(f"*{keys.PATCHES_SUFFIX}"))
    assert done == ["SYN00.h5", "SYN01.h5", "SYN02.h5", "SYN03.h5"]
    assert temp_leftovers(out) == []  # a killed writer's temporary file is swept


# Pause after the predictions are written, before results.md and results.json.
PAUSE_EVALUATE_BEFORE_RESULTS = """
import rankbygene.evaluation.genes.results as results
_write = results.write_text_atomic
def write_text_atomic(path, text):
    pause()
    return _write(path, text)
results.write_text_atomic = write_text_atomic
"""


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_interrupted_evaluate_is_not_taken_as_complete_and_reruns(
    signum: int, tmp_path: Path, dataset: Path, features: Path
) -> None:
    feats = copy_tree(features, tmp_path / "feats")
    out = tmp_path / "eval"
    args = eval_args(dataset, feats, out)
    marker = tmp_path / "writing"
    child = start_paused(PAUSE_EVALUATE_BEFORE_RESULTS, marker, *args)
    wait_for(marker, child)
    status, err = signal_and_wait(child, signum)
    assert status != 0 and "Traceback" not in err
    assert (out / keys.PREDICTIONS_DIR / f"SYN02{keys.ST_SUFFIX}").is_file()
    assert not (out / keys.RESULTS_JSON).exists()  # written last: no complete evaluation

    from rankbygene.report import discover_report_inputs

    assert str(out) not in str(discover_report_inputs(tmp_path))

    r = rbg(*args)  # an unfinished evaluation is redone without --overwrite
    assert r.exit_code == 0, r.output
    assert (out / keys.RESULTS_JSON).is_file()
    assert temp_leftovers(out) == []
