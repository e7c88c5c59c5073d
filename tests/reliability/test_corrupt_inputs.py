"""Rows "corrupt inputs": truncated HDF5, checkpoints, weights and JSON cards.

Each must give ``error: <file>: <what is wrong>`` with exit status 2, no traceback,
and leave the damaged file exactly as it was (bytes and mtime).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reliability_helpers import (
    assert_user_error,
    copy_tree,
    eval_args,
    file_state,
    rbg,
    train_args,
)

from rankbygene import keys

TRUNCATED_HDF5 = "truncated or not an HDF5 file"


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut a file to a fraction of its bytes (a copy interrupted halfway)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def assert_named_and_unchanged(result, path: Path, before, *fragments: str) -> None:
    message = assert_user_error(result, path, *fragments)
    assert message.startswith(f"error: {path}: "), message
    assert file_state(path) == before, f"{path} was modified"


@pytest.mark.parametrize("command", ["data info", "train", "evaluate genes"])
def test_truncated_counts_h5ad(command: str, tmp_path: Path, dataset: Path, features: Path) -> None:
    data = copy_tree(dataset, tmp_path / "data")
    bad = truncate(data / keys.ST_DIR / f"SYN00{keys.ST_SUFFIX}")
    before = file_state(bad)
    args = {
        "data info": ["data", "info", data],
        "train": train_args(data, tmp_path / "run"),
        "evaluate genes": eval_args(data, features, tmp_path / "eval"),
    }[command]
    assert_named_and_unchanged(rbg(*args), bad, before, TRUNCATED_HDF5)


@pytest.mark.parametrize("command", ["data info", "train", "extract"])
def test_truncated_patches_h5(command: str, tmp_path: Path, dataset: Path) -> None:
    data = copy_tree(dataset, tmp_path / "data")
    bad = truncate(data / keys.PATCHES_DIR / f"SYN01{keys.PATCHES_SUFFIX}")
    before = file_state(bad)
    args = {
        "data info": ["data", "info", data],
        "train": train_args(data, tmp_path / "run"),
        "extract": ["extract", "--data", data, "--encoder", "tiny", "--out", tmp_path / "f"],
    }[command]
    assert_named_and_unchanged(rbg(*args), bad, before, TRUNCATED_HDF5)


def test_truncated_feature_h5_in_evaluate_genes(
    tmp_path: Path, dataset: Path, features: Path
) -> None:
    feats = copy_tree(features, tmp_path / "feats")
    bad = truncate(feats / "SYN02.h5")
    before = file_state(bad)
    result = rbg(*eval_args(dataset, feats, tmp_path / "eval"))
    assert_named_and_unchanged(result, bad, before, TRUNCATED_HDF5)
    assert not (tmp_path / "eval").exists()


def test_truncated_feature_h5_in_extract_is_not_taken_as_done(
    tmp_path: Path, dataset: Path, features: Path
) -> None:
    """A damaged file where extract would skip a finished sample: refused, --overwrite named."""
    feats = copy_tree(features, tmp_path / "feats")
    bad = truncate(feats / "SYN00.h5")
    before = file_state(bad)
    result = rbg("extract", "--data", dataset, "--encoder", "tiny", "--out", feats)
    assert_named_and_unchanged(result, bad, before, TRUNCATED_HDF5, "--overwrite")
    # ... and --overwrite replaces it with a readable file
    r = rbg("extract", "--data", dataset, "--encoder", "tiny", "--out", feats, "--overwrite")
    assert r.exit_code == 0, r.output
    from rankbygene.features.io import read_features

    assert read_features(bad).features.shape[0] > 0


def test_truncated_slide_bag(tmp_path: Path, slide_bags) -> None:
    bags, labels, _ = slide_bags
    bags = copy_tree(bags, tmp_path / "bags")
    bad = truncate(bags / "S3.h5")
    before = file_state(bad)
    result = rbg(
        "evaluate",
        "slides",
        "--features",
        bags,
        "--labels",
        labels,
        "--out",
        tmp_path / "e",
        "--folds",
        "2",
        "--epochs",
        "1",
    )
    assert_named_and_unchanged(result, bad, before, TRUNCATED_HDF5)


def test_truncated_checkpoint_on_resume(tmp_path: Path, dataset: Path, run_dir: Path) -> None:
    run = copy_tree(run_dir, tmp_path / "run")
    bad = truncate(run / keys.RUN_CHECKPOINTS / keys.RUN_LAST_CKPT)
    before = file_state(bad)
    result = rbg(*train_args(dataset, run, "--resume"))
    assert_named_and_unchanged(result, bad, before, "truncated")


def test_truncated_run_encoder_weights(tmp_path: Path, dataset: Path, run_dir: Path) -> None:
    run = copy_tree(run_dir, tmp_path / "run")
    bad = truncate(run / keys.RUN_ENCODER_DIR / keys.ENCODER_WEIGHTS)
    before = file_state(bad)
    result = rbg("extract", "--data", dataset, "--run", run, "--out", tmp_path / "f")
    assert_named_and_unchanged(result, bad, before, "truncated")


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_truncated_weights_file(tmp_path: Path, dataset: Path, suffix: str) -> None:
    import torch
    from safetensors.torch import save_file

    from rankbygene.models import create_encoder

    state = {k: v.contiguous() for k, v in create_encoder("tiny").backbone.state_dict().items()}
    bad = tmp_path / f"tiny{suffix}"
    if suffix == ".pt":
        torch.save(state, bad)
    else:
        save_file(state, str(bad))
    truncate(bad)
    before = file_state(bad)
    result = rbg(
        "extract", "--data", dataset, "--encoder", "tiny", "--weights", bad, "--out", tmp_path / "f"
    )
    assert_named_and_unchanged(result, bad, before, "truncated")


def _drop_key(path: Path, key: str) -> Path:
    card = json.loads(path.read_text())
    del card[key]
    path.write_text(json.dumps(card))
    return path


def test_encoder_card_missing_key(tmp_path: Path, dataset: Path, run_dir: Path) -> None:
    run = copy_tree(run_dir, tmp_path / "run")
    bad = _drop_key(run / keys.RUN_ENCODER_DIR / keys.ENCODER_CARD, "backbone")
    before = file_state(bad)
    result = rbg("extract", "--data", dataset, "--run", run, "--out", tmp_path / "f")
    assert_named_and_unchanged(result, bad, before, "'backbone'")


def test_heads_card_missing_key(
    tmp_path: Path, dataset: Path, stnet_run: Path, features: Path
) -> None:
    run = copy_tree(stnet_run, tmp_path / "run")
    bad = _drop_key(run / keys.RUN_HEADS_CARD, "n_genes")
    before = file_state(bad)
    args = eval_args(dataset, features, tmp_path / "e", "--probe", "head", "--run", str(run))
    assert_named_and_unchanged(rbg(*args), bad, before, "'n_genes'")


@pytest.mark.parametrize("card", ["encoder", "heads", "features", "metadata"])
def test_truncated_json_card(
    card: str, tmp_path: Path, dataset: Path, run_dir: Path, stnet_run: Path, features: Path
) -> None:
    """A JSON file cut short is named with the fix, whichever command reads it."""
    run = copy_tree(run_dir, tmp_path / "run")
    stnet = copy_tree(stnet_run, tmp_path / "stnet")
    feats = copy_tree(features, tmp_path / "feats")
    data = copy_tree(dataset, tmp_path / "data")
    bad, args = {
        "encoder": (
            run / keys.RUN_ENCODER_DIR / keys.ENCODER_CARD,
            ["extract", "--data", data, "--run", run, "--out", tmp_path / "f"],
        ),
        "heads": (
            stnet / keys.RUN_HEADS_CARD,
            eval_args(data, feats, tmp_path / "e", "--probe", "head", "--run", str(stnet)),
        ),
        "features": (
            feats / keys.FEATURES_SUMMARY,
            ["extract", "--data", data, "--encoder", "tiny", "--out", feats, "--overwrite"],
        ),
        "metadata": (
            data / keys.METADATA_DIR / f"SYN00{keys.METADATA_SUFFIX}",
            ["data", "info", data],
        ),
    }[card]
    truncate(bad)
    before = file_state(bad)
    assert_named_and_unchanged(rbg(*args), bad, before, "not valid JSON")
