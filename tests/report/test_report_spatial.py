"""Spatial gene maps: measured vs predicted expression per method."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pytest

from rankbygene import keys
from rankbygene.report.plots import (
    plot_gene_maps,
    plot_spatial_expression,
    save_gene_maps,
)


def _eval_dir(tmp_path: Path, name: str, noise: float) -> Path:
    rng = np.random.default_rng(0)
    n, genes = 30, ["FASN", "ERBB2"]
    target = rng.normal(size=(n, 2)).astype(np.float32)
    adata = ad.AnnData(np.zeros((n, 2), dtype=np.float32))
    adata.var_names = genes
    adata.obs_names = [f"b{i}" for i in range(n)]
    adata.layers[keys.LAYER_TARGET] = target
    adata.layers[keys.LAYER_PREDICTED] = target + noise * rng.normal(size=(n, 2)).astype(np.float32)
    adata.obsm[keys.OBSM_SPATIAL] = rng.uniform(0, 500, size=(n, 2))
    out = tmp_path / name / keys.PREDICTIONS_DIR
    out.mkdir(parents=True)
    adata.write_h5ad(out / f"s1{keys.ST_SUFFIX}")
    return tmp_path / name


def test_spatial_maps_truth_vs_methods(tmp_path: Path) -> None:
    good, bad = _eval_dir(tmp_path, "good", 0.1), _eval_dir(tmp_path, "bad", 5.0)
    ax = plot_spatial_expression(good, "s1", "FASN")
    assert "PCC 0.9" in ax.get_title()
    fig = plot_gene_maps({"good": good, "bad": bad}, "s1", ["FASN", "ERBB2"])
    assert len([a for a in fig.axes if a.get_title()]) == 6  # 2 genes x (truth + 2 methods)
    titles = [a.get_title() for a in fig.axes]
    assert "FASN: measured" in titles and any(t.startswith("ERBB2: bad") for t in titles)
    png = save_gene_maps([good], "s1", ["FASN"], tmp_path / "maps.png")
    assert png.stat().st_size > 1000


def test_spatial_errors(tmp_path: Path) -> None:
    good = _eval_dir(tmp_path, "good", 0.1)
    with pytest.raises(FileNotFoundError, match="rankbygene evaluate genes"):
        plot_spatial_expression(good, "s9", "FASN")
    with pytest.raises(ValueError, match="'MYC' is not in the panel"):
        plot_spatial_expression(good, "s1", "MYC")
