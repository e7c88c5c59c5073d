"""her2st (legacy ST layout) importer: a small synthetic layout and the real data."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from rankbygene import keys
from rankbygene.cli.data_import import import_app
from rankbygene.data import read_dataset
from rankbygene.data.importers import estimate_um_per_px, import_her2st, list_sections

PITCH_PX = 30.0  # 200 µm between array neighbours -> 6.667 µm/px
# The real her2st sections live in shared/ beside the repository (never committed).
REAL_ROOT = Path(__file__).resolve().parents[3] / "shared" / "data" / "her2st"


def _write_section(
    data: Path, section: str, rng: np.random.Generator, *, image: bool = True
) -> dict:
    """A 5 x 4 array of spots. Counts miss spot (2, 2); the spot file misses (5, 4) and
    marks (3, 1) as not selected. Expected: 17 spots kept, 3 dropped."""
    xs, ys = np.meshgrid(np.arange(1, 6), np.arange(1, 5), indexing="ij")
    xy = np.c_[xs.ravel(), ys.ravel()]
    pixel = xy * PITCH_PX + [4.0, 9.0]
    spots = pd.DataFrame(
        {
            "x": xy[:, 0],
            "y": xy[:, 1],
            "new_x": xy[:, 0] + 0.01,
            "new_y": xy[:, 1] - 0.02,
            "pixel_x": pixel[:, 0],
            "pixel_y": pixel[:, 1],
            "selected": 1,
        }
    )
    spots.loc[(spots.x == 3) & (spots.y == 1), "selected"] = 0
    spots = spots.loc[~((spots.x == 5) & (spots.y == 4))]
    genes = ["GA", "GB", "GC", "GD"]
    counts_xy = xy[~((xy[:, 0] == 2) & (xy[:, 1] == 2))]
    names = [f"{x}x{y}" for x, y in counts_xy]
    counts = pd.DataFrame(rng.poisson(3, size=(len(names), len(genes))), index=names, columns=genes)
    (data / "ST-cnts").mkdir(parents=True, exist_ok=True)
    (data / "ST-spotfiles").mkdir(parents=True, exist_ok=True)
    counts.to_csv(data / "ST-cnts" / f"{section}.tsv.gz", sep="\t")
    spots.to_csv(data / "ST-spotfiles" / f"{section}_selection.tsv", sep="\t", index=False)
    if image:
        img_dir = data / "ST-imgs" / section[0] / section
        img_dir.mkdir(parents=True)
        arr = rng.integers(0, 255, size=(150, 170, 3), dtype=np.uint8)
        Image.fromarray(arr).save(img_dir / f"HE_{section}.jpg", quality=95)
    return {"counts": counts, "spots": spots}


@pytest.fixture
def layout(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "her2st"
    for s in ("A1", "A2", "B1"):
        _write_section(root / "data", s, rng)
    _write_section(root / "data", "B2", rng, image=False)
    return root


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in root.rglob("*") if f.is_file()
    }


def test_estimate_um_per_px_reference():
    rng = np.random.default_rng(0)
    xy = rng.integers(0, 30, size=(200, 2))
    pixel = xy * 291.7 + [-340.0, -250.0]
    assert estimate_um_per_px(xy, pixel) == pytest.approx(200 / 291.7, rel=1e-12)
    noisy = pixel + rng.normal(0, 5, size=pixel.shape)
    assert estimate_um_per_px(xy, noisy) == pytest.approx(200 / 291.7, rel=2e-3)
    with pytest.raises(ValueError, match="--um-per-px"):
        estimate_um_per_px(np.array([[1, 1], [1, 2], [1, 3]]), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="decrease"):
        estimate_um_per_px(xy, -pixel)


def test_import_synthetic_sections(layout, tmp_path, caplog):
    out = tmp_path / "ds"
    before = _hashes(layout)
    with caplog.at_level("INFO"):
        summaries = import_her2st(layout, ["A1", "B1"], out, patch_um=100, patch_px=15)
    assert _hashes(layout) == before  # inputs untouched
    assert "1 of 19 spots have selected != 1" in caplog.text
    assert "2 of 19 spots with counts have no coordinates" in caplog.text
    assert "1 of 18 spots with coordinates have no counts" in caplog.text
    assert [s.sample_id for s in summaries] == ["A1", "B1"]
    assert [s.n_spots for s in summaries] == [17, 17]
    assert all(s.n_dropped == 3 for s in summaries)  # 20 positions, 17 kept
    assert summaries[0].um_per_px == pytest.approx(200 / PITCH_PX)
    assert summaries[0].window_px == 15  # 100 µm / 6.667 µm/px

    ds = read_dataset(out)
    assert ds.patients() == {"A1": "A", "B1": "B"}
    sample = ds["A1"]
    assert sample.technology == "ST"
    assert sample.pixel_size_um == pytest.approx(200 / PITCH_PX)
    assert sample.metadata[keys.META_SPOT_DIAMETER] == 100.0
    assert sample.metadata[keys.META_SPOT_PITCH] == 200.0
    adata = sample.read_adata()
    expected = ["1x1", "1x2", "1x3", "1x4", "2x1", "2x3", "2x4", "3x2", "3x3", "3x4"]
    expected += ["4x1", "4x2", "4x3", "4x4", "5x1", "5x2", "5x3"]
    assert list(adata.obs_names) == expected
    source = pd.read_csv(layout / "data/ST-cnts/A1.tsv.gz", sep="\t", index_col=0)
    np.testing.assert_array_equal(adata.X.toarray(), source.loc[expected].to_numpy())
    assert list(adata.var_names) == ["GA", "GB", "GC", "GD"]
    xy = np.array([n.split("x") for n in expected], dtype=int)
    np.testing.assert_array_equal(adata.obs[keys.OBS_ARRAY_COL], xy[:, 0])
    np.testing.assert_array_equal(adata.obs[keys.OBS_ARRAY_ROW], xy[:, 1])
    pixel = xy * PITCH_PX + [4.0, 9.0]
    np.testing.assert_allclose(adata.obsm[keys.OBSM_SPATIAL], pixel)
    np.testing.assert_allclose(adata.obs[keys.OBS_PXL_COL], pixel[:, 0])
    np.testing.assert_allclose(adata.obs[keys.OBS_PXL_ROW], pixel[:, 1])
    # windows of 15 px around x = 34 (first column) start at x = 27: all inside
    assert not adata.obs[keys.OBS_PATCH_PADDED].any()

    img = np.asarray(Image.open(layout / "data/ST-imgs/A/A1/HE_A1.jpg").convert("RGB"))
    with sample.patches() as store:
        np.testing.assert_array_equal(store.barcodes, expected)
        np.testing.assert_array_equal(store.coords, np.rint(pixel))
        patches = store[np.arange(len(store))]
    x0 = np.floor(pixel - 15 / 2 + 0.5).astype(int)
    for patch, (x, y) in zip(patches, x0, strict=True):
        np.testing.assert_array_equal(patch, img[y : y + 15, x : x + 15])


def test_explicit_um_per_px_and_padding(layout, tmp_path, caplog):
    with caplog.at_level("WARNING"):
        (s,) = import_her2st(layout, ["A2"], tmp_path / "ds", um_per_px=2.0, patch_px=8)
    assert s.um_per_px == 2.0 and s.window_px == 56  # 112 µm / 2 µm/px
    assert "differs by more than 10%" in caplog.text
    assert "leave the image" in caplog.text
    adata = read_dataset(tmp_path / "ds")["A2"].read_adata()
    padded = adata.obs[keys.OBS_PATCH_PADDED].to_numpy()
    pixel = adata.obsm[keys.OBSM_SPATIAL]
    x0 = np.floor(pixel - 28 + 0.5)
    expected = (x0 < 0).any(1) | (x0[:, 0] + 56 > 170) | (x0[:, 1] + 56 > 150)
    np.testing.assert_array_equal(padded, expected)
    assert f"{expected.sum()} of 17 spot windows" in caplog.text


def test_unknown_section_lists_available(layout, tmp_path):
    assert list_sections(layout) == ["A1", "A2", "B1", "B2"]
    with pytest.raises(ValueError, match=r"unknown section 'Z9'; available sections: A1, A2"):
        import_her2st(layout, ["A1", "Z9"], tmp_path / "ds")
    assert not (tmp_path / "ds").exists()  # checked before anything is written


def test_missing_image_names_the_folder(layout, tmp_path):
    with pytest.raises(ValueError, match=r"section B2: no H&E image \(\*\.jpg\) in .*ST-imgs/B/B2"):
        import_her2st(layout, ["A1", "B2"], tmp_path / "ds")
    assert not (tmp_path / "ds").exists()
    bad = layout / "data/ST-imgs/A/A1/HE_A1.jpg"
    bad.chmod(0o644)
    bad.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(ValueError, match=r"HE_A1\.jpg: cannot be read"):
        import_her2st(layout, ["A1"], tmp_path / "ds")


def test_bad_counts_files(layout, tmp_path):
    path = layout / "data/ST-cnts/A1.tsv.gz"
    table = pd.read_csv(path, sep="\t", index_col=0)
    table.iloc[2, 1] = np.nan
    table.to_csv(path, sep="\t")
    with pytest.raises(ValueError, match=r"sample A1: counts hold 1 NaN"):
        import_her2st(layout, ["A1"], tmp_path / "ds")
    table.iloc[2, 1] = -3
    table.to_csv(path, sep="\t")
    with pytest.raises(ValueError, match=r"sample A1: counts hold 1 negative"):
        import_her2st(layout, ["A1"], tmp_path / "ds")
    table.iloc[2, 1] = 1
    pd.concat([table, table.iloc[:2]]).to_csv(path, sep="\t")
    with pytest.raises(ValueError, match=r"A1\.tsv\.gz: 2 duplicate spot \(row name\)"):
        import_her2st(layout, ["A1"], tmp_path / "ds")
    table.rename(index={table.index[0]: "spot_1"}).to_csv(path, sep="\t")
    with pytest.raises(ValueError, match=r"A1\.tsv\.gz: 1 row name\(s\) are not of the form"):
        import_her2st(layout, ["A1"], tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_bad_spotfile(layout, tmp_path):
    path = layout / "data/ST-spotfiles/A1_selection.tsv"
    spots = pd.read_csv(path, sep="\t")
    spots.drop(columns=["pixel_y"]).to_csv(path, sep="\t", index=False)
    with pytest.raises(ValueError, match=r"A1_selection\.tsv: missing column\(s\) \['pixel_y'\]"):
        import_her2st(layout, ["A1"], tmp_path / "ds")
    pd.concat([spots, spots.iloc[:1]]).to_csv(path, sep="\t", index=False)
    with pytest.raises(ValueError, match=r"1 duplicate \(x, y\) position"):
        import_her2st(layout, ["A1"], tmp_path / "ds")


def test_cli_her2st(layout, tmp_path):
    out = tmp_path / "ds"
    runner = CliRunner()
    args = ["her2st", "--root", str(layout / "data"), "--sections", "A1,B1", "--out", str(out)]
    result = runner.invoke(import_app, [*args, "--patch-px", "16"])
    assert result.exit_code == 0, result.output
    assert "A1: 17 spots (3 dropped, 0 padded), 6.6667 µm/px" in result.output
    assert f"wrote 2 sample(s) to {out}" in result.output
    assert read_dataset(out).ids == ["A1", "B1"]
    again = runner.invoke(import_app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    unknown = runner.invoke(import_app, [*args[:4], "Q1", *args[5:]])
    assert unknown.exit_code == 2 and "available sections: A1, A2, B1, B2" in unknown.output


@pytest.mark.slow
def test_real_her2st_c2_to_c6(tmp_path):
    if not (REAL_ROOT / "data" / "ST-cnts").is_dir():
        pytest.skip(f"real her2st data not found at {REAL_ROOT}")
    sections = ["C2", "C3", "C4", "C5", "C6"]
    data = REAL_ROOT / "data"
    spot_rows = sum(
        len(pd.read_csv(data / f"ST-spotfiles/{s}_selection.tsv", sep="\t")) for s in sections
    )
    assert spot_rows == 918
    out = tmp_path / "her2st"
    summaries = import_her2st(REAL_ROOT, sections, out, patch_px=32)
    # 8 spot-file positions have no counts row (C3: 2, C4: 3, C5: 2, C6: 1)
    assert [s.n_spots for s in summaries] == [187, 180, 184, 181, 178]
    assert sum(s.n_spots for s in summaries) + sum(s.n_dropped for s in summaries) == 918
    for s in summaries:
        assert s.um_per_px == pytest.approx(0.686, rel=0.02)
        assert s.window_px == pytest.approx(112 / 0.686, abs=2)
    ds = read_dataset(out)
    assert ds.ids == sections and set(ds.patients().values()) == {"C"}
    sample = ds["C3"]
    adata = sample.read_adata()
    counts = pd.read_csv(data / "ST-cnts/C3.tsv.gz", sep="\t", index_col=0)
    assert set(adata.obs_names) <= set(counts.index)
    rows = ["10x10", "17x20"]
    np.testing.assert_array_equal(adata[rows].X.toarray(), counts.loc[rows].to_numpy())
    spots = pd.read_csv(data / "ST-spotfiles/C3_selection.tsv", sep="\t")
    spots.index = spots.x.astype(str) + "x" + spots.y.astype(str)
    pixel = spots.loc[adata.obs_names, ["pixel_x", "pixel_y"]].to_numpy()
    np.testing.assert_allclose(adata.obsm[keys.OBSM_SPATIAL], pixel)
    with sample.patches() as store:
        np.testing.assert_array_equal(store.barcodes, adata.obs_names)
        np.testing.assert_array_equal(store.coords, np.rint(pixel))
        patch = store[0]
    assert patch.shape == (32, 32, 3)
    assert patch.mean() < 235  # tissue under the spot, not white background


@pytest.mark.slow
def test_real_her2st_c1_has_no_image(tmp_path):
    if not (REAL_ROOT / "data" / "ST-cnts").is_dir():
        pytest.skip(f"real her2st data not found at {REAL_ROOT}")
    with pytest.raises(ValueError, match=r"section C1: no H&E image"):
        import_her2st(REAL_ROOT, ["C1"], tmp_path / "out")
