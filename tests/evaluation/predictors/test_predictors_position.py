"""Position-only baseline: expression from array coordinates alone."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from rankbygene.data import make_synthetic_dataset, preprocess_expression, read_dataset
from rankbygene.evaluation import GeneEvalConfig, run_gene_evaluation


def _config(k: int) -> GeneEvalConfig:
    return GeneEvalConfig(panel="top10", split_unit="section", probe="position", position={"k": k})


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """SYN00, SYN01 of one patient, and SERIAL: a copy of SYN00 (same layout and counts)."""
    root = tmp_path_factory.mktemp("position")
    ds = make_synthetic_dataset(
        root / "data", n_samples=2, n_spots=40, n_genes=20, patch_px=16, n_patients=1
    )
    for folder, suffix in (("st", ".h5ad"), ("patches", ".h5"), ("metadata", ".json")):
        folder_dir = root / "data" / folder
        shutil.copy(folder_dir / f"SYN00{suffix}", folder_dir / f"SERIAL{suffix}")
    meta = root / "data" / "metadata" / "SERIAL.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "id": "SERIAL"}))
    return root / "data", ds


def test_a_section_with_the_same_layout_is_predicted_exactly(serial):
    data, _ = serial
    ev = run_gene_evaluation(data, None, ["SYN00"], ["SERIAL"], _config(k=1))
    assert ev.results["probe"] == "position" and ev.results["folds"][0]["k"] == 1
    assert ev.results["features"] == {"dir": None, "encoder": None, "source_run": None, "dim": 0}
    pred = ev.predictions["position"]["SERIAL"]
    np.testing.assert_allclose(pred, ev.targets["SERIAL"], atol=1e-5)
    assert ev.results["summary"]["pcc"]["mean"] == pytest.approx(1.0, abs=1e-5)


def test_all_neighbours_predict_the_training_mean(serial):
    data, _ = serial
    ev = run_gene_evaluation(data, None, ["SYN00"], ["SYN01"], _config(k=10_000))
    pred = ev.predictions["position"]["SYN01"]
    assert ev.results["folds"][0]["k"] == 40  # capped at the training spots
    syn00 = read_dataset(data)["SYN00"].read_adata()
    train_mean = preprocess_expression(syn00, ev.results["genes"]).mean(0)
    np.testing.assert_allclose(pred, np.broadcast_to(train_mean, pred.shape), atol=1e-5)
    with pytest.raises(ValueError, match="k must be >= 1"):
        run_gene_evaluation(data, None, ["SYN00"], ["SYN01"], _config(k=0))
