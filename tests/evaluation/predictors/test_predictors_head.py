"""A run's own expression head (ST-Net) scored on held-out samples, on the run's panel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rankbygene import keys
from rankbygene.cli.main import app
from rankbygene.data import make_synthetic_dataset, read_dataset, select_panel
from rankbygene.evaluation import GeneEvalConfig
from rankbygene.evaluation.genes.evaluate import run_gene_evaluation
from rankbygene.features import extract_run_features, feature_path, read_features, write_features
from rankbygene.training import TrainConfig, load_run, train

TRAIN, TEST = ["SYN00", "SYN01", "SYN02"], ["SYN03"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    """Dataset, a 3-epoch ST-Net run on SYN00–SYN02 that holds one patient out for
    validation (so its top10 panel is chosen on two samples), its features, scratch."""
    root = tmp_path_factory.mktemp("head_run")
    ds = make_synthetic_dataset(
        root / "data", n_samples=4, n_spots=64, n_genes=40, patch_px=32, n_patients=4, seed=3
    )
    base = {"data": str(ds.root), "encoder": "tiny", "panel": "top10", "batch_size": 32}
    base |= {"epochs": 3, "accelerator": "cpu", "val_split": "patient", "train_samples": TRAIN}
    run = train(TrainConfig(out=str(root / "run"), method="stnet", lr_image=1e-3, **base))
    feats = root / "feats"
    extract_run_features(run, ds, feats)
    return Path(ds.root), run, feats, root


def _head_config(run: Path, panel: str = "top10") -> GeneEvalConfig:
    return GeneEvalConfig(panel=panel, probe="head", run=str(run))


def test_a_runs_head_is_scored_on_exactly_the_genes_it_was_trained_on(setup):
    """The run chose its panel on its fit samples (training minus the validation
    patient); evaluation must use that recorded panel, not re-select the same spec on
    all training samples (which gives other genes here)."""
    data, run_dir, feats, _ = setup
    run = load_run(run_dir)
    fit_samples = run.config.train_samples
    assert fit_samples is not None and len(fit_samples) == 2 and run.config.val_samples
    ds = read_dataset(data)
    reselected = select_panel([ds[s].read_adata() for s in TRAIN], "top10").genes
    assert set(reselected) != set(run.genes)  # the defect would be visible here

    ev = run_gene_evaluation(data, feats, TRAIN, TEST, _head_config(run_dir))
    assert ev.results["genes"] == run.genes
    assert ev.results["panel"] == str(run_dir / keys.RUN_GENES)
    assert ev.results["panel_source"].startswith("the trained run's own panel")
    # the predictions are the head's outputs on the test features, column for column
    head = run.expression_head()
    with torch.inference_mode():
        expected = head(torch.as_tensor(read_features(feats / "SYN03.h5").features)).numpy()
    np.testing.assert_allclose(ev.predictions["head"]["SYN03"], expected, rtol=1e-6)


def test_the_panel_spec_does_not_change_what_a_head_is_scored_on(setup):
    data, run_dir, feats, _ = setup
    a = run_gene_evaluation(data, feats, TRAIN, TEST, _head_config(run_dir, "top10"))
    b = run_gene_evaluation(data, feats, TRAIN, TEST, _head_config(run_dir, "hvg5"))
    assert a.results["genes"] == b.results["genes"] == load_run(run_dir).genes
    assert a.results["summary"] == b.results["summary"]


def test_features_of_another_dimension_are_refused(setup, tmp_path):
    data, run_dir, _, _ = setup
    other = tmp_path / "feats"
    for sample in read_dataset(data):
        with sample.patches() as store:
            coords, codes = store.coords, store.barcodes
        features = np.zeros((len(codes), 7), np.float32)
        write_features(feature_path(other, sample.id), features, coords, codes, {})
    with pytest.raises(ValueError, match=r"dim 7 but the head of run .* expects 128"):
        run_gene_evaluation(data, other, TRAIN, TEST, _head_config(run_dir))


def test_cli_head_probe_writes_results_and_explains_misuse(setup):
    data, run, feats, root = setup
    args = ["evaluate", "genes", "--data", str(data), "--features", str(feats)]
    args += ["--train-samples", ",".join(TRAIN), "--test-samples", ",".join(TEST)]
    out = root / "eval"
    ok = CliRunner().invoke(app, [*args, "--probe", "head", "--run", str(run), "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    saved = json.loads((out / keys.RESULTS_JSON).read_text())
    assert saved["primary_probe"] == "head"
    assert saved["probes"]["head"]["config"]["run"] == str(run.resolve())
    assert saved["genes"] == load_run(run).genes
    no_run = CliRunner().invoke(app, [*args, "--probe", "head", "--out", str(root / "x")])
    assert no_run.exit_code == 2 and "error: --probe head" in no_run.output
    assert "pass --run RUN" in no_run.output
    retrieval = CliRunner().invoke(
        app, [*args, "--probe", "retrieval", "--run", str(run), "--out", str(root / "y")]
    )
    assert retrieval.exit_code == 2
    assert "is a stnet run; its own predictors are: head" in retrieval.output
