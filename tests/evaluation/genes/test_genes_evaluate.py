"""evaluate_genes end to end on a tiny synthetic dataset with hand-made features."""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import yaml

from rankbygene import keys
from rankbygene.data import make_synthetic_dataset, select_panel
from rankbygene.evaluation import GeneEvalConfig, MLPProbeConfig, evaluate_genes
from rankbygene.features import feature_path, write_features

FAST_MLP = MLPProbeConfig(hidden_dims=(32,), epochs=4, lr=1e-3, folds=2)


def _colour_features(ds, out: Path, shuffle: str | None = None, permute_rows: bool = False) -> Path:
    """Per-patch colour statistics: a cheap feature that carries the synthetic cell type.

    ``shuffle`` reverses one sample's barcodes (a misaligned file); ``permute_rows``
    shuffles feature rows against spots (a control without image signal).
    """
    rng = np.random.default_rng(0)
    for s in ds:
        with s.patches() as st:
            img = st[:].astype(np.float32)
            codes = st.barcodes.copy()
            coords = st.coords
        feats = np.concatenate([img.mean((1, 2)), img.std((1, 2))], axis=1)
        if s.id == shuffle:
            codes = codes[::-1]
        if permute_rows:
            feats = feats[rng.permutation(len(feats))]
        write_features(feature_path(out, s.id), feats, coords, codes, {"encoder": "colour"})
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("genes")
    # 4 samples of 3 patients: SYN00 and SYN03 share patient PAT00.
    ds = make_synthetic_dataset(
        root / "data", n_samples=4, n_spots=60, n_genes=30, patch_px=16, n_patients=3, seed=0
    )
    return ds, _colour_features(ds, root / "feats"), root


def test_results_keys_and_outputs(setup) -> None:
    ds, feats, root = setup
    cfg = GeneEvalConfig(panel="top12", probe="both", mlp=FAST_MLP)
    out = root / "eval"
    res = evaluate_genes(ds, feats, ["SYN00", "SYN01"], ["SYN02"], config=cfg, out=out)
    for key in (
        "panel",
        "genes",
        "dropped_genes",
        "probe",
        "summary",
        "pooled",
        "per_sample",
        "folds",
        "train_samples",
        "test_samples",
        "features",
        "probes",
    ):
        assert key in res
    assert res["panel"] == "top12" and len(res["genes"]) == 12
    # a probe's panel is chosen on the training samples only, and the results say so
    on_train = select_panel([ds[s].read_adata() for s in ("SYN00", "SYN01")], "top12")
    assert res["genes"] == on_train.genes
    assert res["panel_source"] == "top12, selected on the training samples SYN00, SYN01"
    assert set(res["summary"]) == {"pcc", "mse", "mae"}
    assert set(res["summary"]["pcc"]) >= {"mean", "std"}
    assert res["primary_probe"] == "mlp" and set(res["probes"]) == {"mlp", "ridge"}
    assert res["summary"] == res["probes"]["mlp"]["summary"]
    assert len(res["folds"]) == 2 and len(res["probes"]["ridge"]["folds"]) == 1
    # ridge is one model: its ± is across test samples (one here, so 0)
    assert res["probes"]["ridge"]["summary_spread"] == "test samples"
    assert res["probes"]["mlp"]["summary_spread"] == "fold models"
    assert res["probes"]["ridge"]["summary"]["pcc"]["std"] == 0.0
    assert res["features"]["encoder"] == "colour" and res["features"]["source_run"] is None
    assert res["n_train_spots"] == 120 and res["n_test_spots"] == 60
    # the fold summary is the mean of the folds' per-sample-mean PCC
    fold_pcc = [f["per_sample_mean"]["pcc"] for f in res["folds"]]
    assert res["summary"]["pcc"]["mean"] == pytest.approx(np.mean(fold_pcc))
    # strict JSON on disk, same content
    on_disk = json.loads((out / keys.RESULTS_JSON).read_text())
    assert on_disk["genes"] == res["genes"]
    assert "| mlp |" in (out / keys.RESULTS_MD).read_text()
    assert GeneEvalConfig.from_dict(yaml.safe_load((out / keys.EVAL_CONFIG).read_text())) == cfg

    pa = ad.read_h5ad(out / keys.PREDICTIONS_DIR / f"SYN02{keys.ST_SUFFIX}")
    assert list(pa.var_names) == res["genes"]
    src = ds["SYN02"].read_adata()
    assert list(pa.obs_names) == list(src.obs_names)
    np.testing.assert_allclose(pa.obsm[keys.OBSM_SPATIAL], src.obsm[keys.OBSM_SPATIAL])
    for layer in (keys.LAYER_PREDICTED, keys.LAYER_TARGET, "predicted_mlp", "predicted_ridge"):
        assert pa.layers[layer].shape == (60, 12)
    np.testing.assert_array_equal(pa.layers[keys.LAYER_PREDICTED], pa.layers["predicted_mlp"])


def test_ridge_on_marker_gene_list(setup, tmp_path: Path) -> None:
    ds, feats, _ = setup
    markers = [g for g in ds["SYN00"].read_adata().var_names if g.startswith("TYPE")]
    gene_file = tmp_path / "markers.txt"
    gene_file.write_text("\n".join([*markers, "NOTAGENE"]) + "\n")
    args = (["SYN00", "SYN01"], ["SYN02"])
    res = evaluate_genes(ds, feats, *args, panel=gene_file, probe="ridge")
    assert res["probe"] == "ridge" and res["primary_probe"] == "ridge"
    assert res["genes"] == markers and res["dropped_genes"] == ["NOTAGENE"]
    # colour features carry the cell type, which drives the marker genes; the same
    # features shuffled against the spots carry nothing.
    control_dir = _colour_features(ds, tmp_path / "control", permute_rows=True)
    control = evaluate_genes(ds, control_dir, *args, panel=gene_file, probe="ridge")
    pcc, pcc_control = res["summary"]["pcc"]["mean"], control["summary"]["pcc"]["mean"]
    assert pcc > 0.1 and pcc > pcc_control + 0.1, (pcc, pcc_control)


def test_patient_leak_refused(setup) -> None:
    ds, feats, _ = setup
    with pytest.raises(ValueError, match=r"patient 'PAT00'.*SYN00.*SYN03"):
        evaluate_genes(
            ds, feats, ["SYN00", "SYN01"], ["SYN03"], config=GeneEvalConfig(mlp=FAST_MLP)
        )


def test_unknown_and_overlapping_samples(setup) -> None:
    ds, feats, _ = setup
    with pytest.raises(ValueError, match=r"Unknown sample ids \['NOPE'\]"):
        evaluate_genes(ds, feats, ["SYN00"], ["NOPE"])
    with pytest.raises(ValueError, match="both the training and the test"):
        evaluate_genes(ds, feats, "SYN00,SYN01", "SYN01")


def test_feature_dataset_mismatch_names_sample(setup, tmp_path: Path) -> None:
    ds, _, _ = setup
    bad = _colour_features(ds, tmp_path / "bad", shuffle="SYN01")
    with pytest.raises(ValueError, match=r"Sample 'SYN01'.*'barcode'"):
        evaluate_genes(ds, bad, ["SYN00", "SYN01"], ["SYN02"], probe="ridge")
    (bad / "SYN02.h5").unlink()
    with pytest.raises(FileNotFoundError, match=r"'SYN02'.*rankbygene extract"):
        evaluate_genes(ds, bad, ["SYN00"], ["SYN02"], probe="ridge")


def test_fold_unit_samples_needs_enough_samples(setup) -> None:
    ds, feats, _ = setup
    cfg = GeneEvalConfig(panel="top5", mlp=MLPProbeConfig(folds=3, fold_unit="samples"))
    with pytest.raises(ValueError, match="at least 3 training samples"):
        evaluate_genes(ds, feats, ["SYN00", "SYN01"], ["SYN02"], config=cfg)


def test_config_round_trip() -> None:
    cfg = GeneEvalConfig(panel="hvg50", probe="both", mlp=FAST_MLP)
    back = GeneEvalConfig.from_dict(cfg.to_dict())
    assert back == cfg
    with pytest.raises(ValueError, match="Unknown probe 'svm'; choose one of mlp, ridge"):
        GeneEvalConfig(probe="svm")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['epoch'\]"):
        GeneEvalConfig.from_dict({"mlp": {"epoch": 3}})
    with pytest.raises(ValueError, match="scored only with probe head or retrieval"):
        GeneEvalConfig(run="runs/x")
