"""HisToGene: the section transformer, its positions, a run, its features and its head."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from rankbygene import keys
from rankbygene.cli.main import app
from rankbygene.data import read_dataset
from rankbygene.evaluation import GeneEvalConfig, run_gene_evaluation
from rankbygene.features import read_features
from rankbygene.methods.histogene import HisToGeneNet, section_positions
from rankbygene.methods.histogene.data import load_sections
from rankbygene.training import TrainConfig, load_run, train

SMALL = {"dim": 32, "depth": 2, "heads": 4, "patch_px": 16, "n_pos": 64}


def _net(n_genes: int = 5) -> HisToGeneNet:
    torch.manual_seed(0)
    return HisToGeneNet(n_genes, mlp_ratio=2, dropout=0.0, **SMALL).eval()


def test_spots_are_a_set_placed_by_their_positions():
    net = _net()
    patches = torch.randint(0, 256, (12, 3, 20, 20), dtype=torch.uint8)
    positions = torch.randint(0, 10, (12, 2))
    out = net(patches, positions)
    assert out.shape == (12, 5)
    perm = torch.randperm(12)
    torch.testing.assert_close(net(patches[perm], positions[perm]), out[perm])  # a set
    moved = positions.clone()
    moved[0] = positions[0] + 1
    assert not torch.allclose(net(patches, moved), out)  # positions matter


def test_positions_start_at_zero_and_must_fit_the_tables():
    adata = ad.AnnData(np.zeros((3, 1)))
    adata.obs[keys.OBS_ARRAY_COL] = [10, 12, 11]
    adata.obs[keys.OBS_ARRAY_ROW] = [5, 5, 7]
    np.testing.assert_array_equal(section_positions(adata, "S", 64), [[0, 0], [2, 0], [1, 2]])
    with pytest.raises(ValueError, match=r"span 3 positions .* hold 2.*n_pos: 3"):
        section_positions(adata, "S", 2)
    with pytest.raises(ValueError, match="needs array coordinates"):
        section_positions(ad.AnnData(np.zeros((2, 1)), obs=pd.DataFrame(index=["a", "b"])), "S", 8)


def test_unknown_settings_are_refused(tiny_dataset, tmp_path):
    config = TrainConfig(
        data=str(tiny_dataset), out=str(tmp_path / "bad"), method="histogene", epochs=1,
        extra={"width": 3},
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"Unknown HisToGene setting\(s\) \['width'\]"):
        train(config)


@pytest.mark.slow
def test_a_run_learns_and_its_features_feed_its_head(tiny_dataset, tmp_path):
    run = train(
        TrainConfig(
            data=str(tiny_dataset), out=str(tmp_path / "run"), method="histogene",
            panel="top20", epochs=6, lr_image=1e-3, val_split="none", accelerator="cpu",
            train_samples=["SYN00", "SYN01"], extra=SMALL,
        )
    )  # fmt: skip
    metrics = pd.read_csv(run / keys.RUN_METRICS)
    assert metrics["train_mse"].iloc[-1] < 0.7 * metrics["train_mse"].iloc[0]
    with pytest.raises(ValueError, match="is a histogene run: it has no per-spot image encoder"):
        load_run(run).encoder()
    feats_dir = tmp_path / "feats"
    result = CliRunner().invoke(
        app, ["extract", "--data", str(tiny_dataset), "--run", str(run), "--out", str(feats_dir)]
    )
    assert result.exit_code == 0, result.output
    ff = read_features(feats_dir / "SYN02.h5")
    assert ff.features.shape[1] == SMALL["dim"] and ff.attrs["encoder"] == "histogene"
    # The head on the extracted features is the network's own prediction.
    net = load_run(run).histogene()
    (section,) = load_sections(
        read_dataset(tiny_dataset), ["SYN02"], None, n_pos=64, target_sum=1e4, smooth=False
    )
    with torch.inference_mode():
        direct = net(section.patches, section.positions).numpy()
    cfg = GeneEvalConfig(probe="head", run=str(run))
    ev = run_gene_evaluation(tiny_dataset, feats_dir, ["SYN00", "SYN01"], ["SYN02"], cfg)
    assert ev.results["genes"] == load_run(run).genes
    np.testing.assert_allclose(ev.predictions["head"]["SYN02"], direct, atol=1e-5)
