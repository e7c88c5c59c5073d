"""A run says at its start which samples it trains and validates on, and how to change it."""

from __future__ import annotations

import logging

import pytest

from rankbygene.training import TrainConfig, train
from rankbygene.training.data import describe_split


def test_an_automatic_hold_out_is_said_with_the_flag_that_trains_on_all() -> None:
    text = describe_split(["SYN00", "SYN01"], ["SYN02"], chosen=False, val_split="patient")
    assert text.startswith("Training on SYN00,SYN01; validating on SYN02")
    assert "--val-split none" in text and "--val-samples" in text


def test_explicit_and_absent_validation_are_said_plainly() -> None:
    chosen = describe_split(["A", "B"], ["C"], chosen=True, val_split="patient")
    assert chosen == "Training on A,B; validating on C (--val-samples)."
    assert describe_split(["A", "B"], [], chosen=False, val_split="none") == (
        "Training on A,B; no validation samples."
    )


def test_train_logs_the_split_before_any_work(tiny_dataset, tmp_path, caplog) -> None:
    """Three training samples of three patients: one is held out, and the log says so
    before the data are built (here the batch is too large, so building fails)."""
    config = TrainConfig(
        data=str(tiny_dataset),
        out=str(tmp_path / "run"),
        train_samples=["SYN00", "SYN01", "SYN02"],
        panel="top40",
        batch_size=10_000,
        accelerator="cpu",
    )
    with caplog.at_level(logging.INFO, logger="rankbygene"), pytest.raises(ValueError):
        train(config)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Training on")]
    assert len(said) == 1, caplog.text
    assert "; validating on SYN0" in said[0] and "--val-split none" in said[0]
