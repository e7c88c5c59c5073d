"""Slide-level evaluation: ABMIL, survival maths, folds, label files, end-to-end runs."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from rankbygene import keys
from rankbygene.cli.main import app
from rankbygene.evaluation.mil import (
    GatedAttentionMIL,
    concordance_index,
    discretise_times,
    risk_from_hazard_logits,
    survival_bin_edges,
    survival_nll_loss,
)
from rankbygene.evaluation.slides import (
    SlideEvalConfig,
    evaluate_slides,
    read_slide_labels,
    slide_folds,
)
from rankbygene.features.bags import SlideBags

DIM = 8
# Few epochs at a high learning rate: the end-to-end tests below hold with 3x fewer steps
# than at 15 epochs (a few seconds each instead of minutes on a loaded 2-core machine).
FAST = {"epochs": 5, "lr": 1e-2, "optimizer": "adam", "hidden": 32, "attention_dim": 16}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Bags of 20-40 instances of 8 features: intra-op threads only add contention (on a
    loaded 2-core host they spin and make a run of these tests take minutes, not seconds)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _write_bag(path, feats: np.ndarray) -> None:
    """A TRIDENT-style feature file: features + coords, no barcodes."""
    with h5py.File(path, "w") as f:
        f["features"] = feats.astype(np.float32)
        f["coords"] = np.zeros((len(feats), 2), dtype=np.int64)


def _bags(tmp_path, n_slides: int, seed: int = 0) -> tuple[object, np.ndarray]:
    """Slides of noise instances; a slide's "tumour fraction" of instances is shifted.

    Returns the features dir and each slide's tumour fraction: 0 for half the slides,
    0.1 … 0.5 for the others (the classic MIL setting: a bag is positive when some of
    its instances are).
    """
    rng = np.random.default_rng(seed)
    feats_dir = tmp_path / "feats"
    feats_dir.mkdir()
    fractions = np.where(rng.random(n_slides) < 0.5, 0.0, rng.uniform(0.1, 0.5, n_slides))
    for s, frac in enumerate(fractions):
        n = int(rng.integers(20, 40))
        x = rng.normal(size=(n, DIM))
        tumour = rng.random(n) < frac
        x[tumour, :2] += 3.0
        _write_bag(feats_dir / f"S{s:03d}.h5", x)
    return feats_dir, fractions


def _slide_ids(n: int) -> list[str]:
    return [f"S{s:03d}" for s in range(n)]


# --- ABMIL ---------------------------------------------------------------------------


def test_attention_is_a_distribution_and_pooling_ignores_instance_order():
    torch.manual_seed(0)
    model = GatedAttentionMIL(DIM, 3, hidden=16, attention_dim=8, dropout=0.0).eval()
    bag = torch.randn(25, DIM)
    out, attention = model(bag)
    assert out.shape == (3,) and attention.shape == (25,)
    assert (attention >= 0).all() and attention.sum().item() == pytest.approx(1.0, abs=1e-6)
    perm = torch.randperm(25)
    out_perm, attention_perm = model(bag[perm])
    torch.testing.assert_close(out_perm, out)
    torch.testing.assert_close(attention_perm, attention[perm])


def test_gradients_reach_every_abmil_parameter():
    model = GatedAttentionMIL(DIM, 2, hidden=16, attention_dim=8)
    out, _ = model(torch.randn(10, DIM))
    out.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_empty_bag_is_refused():
    with pytest.raises(ValueError, match="bag must be"):
        GatedAttentionMIL(DIM, 2)(torch.zeros(0, DIM))


# --- survival maths --------------------------------------------------------------------


def test_survival_nll_matches_the_hand_computation():
    h = torch.tensor([0.2, 0.5, 0.4])
    logits = torch.log(h / (1 - h)).repeat(2, 1)
    time_bin, event = torch.tensor([1, 1]), torch.tensor([1, 0])
    observed = -math.log(0.8) - math.log(0.5)  # survived bin 0, event in bin 1
    censored = -math.log(0.8 * 0.5)  # survived bins 0 and 1
    got = survival_nll_loss(logits, time_bin, event)
    assert got.item() == pytest.approx((observed + censored) / 2, rel=1e-5)
    weighted = survival_nll_loss(logits, time_bin, event, alpha=0.4)
    assert weighted.item() == pytest.approx(
        (0.6 * (observed + censored) + 0.4 * observed) / 2, rel=1e-5
    )


def test_risk_is_minus_the_summed_survival_curve():
    h = torch.tensor([[0.2, 0.5, 0.4]])
    risk = risk_from_hazard_logits(torch.log(h / (1 - h)))
    assert risk.item() == pytest.approx(-(0.8 + 0.4 + 0.24), rel=1e-5)


def test_bins_come_from_quartiles_of_uncensored_times_only():
    times = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 100.0, 200.0])
    events = np.array([1, 1, 1, 1, 1, 0, 0])
    edges = survival_bin_edges(times, events, n_bins=4)
    np.testing.assert_allclose(edges, [2.0, 3.0, 4.0])  # censored 100, 200 ignored
    np.testing.assert_array_equal(
        discretise_times(np.array([0.5, 2.0, 3.5, 4.0, 500.0]), edges), [0, 1, 2, 3, 3]
    )
    with pytest.raises(ValueError, match="uncensored training cases"):
        survival_bin_edges(times, np.array([1, 0, 0, 0, 0, 0, 0]), n_bins=4)


def test_c_index_matches_a_brute_force_pair_count():
    rng = np.random.default_rng(3)
    times, events = rng.exponential(size=40), rng.integers(0, 2, 40)
    risk = np.round(rng.normal(size=40), 1)  # some ties in risk
    concordant = comparable = 0.0
    for i in range(40):
        for j in range(40):
            if events[i] and times[i] < times[j]:
                comparable += 1
                concordant += 1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0
    assert concordance_index(risk, times, events) == pytest.approx(concordant / comparable)
    assert concordance_index(-times, times, np.ones(40)) == pytest.approx(1.0)


# --- labels and folds ------------------------------------------------------------------


def test_folds_keep_a_cases_slides_together_and_stratify(tmp_path):
    ids = _slide_ids(30)
    table = pd.DataFrame(
        {"slide_id": ids, "case_id": [f"P{i // 2}" for i in range(30)], "label": [0, 1] * 15}
    )
    table.to_csv(tmp_path / "labels.csv", index=False)
    labels = read_slide_labels(tmp_path / "labels.csv", "classification")
    folds = slide_folds(labels, 5, seed=0)
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(30))
    for train_idx, test_idx in folds:
        assert not set(labels.case_ids[train_idx]) & set(labels.case_ids[test_idx])
        assert set(labels.labels[test_idx]) == {0, 1}
    with pytest.raises(ValueError, match="15 cases cannot be split into 20 folds"):
        slide_folds(labels, 20)


def test_label_files_are_validated_with_actionable_messages(tmp_path):
    path = tmp_path / "labels.csv"
    pd.DataFrame({"slide": ["a", "b"], "label": [0, 1]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="no 'slide_id' column"):
        read_slide_labels(path, "classification")
    pd.DataFrame({"slide_id": ["a", "b"], "er": [0, 1]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"no label column 'label'.*--label-column"):
        read_slide_labels(path, "classification")
    assert read_slide_labels(path, "classification", "er").classes == ["0", "1"]
    pd.DataFrame({"slide_id": ["a", "b"], "label": ["x", "x"]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="one class only"):
        read_slide_labels(path, "classification")
    pd.DataFrame({"slide_id": ["a", "a"], "label": [0, 1]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="duplicate slide_id"):
        read_slide_labels(path, "classification")
    pd.DataFrame({"slide_id": ["a", "b"], "time": [1.0, 2.0]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="'time' and 'event'"):
        read_slide_labels(path, "survival")


def test_mcat_survival_columns_are_read_as_events(tmp_path):
    path = tmp_path / "labels.csv"
    pd.DataFrame(
        {"slide_id": ["a", "b", "c"], "survival_months": [5.0, 7.5, 1.0], "censorship": [1, 0, 0]}
    ).to_csv(path, index=False)
    labels = read_slide_labels(path, "survival")
    np.testing.assert_array_equal(labels.events, [0, 1, 1])
    np.testing.assert_allclose(labels.times, [5.0, 7.5, 1.0])
    np.testing.assert_array_equal(labels.case_ids, labels.slide_ids)


def test_task_defaults_are_the_papers_settings():
    cls = SlideEvalConfig(task="classification").resolved()
    assert (cls.optimizer, cls.lr, cls.epochs, cls.folds) == ("adam", 1e-4, 200, 5)
    surv = SlideEvalConfig(task="survival").resolved()
    assert (surv.optimizer, surv.lr, surv.epochs, surv.n_bins) == ("sgd", 2e-4, 20, 4)
    with pytest.raises(ValueError, match="Unknown slide task"):
        SlideEvalConfig(task="grading").resolved()
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['epoch'\]; valid keys"):
        SlideEvalConfig.from_dict({"epoch": 3})


def test_missing_feature_files_are_named(tmp_path):
    feats_dir, _ = _bags(tmp_path, 4)
    path = tmp_path / "labels.csv"
    pd.DataFrame({"slide_id": [*_slide_ids(4), "S999"], "label": [0, 1, 0, 1, 1]}).to_csv(
        path, index=False
    )
    with pytest.raises(FileNotFoundError, match=r"1 labelled slide.*S999"):
        evaluate_slides(feats_dir, path, SlideEvalConfig(folds=2, **FAST))


def test_bags_read_on_access_equal_the_in_memory_ones(tmp_path):
    feats_dir, _ = _bags(tmp_path, 3)
    with h5py.File(feats_dir / "S003.h5", "w") as f:  # CLAM's (1, n, D) layout
        f["features"] = np.ones((1, 5, DIM), np.float32)
    ids = np.array(_slide_ids(4))
    memory, disk = SlideBags(feats_dir, ids), SlideBags(feats_dir, ids, memory_limit_gb=0)
    assert memory.in_memory and not disk.in_memory and memory.dim == DIM
    for i in range(4):
        torch.testing.assert_close(memory[i], disk[i])
    assert memory[3].shape == (5, DIM)
    with h5py.File(feats_dir / "S004.h5", "w") as f:
        f["features"] = np.zeros((0, DIM), np.float32)
    with pytest.raises(ValueError, match=r"shape \(0, 8\): no patches in this file"):
        SlideBags(feats_dir, np.array(["S004"]))


# --- end to end --------------------------------------------------------------------------


def test_classification_finds_the_few_informative_instances(tmp_path):
    feats_dir, fractions = _bags(tmp_path, 40)
    path = tmp_path / "labels.csv"
    labels = np.where(fractions > 0, "tumour", "normal")
    pd.DataFrame({"slide_id": _slide_ids(40), "label": labels}).to_csv(path, index=False)
    cfg = SlideEvalConfig(folds=3, dropout=0.0, **FAST)
    res = evaluate_slides(feats_dir, path, cfg, out=tmp_path / "eval")
    assert res["metric"] == "auc" and res["classes"] == ["normal", "tumour"]
    assert res["summary"]["auc"]["mean"] > 0.95
    for fold in res["folds"]:  # the training loss falls
        assert fold["train_loss"][-1] < 0.5 * fold["train_loss"][0]
    written = json.loads((tmp_path / "eval" / keys.RESULTS_JSON).read_text())
    assert written["summary"] == res["summary"]
    assert "AUC" in (tmp_path / "eval" / keys.RESULTS_MD).read_text()
    preds = pd.read_csv(tmp_path / "eval" / keys.SLIDE_PREDICTIONS_CSV)
    assert sorted(preds["slide_id"]) == _slide_ids(40)  # each slide predicted once
    np.testing.assert_allclose(preds[["prob_normal", "prob_tumour"]].sum(1), 1.0, rtol=1e-5)
    again = evaluate_slides(feats_dir, path, cfg)
    assert again["summary"] == res["summary"]  # deterministic for a seed


def test_survival_ranks_high_risk_slides_first(tmp_path):
    n = 120
    feats_dir, fractions = _bags(tmp_path, n, seed=1)
    rng = np.random.default_rng(1)
    times = rng.exponential(np.exp(-6 * fractions))  # more tumour, shorter survival
    events = (rng.random(n) > 0.3).astype(int)
    times = np.where(events == 1, times, times * rng.uniform(0.3, 1.0, n))  # censored earlier
    path = tmp_path / "labels.csv"
    pd.DataFrame({"slide_id": _slide_ids(n), "time": times, "event": events}).to_csv(
        path, index=False
    )
    oracle = concordance_index(fractions, times, events)  # the true risk: ≈ 0.76
    cfg = SlideEvalConfig(task="survival", folds=3, **{**FAST, "lr": 4e-3})
    res = evaluate_slides(feats_dir, path, cfg)
    assert res["metric"] == "c_index"
    assert oracle - 0.1 < res["summary"]["c_index"]["mean"] <= oracle + 0.05
    assert all(len(f["bin_edges"]) == 3 for f in res["folds"])


def test_cli_runs_and_reports_bad_input(tmp_path):
    feats_dir, fractions = _bags(tmp_path, 12)
    path = tmp_path / "labels.csv"
    pd.DataFrame(
        {"slide_id": _slide_ids(12), "er": np.where(fractions > 0.25, "pos", "neg")}
    ).to_csv(path, index=False)
    runner = CliRunner()
    args = ["evaluate", "slides", "--features", str(feats_dir), "--labels", str(path)]
    result = runner.invoke(
        app, [*args, "--label-column", "er", "--folds", "2", "--epochs", "2", "--out",
              str(tmp_path / "eval")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "auc" in result.output and (tmp_path / "eval" / keys.RESULTS_JSON).is_file()
    config = json.loads((tmp_path / "eval" / keys.RESULTS_JSON).read_text())["config"]
    assert (config["epochs"], config["folds"], config["optimizer"]) == (2, 2, "adam")
    bad = runner.invoke(app, [*args, "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "error:" in bad.output and "--label-column" in bad.output


def _refuse_constant(name: str) -> float:
    raise ValueError(f"non-standard JSON constant {name}")


def test_an_undefined_auc_is_written_as_strict_json_null(tmp_path):
    """A test fold without a positive slide has no AUC; results.json must still be strict
    JSON (no NaN token), with null where the score is undefined."""
    feats_dir, _ = _bags(tmp_path, 8)
    path = tmp_path / "labels.csv"
    labels = ["pos"] + ["neg"] * 7  # one positive slide: the other fold has none
    pd.DataFrame({"slide_id": _slide_ids(8), "label": labels}).to_csv(path, index=False)
    cfg = SlideEvalConfig(folds=2, **{**FAST, "epochs": 1})
    res = evaluate_slides(feats_dir, path, cfg, out=tmp_path / "eval")
    text = (tmp_path / "eval" / keys.RESULTS_JSON).read_text()
    written = json.loads(text, parse_constant=_refuse_constant)
    aucs = [fold["auc"] for fold in written["folds"]]
    assert None in aucs and res["folds"][aucs.index(None)]["auc"] is None
    assert written["summary"]["auc"]["n"] == sum(a is not None for a in aucs)
