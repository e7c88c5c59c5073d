"""Rows "existing outputs": a second command into a non-empty output never mixes or deletes.

The rule of each command (docs/reliability.md):

- ``train --out RUN``: an existing run is refused unless ``--resume`` (continue it,
  with its saved settings) or ``--overwrite`` (replace it: the old run's files go).
  A non-empty directory that is not a run is refused, whatever the flags.
- ``extract --out FEATS``: a sample whose file exists is skipped when it comes from
  the same encoder and run (files are written atomically, so a present file is
  complete); from another one it is refused; ``--overwrite`` redoes every sample.
- ``evaluate genes|slides --out EVAL``: a finished evaluation (``results.json``) is
  refused unless ``--overwrite``, which replaces every file of it; an unfinished one
  (no ``results.json``) is redone; a directory holding anything else is refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_helpers import (
    assert_user_error,
    copy_tree,
    eval_args,
    rbg,
    train_args,
    tree_state,
)

from rankbygene import keys
from rankbygene.training import load_run

# -- train ---------------------------------------------------------------------------------


def test_train_into_a_finished_run_is_refused(tmp_path: Path, dataset: Path, run_dir: Path) -> None:
    run = copy_tree(run_dir, tmp_path / "run")
    before = tree_state(run)
    assert_user_error(rbg(*train_args(dataset, run)), run, "--resume", "--overwrite")
    assert tree_state(run) == before


def test_train_overwrite_replaces_the_whole_run(
    tmp_path: Path, dataset: Path, run_dir: Path, small_config: Path
) -> None:
    run = copy_tree(run_dir, tmp_path / "run")
    stale = run / keys.RUN_CHECKPOINTS / "epoch041.ckpt"  # a checkpoint of the old run
    stale.write_bytes(b"old")
    r = rbg(*train_args(dataset, run, "--config", str(small_config), "--overwrite", "--seed", "5"))
    assert r.exit_code == 0, r.output
    assert not stale.exists()
    assert "seed: 5" in (run / keys.RUN_CONFIG).read_text()
    assert (run / keys.RUN_HEADS_CARD).is_file()


def test_train_into_a_directory_that_is_not_a_run_is_refused(tmp_path: Path, dataset: Path) -> None:
    data = copy_tree(dataset, tmp_path / "data")  # e.g. --out pointing at the dataset
    before = tree_state(data)
    for flag in ([], ["--overwrite"]):
        assert_user_error(rbg(*train_args(dataset, data, *flag)), data, "not a training run")
    assert tree_state(data) == before


def test_resume_with_other_settings_is_refused(
    tmp_path: Path, dataset: Path, run_dir: Path
) -> None:
    run = copy_tree(run_dir, tmp_path / "run")
    before = tree_state(run)
    r = rbg(*train_args(dataset, run, "--resume", "--batch-size", "12", "--seed", "9"))
    assert_user_error(r, run / keys.RUN_CONFIG, "batch_size", "8", "12", "seed")
    assert tree_state(run) == before


def test_resume_and_overwrite_together_are_refused(
    tmp_path: Path, dataset: Path, run_dir: Path
) -> None:
    run = copy_tree(run_dir, tmp_path / "run")
    before = tree_state(run)
    assert_user_error(
        rbg(*train_args(dataset, run, "--resume", "--overwrite")), "--resume", "--overwrite"
    )
    assert tree_state(run) == before


def _killed_before_its_first_checkpoint(run_dir: Path, run: Path) -> Path:
    """What a run killed in its first epoch leaves: config.yaml and genes.txt only."""
    run.mkdir()
    for name in (keys.RUN_CONFIG, keys.RUN_GENES):
        (run / name).write_bytes((run_dir / name).read_bytes())
    return run


def test_a_run_killed_before_its_first_checkpoint_says_so_and_resumes_from_scratch(
    tmp_path: Path, dataset: Path, run_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = _killed_before_its_first_checkpoint(run_dir, tmp_path / "run")
    with pytest.raises(
        FileNotFoundError, match=r"training did not finish.*no checkpoint.*--resume"
    ):
        load_run(run)
    before = tree_state(run)
    assert_user_error(rbg(*train_args(dataset, run)), run, "did not finish", "--resume")
    assert tree_state(run) == before

    r = rbg(*train_args(dataset, run, "--resume"))
    assert r.exit_code == 0, r.output
    assert f"{run}: nothing to resume" in caplog.text and "from scratch" in caplog.text
    assert load_run(run).genes == load_run(run_dir).genes
    assert (run / keys.RUN_CHECKPOINTS / keys.RUN_LAST_CKPT).is_file()


def test_resume_into_a_new_directory_starts_from_scratch(
    tmp_path: Path, dataset: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = tmp_path / "new"
    r = rbg(*train_args(dataset, run, "--resume", "--panel", "top8"))
    assert r.exit_code == 0, r.output
    assert "no run there yet); training from scratch" in caplog.text
    assert load_run(run).config.epochs == 1


def test_an_unfinished_run_says_how_far_it_got(
    tmp_path: Path, dataset: Path, run_dir: Path
) -> None:
    run = copy_tree(run_dir, tmp_path / "run")
    (run / keys.RUN_HEADS_CARD).unlink()  # killed while exporting, after its last epoch
    with pytest.raises(FileNotFoundError, match=r"did not finish \(last epoch 1 of 1\).*--resume"):
        load_run(run)
    assert_user_error(rbg(*train_args(dataset, run)), run, "last epoch 1 of 1", "--resume")


# -- extract -------------------------------------------------------------------------------


def test_extract_again_skips_complete_samples(
    tmp_path: Path, dataset: Path, features: Path
) -> None:
    feats = copy_tree(features, tmp_path / "feats")
    (feats / "SYN01.h5").unlink()  # one sample missing, e.g. added to the dataset later
    before = tree_state(feats)
    r = rbg("extract", "--data", dataset, "--encoder", "tiny", "--out", feats)
    assert r.exit_code == 0, r.output
    after = tree_state(feats)
    for name in ("SYN00.h5", "SYN02.h5", "SYN03.h5"):
        assert after[name] == before[name], f"{name} was redone"
    assert "SYN01.h5" in after


def test_extract_of_another_encoder_into_the_same_directory_is_refused(
    tmp_path: Path, dataset: Path, features: Path, run_dir: Path
) -> None:
    feats = copy_tree(features, tmp_path / "feats")
    before = tree_state(feats)
    r = rbg("extract", "--data", dataset, "--run", run_dir, "--out", feats)
    assert_user_error(r, feats / "SYN00.h5", "'tiny'", "--overwrite")
    assert tree_state(feats) == before


def test_extract_of_another_dataset_into_the_same_directory_is_refused(
    tmp_path: Path, dataset: Path, features: Path
) -> None:
    """Same sample ids, other spots: the kept file would not describe this dataset."""
    feats = copy_tree(features, tmp_path / "feats")
    other = tmp_path / "other"
    r = rbg(
        "data",
        "synth",
        "--out",
        other,
        "--samples",
        "1",
        "--spots",
        "30",
        "--genes",
        "16",
        "--patch-px",
        "16",
    )
    assert r.exit_code == 0, r.output
    before = tree_state(feats)
    r = rbg("extract", "--data", other, "--encoder", "tiny", "--out", feats)
    assert_user_error(r, feats / "SYN00.h5", "barcode", "--overwrite")
    assert tree_state(feats) == before


def test_extract_overwrite_redoes_every_sample(
    tmp_path: Path, dataset: Path, features: Path
) -> None:
    feats = copy_tree(features, tmp_path / "feats")
    before = tree_state(feats)
    r = rbg("extract", "--data", dataset, "--encoder", "tiny", "--out", feats, "--overwrite")
    assert r.exit_code == 0, r.output
    after = tree_state(feats)
    assert all(after[n][1] != before[n][1] for n in before if n.endswith(".h5"))


# -- evaluate ------------------------------------------------------------------------------


@pytest.fixture
def finished_eval(tmp_path: Path, dataset: Path, features: Path) -> Path:
    """An evaluation of 2 test samples (train SYN00, test SYN01 and SYN02)."""
    out = tmp_path / "eval"
    r = rbg(
        *eval_args(dataset, features, out),
        "--train-samples",
        "SYN00",
        "--test-samples",
        "SYN01,SYN02",
    )
    assert r.exit_code == 0, r.output
    return out


def test_evaluate_into_a_finished_evaluation_is_refused(
    finished_eval: Path, dataset: Path, features: Path
) -> None:
    before = tree_state(finished_eval)
    for extra in ([], ["--probe", "mlp"]):  # the same evaluation again, or another one
        r = rbg(*eval_args(dataset, features, finished_eval, *extra))
        assert_user_error(r, finished_eval, "--overwrite")
    assert tree_state(finished_eval) == before


def test_evaluate_overwrite_leaves_nothing_of_the_old_evaluation(
    finished_eval: Path, dataset: Path, features: Path
) -> None:
    r = rbg(*eval_args(dataset, features, finished_eval, "--overwrite"))
    assert r.exit_code == 0, r.output
    predictions = sorted(p.name for p in (finished_eval / keys.PREDICTIONS_DIR).iterdir())
    assert predictions == [f"SYN02{keys.ST_SUFFIX}"]  # SYN01 was a test sample of the old one


def test_evaluate_into_a_directory_that_is_not_an_evaluation_is_refused(
    tmp_path: Path, dataset: Path, features: Path
) -> None:
    feats = copy_tree(features, tmp_path / "feats")
    before = tree_state(feats)
    for flag in ([], ["--overwrite"]):
        r = rbg(*eval_args(dataset, features, feats, *flag))
        assert_user_error(r, feats, "not an evaluation")
    assert tree_state(feats) == before


def test_evaluate_slides_into_a_finished_evaluation_is_refused(tmp_path: Path, slide_bags) -> None:
    bags, labels, _ = slide_bags
    out = tmp_path / "eval"
    args = [
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
    ]
    r = rbg(*args)
    assert r.exit_code == 0, r.output
    before = tree_state(out)
    assert_user_error(rbg(*args), out, "--overwrite")
    assert tree_state(out) == before
    r = rbg(*args, "--overwrite")
    assert r.exit_code == 0, r.output


def test_data_synth_into_an_existing_dataset_is_refused(tmp_path: Path, dataset: Path) -> None:
    data = copy_tree(dataset, tmp_path / "data")
    before = tree_state(data)
    r = rbg(
        "data",
        "synth",
        "--out",
        data,
        "--samples",
        "2",
        "--spots",
        "24",
        "--genes",
        "16",
        "--patch-px",
        "16",
    )
    assert_user_error(r, "'SYN00' already exists", "--overwrite")
    assert tree_state(data) == before


def test_report_is_rebuilt_in_place(tmp_path: Path, dataset: Path, features: Path) -> None:
    """report.html is derived from the results under DIR: each report replaces it whole."""
    r = rbg(*eval_args(dataset, features, tmp_path / "eval"))
    assert r.exit_code == 0, r.output
    page = tmp_path / keys.REPORT_HTML
    page.write_text("an old report")
    r = rbg("report", tmp_path)
    assert r.exit_code == 0, r.output
    assert "an old report" not in page.read_text() and "<html" in page.read_text()
