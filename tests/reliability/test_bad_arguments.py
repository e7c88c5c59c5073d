"""Rows "bad arguments": unknown names, out-of-range numbers, unknown samples, leaky splits.

Each is refused before any work starts: ``error: ...`` naming the argument and the
valid choices or range, exit status 2, and no output directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_helpers import TEST, assert_user_error, eval_args, rbg, train_args

from rankbygene import keys


def _extract(data: Path, out: Path, *extra: str) -> list:
    return ["extract", "--data", data, "--encoder", "tiny", "--out", out, *extra]


def _slides(bags: Path, labels: Path, out: Path, *extra: str) -> list:
    return ["evaluate", "slides", "--features", bags, "--labels", labels, "--out", out, *extra]


# row -> (command line builder, fragments the message must hold)
ROWS = {
    "train unknown method": (
        lambda d, f, o, s: train_args(d, o, "--method", "rankbyjeans"),
        ["'rankbyjeans'", "rankbygene", "stnet"],
    ),
    "train unknown encoder": (
        lambda d, f, o, s: train_args(d, o, "--encoder", "no-such-net"),
        ["'no-such-net'", "tiny"],
    ),
    "extract unknown encoder": (
        lambda d, f, o, s: [*_extract(d, o)[:-2], "--encoder", "no-such-net", "--out", o],
        ["'no-such-net'", "tiny"],
    ),
    "train unknown panel": (
        lambda d, f, o, s: train_args(d, o, "--panel", "best50"),
        ["'best50'", "top250"],
    ),
    "evaluate unknown panel": (
        lambda d, f, o, s: eval_args(d, f, o, "--panel", "best50"),
        ["'best50'", "top250"],
    ),
    "evaluate unknown probe": (
        lambda d, f, o, s: eval_args(d, f, o, "--probe", "lasso"),
        ["'lasso'", "ridge"],
    ),
    "train unknown val split": (
        lambda d, f, o, s: [*train_args(d, o), "--val-split", "random"],
        ["val_split", "'random'", "patient"],
    ),
    "train unknown precision": (
        lambda d, f, o, s: train_args(d, o, "--precision", "8-bit"),
        ["'8-bit'", "bf16-mixed"],
    ),
    "train --epochs 0": (lambda d, f, o, s: [*train_args(d, o), "--epochs", "0"], ["epochs", "0"]),
    "evaluate genes --epochs 0": (
        lambda d, f, o, s: eval_args(d, f, o, "--probe", "mlp", "--epochs", "0"),
        ["epochs", ">= 1", "0"],
    ),
    "evaluate slides --epochs 0": (
        lambda d, f, o, s: _slides(*s, o, "--epochs", "0"),
        ["epochs", ">= 1"],
    ),
    "train --batch-size 0": (
        lambda d, f, o, s: [*train_args(d, o), "--batch-size", "0"],
        ["batch_size", "0"],
    ),
    "train --batch-size -4": (
        lambda d, f, o, s: [*train_args(d, o), "--batch-size", "-4"],
        ["batch_size", "-4"],
    ),
    "extract --batch-size 0": (
        lambda d, f, o, s: _extract(d, o, "--batch-size", "0"),
        ["batch_size", "0"],
    ),
    "evaluate genes --batch-size 0": (
        lambda d, f, o, s: eval_args(d, f, o, "--probe", "mlp", "--batch-size", "0"),
        ["batch_size", ">= 1", "0"],
    ),
    "evaluate genes --folds 1": (
        lambda d, f, o, s: eval_args(d, f, o, "--probe", "mlp", "--folds", "1"),
        ["folds", ">= 2", "1"],
    ),
    "evaluate slides --folds 1": (
        lambda d, f, o, s: _slides(*s, o, "--folds", "1"),
        ["folds", ">= 2"],
    ),
    "train batch larger than the spots": (
        lambda d, f, o, s: [*train_args(d, o), "--batch-size", "1000"],
        ["1000", "48 training spots", "--batch-size 48"],
    ),
    "train unknown sample": (
        lambda d, f, o, s: [*train_args(d, o), "--train-samples", "SYN00,SYN77"],
        ["SYN77", "SYN00"],
    ),
    "train unknown validation sample": (
        lambda d, f, o, s: [*train_args(d, o), "--val-samples", "SYN77"],
        ["SYN77", "SYN00"],
    ),
    "extract unknown sample": (
        lambda d, f, o, s: _extract(d, o, "--samples", "SYN77"),
        ["SYN77", "SYN00"],
    ),
    "evaluate unknown sample": (
        lambda d, f, o, s: [*eval_args(d, f, o), "--test-samples", "SYN77"],
        ["SYN77", "SYN00"],
    ),
    "evaluate train and test share a patient": (
        lambda d, f, o, s: [*eval_args(d, f, o), "--test-samples", "SYN03"],
        ["patient", "SYN00", "SYN03", "--split-unit section"],
    ),
    "evaluate unknown split unit": (
        lambda d, f, o, s: eval_args(d, f, o, "--split-unit", "slide"),
        ["split_unit", "'slide'"],
    ),
    "evaluate slides unknown task": (
        lambda d, f, o, s: _slides(*s, o, "--task", "regression"),
        ["'regression'", "survival"],
    ),
}


@pytest.mark.parametrize("row", list(ROWS))
def test_bad_argument_is_refused(
    row: str, tmp_path: Path, dataset: Path, features: Path, slide_bags
) -> None:
    build, fragments = ROWS[row]
    out = tmp_path / "out"
    args = build(dataset, features, out, slide_bags[:2])
    assert_user_error(rbg(*args), *fragments, usage=True)
    assert not out.exists()


def test_shared_patient_passes_with_the_named_flag(
    tmp_path: Path, dataset: Path, features: Path
) -> None:
    """The override the refusal names works, and the results say what was measured."""
    out = tmp_path / "out"
    r = rbg(
        *eval_args(dataset, features, out, "--split-unit", "section"), "--test-samples", "SYN03"
    )
    assert r.exit_code == 0, r.output
    assert '"split_unit": "section"' in (out / keys.RESULTS_JSON).read_text()


@pytest.mark.parametrize("command", ["extract", "evaluate genes"])
def test_batch_larger_than_the_spots_is_fine_where_nothing_needs_a_full_batch(
    command: str, tmp_path: Path, dataset: Path, features: Path
) -> None:
    """Extraction and the probe take a short last batch: a large batch is not an error."""
    out = tmp_path / "out"
    args = {
        "extract": _extract(dataset, out, "--batch-size", "1000", "--samples", TEST),
        "evaluate genes": eval_args(
            dataset,
            features,
            out,
            "--probe",
            "mlp",
            "--epochs",
            "1",
            "--folds",
            "2",
            "--batch-size",
            "1000",
        ),
    }[command]
    r = rbg(*args)
    assert r.exit_code == 0, r.output
    if command == "extract":
        from rankbygene.features.io import read_features

        assert read_features(out / f"{TEST}.h5").features.shape == (24, 128)  # one batch
    else:
        assert (out / keys.RESULTS_JSON).is_file()


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--data", "{missing}", "--out", "{out}", "--encoder", "uni"],
        ["train", "--data", "{missing}", "--out", "{out}", "--encoder", "ctranspath"],
        ["extract", "--data", "{missing}", "--out", "{out}", "--encoder", "uni"],
        ["extract", "--slides", "{missing}", "--out", "{out}", "--encoder", "uni"],
        ["predict", "--data", "{missing}", "--predictor", "{missing}", "--out", "{out}",
         "--encoder", "uni"],
        ["experiment", "her2st", "--root", "{missing}", "--out", "{out}", "--encoder", "uni"],
    ],
    ids=["train uni", "train ctranspath", "extract", "extract slides", "predict", "experiment"],
)  # fmt: skip
def test_a_foundation_encoder_without_weights_is_refused_first(
    args: list[str], tmp_path: Path
) -> None:
    """No weights for an encoder worth its pretraining is an error naming the encoder,
    --weights and --random-init, before anything is read (the data does not even exist)
    or built: a random ViT-L is never trained, extracted or predicted with in disguise."""
    out = tmp_path / "out"
    filled = [a.format(missing=tmp_path / "missing", out=out) for a in args]
    name = filled[filled.index("--encoder") + 1]
    assert_user_error(rbg(*filled), f"'{name}'", "--weights", "--random-init")
    assert not out.exists()
