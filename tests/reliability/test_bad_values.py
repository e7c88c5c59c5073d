"""Rows "bad values": counts, barcodes, gene lists, survival times, labels, slides.

A dataset from another tool (a HEST download, a hand-made h5ad) never went through
``write_sample``'s checks, so the readers check what they read: each row edits one
file of a good dataset and expects the command to name the file, the sample and the
field, exit with status 2, and leave the dataset unchanged.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
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


def _edit_counts(data: Path, sample: str, edit) -> Path:
    """Rewrite ``st/{sample}.h5ad`` after ``edit(adata)`` (in place on a copy)."""
    path = data / keys.ST_DIR / f"{sample}{keys.ST_SUFFIX}"
    adata = ad.read_h5ad(path)
    adata.X = np.asarray(adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X)
    edit(adata)
    adata.write_h5ad(path)
    return path


def _nan(a: ad.AnnData) -> None:
    a.X[3, 2] = np.nan


def _negative(a: ad.AnnData) -> None:
    a.X[3, 2] = -4.0


def _all_zero(a: ad.AnnData) -> None:
    a.X[:] = 0.0


def _duplicate_barcode(a: ad.AnnData) -> None:
    names = list(a.obs_names)
    names[5] = names[4]
    a.obs_names = names


def _renamed_barcode(a: ad.AnnData) -> None:
    names = list(a.obs_names)
    names[7] = "NOT-A-PATCH"
    a.obs_names = names


COUNT_ROWS = {
    "NaN counts": (_nan, "SYN01", ["NaN"]),
    "negative counts": (_negative, "SYN01", ["negative"]),
    "all-zero sample": (_all_zero, "SYN01", ["all counts are zero", "--train-samples"]),
    "duplicated barcodes": (_duplicate_barcode, "SYN01", ["duplicate", "barcode"]),
    "barcodes differ from patches": (_renamed_barcode, "SYN01", ["NOT-A-PATCH", "patches"]),
}


@pytest.mark.parametrize("command", ["train", "evaluate genes"])
@pytest.mark.parametrize("row", list(COUNT_ROWS))
def test_bad_counts_are_refused(
    row: str, command: str, tmp_path: Path, dataset: Path, features: Path
) -> None:
    edit, sample, fragments = COUNT_ROWS[row]
    data = copy_tree(dataset, tmp_path / "data")
    path = _edit_counts(data, sample, edit)
    before = tree_state(data)
    args = {
        "train": train_args(data, tmp_path / "run"),
        "evaluate genes": eval_args(data, features, tmp_path / "eval"),
    }[command]
    assert_user_error(rbg(*args), path, f"'{sample}'", *fragments)
    assert tree_state(data) == before
    assert not (tmp_path / "run").exists() and not (tmp_path / "eval").exists()


@pytest.mark.parametrize("command", ["train", "evaluate genes"])
def test_gene_list_without_any_gene_of_the_data(
    command: str, tmp_path: Path, dataset: Path, features: Path
) -> None:
    genes = tmp_path / "genes.txt"
    genes.write_text("NOT_A_GENE\nALSO_NOT\n")
    args = {
        "train": train_args(dataset, tmp_path / "run", "--panel", str(genes)),
        "evaluate genes": eval_args(dataset, features, tmp_path / "eval", "--panel", str(genes)),
    }[command]
    assert_user_error(rbg(*args), genes, "none of its 2 genes")


def _labels(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize("time", ["0", "-2.5"])
def test_survival_time_not_positive(tmp_path: Path, slide_bags, time: str) -> None:
    bags, _, surv = slide_bags
    rows = surv.read_text().splitlines()
    rows[3] = f"S2,{time},1"
    labels = _labels(tmp_path, "\n".join(rows) + "\n")
    result = rbg(
        "evaluate",
        "slides",
        "--features",
        bags,
        "--labels",
        labels,
        "--task",
        "survival",
        "--out",
        tmp_path / "e",
        "--folds",
        "2",
        "--epochs",
        "1",
    )
    assert_user_error(result, labels, "'time'", "> 0", "S2")
    assert not (tmp_path / "e").exists()


def test_label_csv_without_the_named_column(tmp_path: Path, slide_bags) -> None:
    bags, labels, _ = slide_bags
    result = rbg(
        "evaluate",
        "slides",
        "--features",
        bags,
        "--labels",
        labels,
        "--label-column",
        "grade",
        "--out",
        tmp_path / "e",
    )
    assert_user_error(result, labels, "'grade'", "--label-column")


def test_survival_csv_without_time_columns(tmp_path: Path, slide_bags) -> None:
    bags, labels, _ = slide_bags
    result = rbg(
        "evaluate",
        "slides",
        "--features",
        bags,
        "--labels",
        labels,
        "--task",
        "survival",
        "--out",
        tmp_path / "e",
    )
    assert_user_error(result, labels, "'time' and 'event'")


def test_slide_id_without_features(tmp_path: Path, slide_bags) -> None:
    bags, labels, _ = slide_bags
    text = labels.read_text() + "S99,a\n"
    more = _labels(tmp_path, text)
    result = rbg(
        "evaluate", "slides", "--features", bags, "--labels", more, "--out", tmp_path / "e"
    )
    assert_user_error(result, bags, "S99", "no feature file")


def test_non_finite_features_are_refused(tmp_path: Path, dataset: Path, features: Path) -> None:
    """Features with NaN (e.g. a bf16 overflow) would give NaN scores: named, not evaluated."""
    import h5py

    feats = copy_tree(features, tmp_path / "feats")
    bad = feats / "SYN01.h5"
    with h5py.File(bad, "r+") as f:
        f[keys.FEAT_FEATURES][2, 1] = np.nan
    result = rbg(*eval_args(dataset, feats, tmp_path / "eval"))
    assert_user_error(result, bad, "NaN", "--overwrite")
