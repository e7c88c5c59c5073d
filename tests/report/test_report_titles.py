"""What the report's figures and table say: the method, the held-out sample, the split."""

from __future__ import annotations

import html

import pandas as pd
import pytest
import yaml

from rankbygene import keys
from rankbygene.data import make_synthetic_dataset
from rankbygene.evaluation import evaluate_genes
from rankbygene.features import extract_features
from rankbygene.models import create_encoder
from rankbygene.report import build_report


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A run of ``stnet`` (its settings and metrics; trained on SYN00, validated on SYN01),
    features said to come from it, and an evaluation testing on SYN02."""
    root = tmp_path_factory.mktemp("titles")
    ds = make_synthetic_dataset(root / "data", n_samples=3, n_spots=60, n_genes=20, patch_px=16)
    run = root / "runs" / "my-run"
    run.mkdir(parents=True)
    config = {"method": "stnet", "train_samples": ["SYN00"], "val_samples": ["SYN01"]}
    (run / keys.RUN_CONFIG).write_text(yaml.safe_dump(config))
    rows = [{"epoch": e, "train_mse": 1.0 - 0.1 * e, "val_mse": 1.2 - 0.1 * e} for e in range(3)]
    pd.DataFrame(rows).to_csv(run / keys.RUN_METRICS, index=False)
    feats = root / "feats" / "my-run"
    extract_features(ds, create_encoder("tiny"), feats, batch_size=64, source_run=run)
    evaluate_genes(
        ds, feats, ["SYN00", "SYN01"], ["SYN02"], panel="top8", probe="ridge", out=root / "eval"
    )
    return html.unescape(build_report(root).read_text())


def test_feature_views_name_the_method_and_the_held_out_sample(page: str) -> None:
    """Not the first (training) sample: the evaluation's test sample, SYN02."""
    assert "t-SNE of stnet features, SYN02 (held-out test sample)" in page
    assert "Gene vs image similarity, stnet features, SYN02 (held-out test sample)" in page
    assert "SYN00 (" not in page


def test_training_curves_name_the_method_and_the_split(page: str) -> None:
    assert "Losses of stnet (runs/my-run), training (left) and validation (right)" in page
    assert "trained on SYN00; validated on SYN01" in page


def test_evaluation_table_gives_the_split_and_the_notes(page: str) -> None:
    assert "<th>train samples</th>" in page and "<td>SYN00, SYN01</td>" in page
    assert "<th>test samples</th>" in page and "<td>SYN02</td>" in page
    assert "<th>notes</th>" in page
    assert "split by patient" in page
    assert "one test sample: per-sample mean and pooled PCC are the same number" in page
