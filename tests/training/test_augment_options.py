"""The strong view's colour strengths are config options that reach the augmentation."""

from __future__ import annotations

import pytest
import torch
import yaml
from typer.testing import CliRunner

from rankbygene import keys
from rankbygene.cli.main import app
from rankbygene.models import PAPER_COLOUR, ColourAugment
from rankbygene.training import TrainConfig, resolve_config
from rankbygene.training.module import AlignmentModule


def _module(**kw) -> AlignmentModule:
    cfg = resolve_config(TrainConfig(data="d", out="o", encoder="tiny", **kw))
    return AlignmentModule(cfg, n_genes=5)


def _images(n: int = 64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=gen)


def test_default_strengths_are_the_papers():
    colour = _module().student_augment.keywords["colour"]
    assert colour == PAPER_COLOUR
    assert (colour.brightness, colour.contrast, colour.saturation, colour.hue) == (
        0.2,
        0.2,
        0.2,
        0.1,
    )
    assert (colour.p_jitter, colour.p_grayscale) == (0.8, 0.2)


def test_config_strengths_reach_the_student_augmentation():
    module = _module(
        jitter_brightness=0.05,
        jitter_contrast=0.1,
        jitter_saturation=0.0,
        jitter_hue=0.02,
        p_jitter=0.5,
        p_grayscale=0.0,
    )
    assert module.student_augment.keywords["colour"] == ColourAugment(
        0.05, 0.1, 0.0, 0.02, 0.5, 0.0
    )


def test_strengths_change_the_view_itself():
    x = _images()
    gen = torch.Generator
    # no colour change at all: only flips remain, so every pixel value is kept
    off = _module(p_jitter=0.0, p_grayscale=0.0).student_augment(x, generator=gen().manual_seed(1))
    assert torch.equal(off.flatten(1).sort(1).values, x.flatten(1).sort(1).values)
    # always grayscale: the three channels agree in every sample
    gray = _module(p_jitter=0.0, p_grayscale=1.0).student_augment(x, generator=gen().manual_seed(1))
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])
    # the paper's setting greys only some samples
    paper = _module().student_augment(x, generator=gen().manual_seed(1))
    grey = (paper[:, 0] == paper[:, 1]).flatten(1).all(1) & (paper[:, 1] == paper[:, 2]).flatten(
        1
    ).all(1)
    assert 0 < int(grey.sum()) < len(x)


def test_out_of_range_strength_is_refused():
    with pytest.raises(ValueError, match="hue strength"):
        _module(jitter_hue=0.7)
    with pytest.raises(ValueError, match="p_grayscale"):
        _module(p_grayscale=1.5)


@pytest.mark.slow
def test_train_flags_are_saved_in_the_run_config(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data", str(tiny_dataset), "--out", str(out), "--epochs", "1"]
    args += ["--panel", "top20", "--batch-size", "32", "--accelerator", "cpu"]
    args += ["--val-split", "none", "--jitter", "0.05,0.1,0,0.02", "--p-grayscale", "0"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    saved = yaml.safe_load((out / keys.RUN_CONFIG).read_text())
    assert [saved[k] for k in ("jitter_brightness", "jitter_contrast", "jitter_saturation")] == [
        0.05,
        0.1,
        0.0,
    ]
    assert (saved["jitter_hue"], saved["p_grayscale"], saved["p_jitter"]) == (0.02, 0.0, 0.8)


def test_bad_jitter_flag_is_a_user_error(tmp_path):
    args = ["train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--jitter", "0.1,0.2"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 2 and "--jitter takes 4" in done.output
