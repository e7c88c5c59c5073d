"""Rows "paths": missing inputs, an empty directory as dataset, spaces and non-ASCII names."""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_helpers import TEST, TRAIN, assert_user_error, eval_args, rbg, train_args

from rankbygene import keys


def _dataset_commands(data: Path, tmp: Path, features: Path) -> dict[str, list]:
    """Every command that reads a dataset, with ``data`` as the dataset."""
    return {
        "data info": ["data", "info", data],
        "train": train_args(data, tmp / "run"),
        "extract": ["extract", "--data", data, "--encoder", "tiny", "--out", tmp / "feats"],
        "evaluate genes": eval_args(data, features, tmp / "eval"),
    }


@pytest.mark.parametrize("command", ["data info", "train", "extract", "evaluate genes"])
def test_missing_dataset_is_named(command: str, tmp_path: Path, features: Path) -> None:
    missing = tmp_path / "no such dataset"
    args = _dataset_commands(missing, tmp_path, features)[command]
    assert_user_error(rbg(*args), missing, "does not exist", "rankbygene data synth")
    assert sorted(tmp_path.iterdir()) == []  # no output directory was started


@pytest.mark.parametrize("command", ["data info", "train", "extract", "evaluate genes"])
def test_empty_directory_as_dataset_is_named(command: str, tmp_path: Path, features: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    args = _dataset_commands(empty, tmp_path, features)[command]
    assert_user_error(rbg(*args), empty, f"no '{keys.METADATA_DIR}/' directory")
    assert sorted(tmp_path.iterdir()) == [empty]


def test_missing_inputs_of_every_command_are_named(
    tmp_path: Path, dataset: Path, features: Path, run_dir: Path, slide_bags
) -> None:
    """One missing file or directory per option that reads one."""
    bags, labels, _ = slide_bags
    gone = tmp_path / "gone"
    rows = [
        (["extract", "--data", dataset, "--run", gone, "--out", tmp_path / "f"], gone),
        (eval_args(dataset, gone, tmp_path / "e"), gone / f"SYN00{keys.PATCHES_SUFFIX}"),
        (eval_args(dataset, features, tmp_path / "e", "--probe", "retrieval", "--run", gone), gone),
        (
            ["evaluate", "slides", "--features", bags, "--labels", gone, "--out", tmp_path / "s"],
            gone,
        ),
        (
            ["evaluate", "slides", "--features", gone, "--labels", labels, "--out", tmp_path / "s"],
            gone,
        ),
        (train_args(dataset, tmp_path / "r", "--config", str(gone)), gone),
        (train_args(dataset, tmp_path / "r", "--weights", str(gone)), gone),
        (train_args(dataset, tmp_path / "r", "--panel", str(gone)), gone),
        (
            [
                "extract",
                "--data",
                dataset,
                "--encoder",
                "tiny",
                "--weights",
                gone,
                "--out",
                tmp_path / "f",
            ],
            gone,
        ),
        (["report", gone], gone),
    ]
    for args, named in rows:
        assert_user_error(rbg(*args), named)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.slow
def test_spaces_and_non_ascii_paths_through_the_whole_pipeline(
    tmp_path: Path, small_config: Path
) -> None:
    """synth → train → extract → evaluate → report, every path with a space and an umlaut."""
    root = tmp_path / "my data ü"
    data, run, feats, ev = root / "sets ß", root / "runs é" / "r 1", root / "feats ø", root / "ev ä"
    steps = [
        [
            "data",
            "synth",
            "--out",
            data,
            "--samples",
            "3",
            "--spots",
            "24",
            "--genes",
            "16",
            "--patch-px",
            "16",
        ],
        train_args(data, run, "--config", str(small_config)),
        ["extract", "--data", data, "--run", run, "--out", feats],
        [
            "evaluate",
            "genes",
            "--data",
            data,
            "--features",
            feats,
            "--train-samples",
            TRAIN,
            "--test-samples",
            TEST,
            "--panel",
            "top8",
            "--probe",
            "ridge",
            "--out",
            ev,
        ],
        ["report", root],
    ]
    for args in steps:
        r = rbg(*args)
        assert r.exit_code == 0, r.output
    assert (ev / keys.RESULTS_JSON).is_file()
    assert sorted(p.name for p in feats.glob("*.h5")) == ["SYN00.h5", "SYN01.h5", "SYN02.h5"]
    html = (root / keys.REPORT_HTML).read_text(encoding="utf-8")
    assert "r 1" in html  # the run, found under its non-ASCII parent, is in the report
