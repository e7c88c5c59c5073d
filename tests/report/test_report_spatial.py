"""Spatial gene maps: measured vs predicted expression per method."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pytest
from matplotlib.collections import EllipseCollection
from matplotlib.text import Text

from rankbygene import keys
from rankbygene.data import make_synthetic_dataset
from rankbygene.report.plots import (
    plot_gene_maps,
    plot_spatial_expression,
    save_gene_maps,
)
from rankbygene.report.plots.common import PAGE_WIDTH_PX, REPORT_DPI, wrap_name
from rankbygene.report.plots.spatial import EXPRESSION_LABEL
from rankbygene.report.plots.spots import (
    estimate_spot_diameter,
    resolve_spot_diameter,
    spot_diameter_from_metadata,
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


def _hex_grid(pitch: float, rows: int = 6, cols: int = 7) -> np.ndarray:
    """Spot centres of a Visium-like hexagonal array, ``pitch`` apart."""
    return np.array(
        [
            (c * pitch + (r % 2) * pitch / 2, r * pitch * np.sqrt(3) / 2)
            for r in range(rows)
            for c in range(cols)
        ]
    )


def _maps_panels(fig) -> list:
    return [a for a in fig.axes if a.get_title()]


def test_gene_maps_wrap_into_page_width_grid(tmp_path: Path) -> None:
    # 6 methods: 7 panels per gene, 4 columns → rows of 4 and 3; 2 genes → 14 panels.
    dirs = {f"method-{i}": _eval_dir(tmp_path, f"m{i}", 0.2 * i) for i in range(6)}
    fig = plot_gene_maps(dirs, "s1", ["FASN", "ERBB2"])
    width_px = fig.get_figwidth() * REPORT_DPI
    assert width_px <= PAGE_WIDTH_PX
    panels = _maps_panels(fig)
    assert len(panels) == 14
    lefts = sorted({round(a.get_position().x0, 3) for a in panels})
    assert len(lefts) == 4  # at most 4 columns
    for ax in panels:
        box = ax.get_position()
        assert box.width * width_px >= 220  # panel px at the page's width (shown 1:1)
    rows_of_fasn = {round(a.get_position().y0, 3) for a in panels if a.get_title()[:5] == "FASN:"}
    assert len(rows_of_fasn) == 2
    # every piece of text is at least 9 pt, i.e. >= 12.5 px at REPORT_DPI shown 1:1
    texts = [t for t in fig.findobj(Text) if t.get_text() and t.get_visible()]
    assert texts and min(t.get_fontsize() for t in texts) >= 9
    # method names are the titles, with the PCC of predictions
    titles = [a.get_title() for a in panels]
    assert titles[0] == "FASN: measured" and titles[1].startswith("FASN: method-0\nPCC ")


def test_gene_maps_share_one_colour_scale_per_gene(tmp_path: Path) -> None:
    dirs = {"good": _eval_dir(tmp_path, "good", 0.1), "bad": _eval_dir(tmp_path, "bad", 5.0)}
    fig = plot_gene_maps(dirs, "s1", ["FASN", "ERBB2"])
    truth = ad.read_h5ad(dirs["good"] / keys.PREDICTIONS_DIR / "s1.h5ad")
    bars = [a for a in fig.axes if EXPRESSION_LABEL in a.get_xlabel()]
    assert len(bars) == 2  # one colour bar per gene, labelled with the unit
    for gene in ("FASN", "ERBB2"):
        measured = np.asarray(truth[:, gene].layers[keys.LAYER_TARGET]).ravel()
        expected = np.percentile(measured, [1, 99])
        limits = {
            (c.norm.vmin, c.norm.vmax)
            for a in _maps_panels(fig)
            if a.get_title().startswith(f"{gene}:")
            for c in a.collections
        }
        assert len(limits) == 1  # measured and both predictions on one scale
        np.testing.assert_allclose(next(iter(limits)), expected)
    wide = plot_gene_maps(dirs, "s1", ["FASN"], limits="all")
    vmin, vmax = wide.axes[0].collections[0].norm.vmin, wide.axes[0].collections[0].norm.vmax
    assert vmin < expected[0] and vmax > expected[1]  # the noisy predictions widen it


def test_spots_are_circles_of_their_diameter(tmp_path: Path) -> None:
    grid = _hex_grid(100.0)
    assert estimate_spot_diameter(grid) == pytest.approx(55.0)
    assert estimate_spot_diameter(_hex_grid(200.0), ratio=0.5) == pytest.approx(100.0)

    good = _eval_dir(tmp_path, "good", 0.1)
    path = good / keys.PREDICTIONS_DIR / "s1.h5ad"
    adata = ad.read_h5ad(path)
    adata.obsm[keys.OBSM_SPATIAL] = grid[: adata.n_obs]
    adata.write_h5ad(path)
    assert resolve_spot_diameter(adata)[0] == pytest.approx(55.0)  # estimated
    assert resolve_spot_diameter(adata, 70.0) == (70.0, "as given")
    adata.uns["spatial"] = {"lib": {"scalefactors": {"spot_diameter_fullres": 61.5}}}
    assert resolve_spot_diameter(adata)[0] == 61.5  # Visium scale factors
    adata.uns["rankbygene"] = {"spot_diameter_px": 58.0}
    assert resolve_spot_diameter(adata)[0] == 58.0  # ours first
    adata.write_h5ad(path)

    fig = plot_gene_maps([good], "s1", ["FASN"])
    spots = fig.axes[0].collections[0]
    assert isinstance(spots, EllipseCollection)
    np.testing.assert_allclose(spots.get_widths(), 58.0)  # data units, not marker points
    ax = plot_spatial_expression(good, "s1", "FASN", vmin=-1.0, vmax=2.0, spot_diameter=40.0)
    spots = ax.collections[0]
    assert (spots.norm.vmin, spots.norm.vmax) == (-1.0, 2.0)
    np.testing.assert_allclose(spots.get_widths(), 40.0)


def test_spot_diameter_from_dataset_metadata(tmp_path: Path) -> None:
    ds = make_synthetic_dataset(tmp_path, n_samples=1, n_spots=20, n_genes=10, patch_px=16)
    sample = ds["SYN00"]
    expected = sample.spot_diameter_um / sample.pixel_size_um
    assert spot_diameter_from_metadata(tmp_path, "SYN00") == pytest.approx(expected)
    assert spot_diameter_from_metadata(tmp_path, "NOPE") is None


def test_long_method_names_wrap_at_separators() -> None:
    assert wrap_name("FASN: measured", 30) == ["FASN: measured"]
    assert wrap_name("FASN: method-with-a-rather-long-name-0", 30) == [
        "FASN: method-with-a-rather-",
        "long-name-0",
    ]
    assert wrap_name("G: eval/top100/rankbygene", 16) == ["G: eval/top100/", "rankbygene"]
    lines = wrap_name("G: " + "x" * 40, 16)
    assert all(len(line) <= 16 for line in lines) and "".join(lines) == "G: " + "x" * 40
