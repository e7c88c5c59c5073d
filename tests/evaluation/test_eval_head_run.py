"""ST-Net's own predictor: a run's expression head scored on held-out samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rankbygene import keys
from rankbygene.cli.main import app
from rankbygene.data import make_synthetic_dataset
from rankbygene.evaluation import GeneEvalConfig
from rankbygene.evaluation.head_run import PanelMismatchError, run_head_evaluation
from rankbygene.features import read_features
from rankbygene.features.extract import extract_features
from rankbygene.training import TrainConfig, load_run_encoder, train
from rankbygene.training.run import load_run_expression_head

TRAIN, TEST = ["SYN00", "SYN01"], ["SYN02"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    """Dataset, a 3-epoch ST-Net run on SYN00/SYN01 (top20 panel), its features, scratch."""
    root = tmp_path_factory.mktemp("head_run")
    ds = make_synthetic_dataset(
        root / "data", n_samples=3, n_spots=64, n_genes=40, patch_px=32, n_patients=3
    )
    base = {"data": str(ds.root), "encoder": "tiny", "panel": "top20", "batch_size": 32}
    base |= {"epochs": 3, "accelerator": "cpu", "val_split": "none", "train_samples": TRAIN}
    run = train(TrainConfig(out=str(root / "run"), method="stnet", lr_image=1e-3, **base))
    feats = root / "feats"
    extract_features(ds, load_run_encoder(run), feats)
    return Path(ds.root), run, feats, root


def test_head_predictions_are_the_heads_outputs_on_the_panel_genes(setup):
    data, run, feats, _ = setup
    ev = run_head_evaluation(data, run, feats, TRAIN, TEST, GeneEvalConfig(panel="top10"))
    res = ev.results
    assert res["probe"] == "head" and res["run_genes"] == 20 and len(res["genes"]) == 10
    head, run_genes = load_run_expression_head(run)
    with torch.inference_mode():
        full = head(torch.as_tensor(read_features(feats / "SYN02.h5").features)).numpy()
    columns = [run_genes.index(g) for g in res["genes"]]
    np.testing.assert_allclose(ev.predictions["head"]["SYN02"], full[:, columns], rtol=1e-6)
    assert np.isfinite(res["summary"]["pcc"]["mean"])


def test_panel_genes_the_head_does_not_predict_are_refused(setup):
    data, run, feats, _ = setup
    with pytest.raises(PanelMismatchError, match="predicts 20 genes"):
        run_head_evaluation(data, run, feats, TRAIN, TEST, GeneEvalConfig(panel="top40"))


def test_cli_head_probe_writes_results_and_explains_misuse(setup):
    data, run, feats, root = setup
    args = ["evaluate", "genes", "--data", str(data), "--features", str(feats)]
    args += ["--train-samples", ",".join(TRAIN), "--test-samples", ",".join(TEST)]
    ok = CliRunner().invoke(
        app, [*args, "--probe", "head", "--run", str(run), "--panel", "top20", "--out",
              str(root / "eval")],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    saved = json.loads((root / "eval" / keys.RESULTS_JSON).read_text())
    assert saved["primary_probe"] == "head" and saved["config"]["head"]["run"]
    no_run = CliRunner().invoke(app, [*args, "--probe", "head", "--out", str(root / "x")])
    assert no_run.exit_code == 1 and "--probe head needs --run" in no_run.output
