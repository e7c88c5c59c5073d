"""Visium Space Ranger importer on a small Space Ranger-shaped fixture."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import tifffile
from PIL import Image
from typer.testing import CliRunner

from rankbygene import keys
from rankbygene.cli.data_import import import_app
from rankbygene.data import read_dataset
from rankbygene.data.importers import base as base_mod
from rankbygene.data.importers import import_visium, read_10x_h5

UM_PER_PX = 5.0  # spot_diameter_fullres = 55 / 5 = 11 px
WINDOW = 16  # patch_um = 80 µm -> 16 px; patch_px = 16 -> no resize, exact comparison
PATCH_UM = WINDOW * UM_PER_PX
GENES = ["G0", "G1", "G2", "G2", "G4", "ADT"]  # one repeated name, one antibody feature
TYPES = ["Gene Expression"] * 5 + ["Antibody Capture"]


@dataclass
class Fixture:
    outs: Path
    image: np.ndarray
    tif: Path
    counts: np.ndarray  # (n_matrix, 6) dense, matrix order
    matrix_barcodes: np.ndarray
    positions: pd.DataFrame  # all positions, indexed by barcode
    kept: np.ndarray  # barcodes expected in the output, in matrix order


def _write_h5(path: Path, counts: np.ndarray, barcodes, names, ids, types) -> None:
    csr = sp.csr_matrix(counts)  # rows = barcodes: identical arrays to CSC genes x barcodes
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g["data"] = csr.data.astype(counts.dtype)
        g["indices"] = csr.indices.astype(np.int64)
        g["indptr"] = csr.indptr.astype(np.int64)
        g["shape"] = np.array([counts.shape[1], counts.shape[0]], dtype=np.int32)
        g["barcodes"] = np.array(barcodes, dtype="S")
        feat = g.create_group("features")
        feat["name"] = np.array(names, dtype="S")
        feat["id"] = np.array(ids, dtype="S")
        feat["feature_type"] = np.array(types, dtype="S")


def build_spaceranger(root: Path, *, old_positions: bool = False) -> Fixture:
    """6 x 8 grid of spots; 4 off tissue; 2 in-tissue spots without counts; 1 counted
    spot off tissue (so 42 spots kept, 3 dropped); the 6 spots of the first column sit on
    the image border (padded)."""
    rng = np.random.default_rng(0)
    outs = root / "outs"
    (outs / "spatial").mkdir(parents=True)
    rows, cols = np.meshgrid(np.arange(6), np.arange(8), indexing="ij")
    n = rows.size
    barcodes = np.array([f"AC{i:03d}-1" for i in range(n)])
    in_tissue = np.ones(n, dtype=int)
    in_tissue[[5, 11, 17, 23]] = 0
    positions = pd.DataFrame(
        {
            keys.OBS_IN_TISSUE: in_tissue,
            keys.OBS_ARRAY_ROW: rows.ravel(),
            keys.OBS_ARRAY_COL: cols.ravel() * 2 + rows.ravel() % 2,
            keys.OBS_PXL_ROW: 20 + rows.ravel() * 20,
            keys.OBS_PXL_COL: 3 + cols.ravel() * 22,  # column 0 at x = 3: window leaves
        },
        index=pd.Index(barcodes, name="barcode"),
    )
    table = positions.reset_index()
    if old_positions:
        table.to_csv(outs / "spatial" / "tissue_positions_list.csv", header=False, index=False)
    else:
        table.to_csv(outs / "spatial" / "tissue_positions.csv", index=False)
    (outs / "spatial" / "scalefactors_json.json").write_text(
        json.dumps(
            {
                "spot_diameter_fullres": 55 / UM_PER_PX,
                "tissue_hires_scalef": 0.5,
                "fiducial_diameter_fullres": 17.0,
            }
        )
    )
    # matrix: in-tissue spots except two, plus one off-tissue spot (index 5)
    in_matrix = np.flatnonzero(in_tissue == 1)
    in_matrix = np.setdiff1d(in_matrix, [7, 30])
    in_matrix = np.sort(np.r_[in_matrix, 5])
    order = rng.permutation(in_matrix)  # matrix order differs from positions order
    counts = rng.poisson(2.0, size=(len(order), len(GENES))).astype(np.int32)
    ids = [f"ENSG{i:05d}" for i in range(len(GENES))]
    _write_h5(outs / "filtered_feature_bc_matrix.h5", counts, barcodes[order], GENES, ids, TYPES)
    image = rng.integers(0, 255, size=(140, 190, 3), dtype=np.uint8)
    tif = root / "fullres.tif"
    tifffile.imwrite(tif, image, tile=(64, 64), photometric="rgb", compression="zlib")
    kept = barcodes[order][barcodes[order] != barcodes[5]]
    return Fixture(outs, image, tif, counts, barcodes[order], positions, kept)


def _hashes(*paths: Path) -> dict[str, str]:
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*")))]
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


def _white_padded_window(img: np.ndarray, x0: int, y0: int, w: int) -> np.ndarray:
    big = np.pad(img, ((w, w), (w, w), (0, 0)), constant_values=255)
    return big[y0 + w : y0 + 2 * w, x0 + w : x0 + 2 * w]


@pytest.fixture
def fx(tmp_path) -> Fixture:
    return build_spaceranger(tmp_path / "sr")


def test_read_10x_h5_keeps_gene_expression(fx):
    m = read_10x_h5(fx.outs / "filtered_feature_bc_matrix.h5")
    assert m.counts.shape == (len(fx.matrix_barcodes), 5)
    np.testing.assert_array_equal(m.counts.toarray(), fx.counts[:, :5])
    np.testing.assert_array_equal(m.barcodes, fx.matrix_barcodes)
    assert list(m.gene_names) == GENES[:5]


def test_visium_round_trip(fx, tmp_path, caplog):
    out = tmp_path / "ds"
    before = _hashes(fx.outs, fx.tif)
    with caplog.at_level("INFO"):
        summary = import_visium(
            fx.outs.parent, fx.tif, "V1", out, patient="P1", patch_um=PATCH_UM, patch_px=WINDOW
        )
    assert _hashes(fx.outs, fx.tif) == before  # inputs untouched
    assert "1 spots with counts lie outside the tissue" in caplog.text
    assert "2 of 44 spots with coordinates have no counts" in caplog.text
    assert summary.n_spots == len(fx.kept) == 42
    assert summary.n_dropped == 3 and summary.window_px == WINDOW
    assert summary.um_per_px == pytest.approx(UM_PER_PX)

    sample = read_dataset(out)["V1"]
    assert sample.patient == "P1" and sample.technology == "Visium"
    assert sample.pixel_size_um == pytest.approx(UM_PER_PX)
    assert sample.metadata[keys.META_SPOT_DIAMETER] == 55.0
    assert sample.metadata[keys.META_SPOT_PITCH] == 100.0
    adata = sample.read_adata()
    np.testing.assert_array_equal(adata.obs_names, fx.kept)
    rows = pd.Index(fx.matrix_barcodes).get_indexer(fx.kept)
    np.testing.assert_array_equal(adata.X.toarray(), fx.counts[rows, :5])
    assert adata.X.dtype == np.int32
    assert list(adata.var_names) == ["G0", "G1", "G2", "G2-1", "G4"]
    assert list(adata.var["gene_ids"]) == [f"ENSG{i:05d}" for i in range(5)]
    pos = fx.positions.loc[fx.kept]
    for col in (keys.OBS_ARRAY_ROW, keys.OBS_ARRAY_COL, keys.OBS_PXL_ROW, keys.OBS_PXL_COL):
        np.testing.assert_array_equal(adata.obs[col].to_numpy(), pos[col].to_numpy())
    xy = pos[[keys.OBS_PXL_COL, keys.OBS_PXL_ROW]].to_numpy()
    np.testing.assert_array_equal(adata.obsm[keys.OBSM_SPATIAL], xy)
    x0 = xy - WINDOW // 2
    expected_pad = (x0 < 0).any(axis=1) | (x0[:, 0] + WINDOW > 190) | (x0[:, 1] + WINDOW > 140)
    np.testing.assert_array_equal(adata.obs[keys.OBS_PATCH_PADDED].to_numpy(), expected_pad)
    assert expected_pad.sum() == 6  # the first image column of spots

    with sample.patches() as store:
        np.testing.assert_array_equal(store.barcodes, fx.kept)
        np.testing.assert_array_equal(store.coords, xy)
        assert store.patch_size == WINDOW
        assert store.pixel_size_um == pytest.approx(PATCH_UM / WINDOW)
        patches = store[np.arange(len(store))]
    for patch, (x, y) in zip(patches, x0, strict=True):
        np.testing.assert_array_equal(patch, _white_padded_window(fx.image, x, y, WINDOW))
    # a spot well inside: plain slicing of the image
    i = int(np.flatnonzero(~expected_pad)[0])
    x, y = x0[i]
    np.testing.assert_array_equal(patches[i], fx.image[y : y + WINDOW, x : x + WINDOW])


def test_old_positions_and_png_give_the_same_dataset(tmp_path):
    new = build_spaceranger(tmp_path / "new")
    old = build_spaceranger(tmp_path / "old", old_positions=True)
    assert not (old.outs / "spatial" / "tissue_positions.csv").exists()
    png = tmp_path / "fullres.png"
    Image.fromarray(old.image).save(png)
    import_visium(new.outs, new.tif, "S", tmp_path / "a", patch_um=PATCH_UM, patch_px=8)
    import_visium(old.outs, png, "S", tmp_path / "b", patch_um=PATCH_UM, patch_px=8)
    a, b = (read_dataset(tmp_path / d)["S"] for d in ("a", "b"))
    np.testing.assert_array_equal(a.read_adata().X.toarray(), b.read_adata().X.toarray())
    with a.patches() as pa, b.patches() as pb:
        assert pa[0].shape == (8, 8, 3)  # resized 16 -> 8
        np.testing.assert_array_equal(pa[np.arange(len(pa))], pb[np.arange(len(pb))])
        np.testing.assert_array_equal(pa.coords, pb.coords)


def _rewrite_matrix(fx: Fixture, counts: np.ndarray, barcodes=None) -> None:
    ids = [f"ENSG{i:05d}" for i in range(len(GENES))]
    bcs = fx.matrix_barcodes if barcodes is None else barcodes
    _write_h5(fx.outs / "filtered_feature_bc_matrix.h5", counts, bcs, GENES, ids, TYPES)


def _with_nan(c: np.ndarray) -> np.ndarray:
    c = c.astype(np.float32)
    c[0, 3] = np.nan
    return c


def _with_negative(c: np.ndarray) -> np.ndarray:
    c = c.copy()
    c[0, 4] = -100
    return c


@pytest.mark.parametrize(
    ("mutate", "match"),
    [(_with_nan, "1 NaN"), (_with_negative, "1 negative")],
    ids=["nan", "negative"],
)
def test_bad_counts_are_rejected_and_nothing_written(fx, tmp_path, mutate, match):
    counts = fx.counts.copy()
    counts[0, 3] = counts[0, 4] = 1  # make sure the mutated entries are stored
    _rewrite_matrix(fx, mutate(counts))
    out = tmp_path / "ds"
    with pytest.raises(ValueError, match=rf"sample V1: counts hold {match}"):
        import_visium(fx.outs, fx.tif, "V1", out, patch_um=PATCH_UM, patch_px=WINDOW)
    assert not (out / keys.METADATA_DIR).exists() or not any((out / keys.METADATA_DIR).iterdir())


def test_duplicate_and_mismatched_barcodes(fx, tmp_path, caplog):
    dup = fx.matrix_barcodes.copy()
    dup[1] = dup[0]
    _rewrite_matrix(fx, fx.counts, dup)
    with pytest.raises(ValueError, match=r"filtered_feature_bc_matrix\.h5: 1 duplicate barcode"):
        import_visium(fx.outs, fx.tif, "V1", tmp_path / "a", patch_um=PATCH_UM)
    # barcodes without a position: warned with the count, the rest imported
    other = fx.matrix_barcodes.copy()
    other[:3] = ["ZZ1-1", "ZZ2-1", "ZZ3-1"]
    _rewrite_matrix(fx, fx.counts, other)
    in_tissue = fx.positions.index[fx.positions[keys.OBS_IN_TISSUE] == 1]
    n_on_tissue_or_unknown = int(
        (~pd.Index(other).isin(fx.positions.index[~fx.positions.index.isin(in_tissue)])).sum()
    )
    with caplog.at_level("WARNING"):
        s = import_visium(fx.outs, fx.tif, "V1", tmp_path / "b", patch_um=PATCH_UM)
    assert f"3 of {n_on_tissue_or_unknown} spots with counts have no coordinates" in caplog.text
    assert s.n_spots == int(pd.Index(other).isin(in_tissue).sum())
    np.testing.assert_array_equal(
        read_dataset(tmp_path / "b")["V1"].read_adata().obs_names,
        other[pd.Index(other).isin(in_tissue)],
    )
    # nothing in common: an error naming both inputs
    _rewrite_matrix(fx, fx.counts, np.array([f"X{i}" for i in range(len(other))]))
    with pytest.raises(ValueError, match=r"no spot of .*filtered_feature_bc_matrix\.h5.* is in"):
        import_visium(fx.outs, fx.tif, "V1", tmp_path / "c", patch_um=PATCH_UM)


def test_missing_inputs_name_the_file(fx, tmp_path):
    out = tmp_path / "ds"
    with pytest.raises(ValueError, match=r"nope\.tif: file not found"):
        import_visium(fx.outs, tmp_path / "nope.tif", "V1", out, patch_um=PATCH_UM)
    small = tmp_path / "hires.png"
    Image.fromarray(fx.image[::4, ::4]).save(small)
    with pytest.raises(ValueError, match=r"outside the image .*hires\.png.*full-resolution"):
        import_visium(fx.outs, small, "V1", out, patch_um=PATCH_UM)
    (fx.outs / "spatial" / "scalefactors_json.json").write_text("{}")
    with pytest.raises(ValueError, match="spot_diameter_fullres"):
        import_visium(fx.outs, fx.tif, "V1", out, patch_um=PATCH_UM)
    (fx.outs / "spatial" / "tissue_positions.csv").unlink()
    with pytest.raises(ValueError, match=r"tissue_positions_list\.csv exists"):
        import_visium(fx.outs, fx.tif, "V1", out, um_per_px=5.0)
    with pytest.raises(ValueError, match=r"no filtered_feature_bc_matrix\.h5"):
        import_visium(tmp_path, fx.tif, "V1", out)
    assert not out.exists()


def test_crash_while_writing_leaves_no_readable_sample(fx, tmp_path, monkeypatch):
    out = tmp_path / "ds"
    import rankbygene.data.writer as writer

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(writer, "_write_patches", boom)
    with pytest.raises(OSError, match="disk full"):
        import_visium(fx.outs, fx.tif, "V1", out, patch_um=PATCH_UM)
    assert not list((out / keys.METADATA_DIR).glob("*"))  # no sample is visible
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]


def test_existing_sample_needs_overwrite(fx, tmp_path):
    out = tmp_path / "ds"
    import_visium(fx.outs, fx.tif, "V1", out, patch_um=PATCH_UM, patch_px=8)
    with pytest.raises(ValueError, match="already exists"):
        import_visium(fx.outs, fx.tif, "V1", out, patch_um=PATCH_UM, patch_px=8)
    s = import_visium(fx.outs, fx.tif, "V1", out, patch_um=PATCH_UM, patch_px=4, overwrite=True)
    assert s.patch_px == 4
    with read_dataset(out)["V1"].patches() as store:
        assert store.patch_size == 4


def test_cli_visium(fx, tmp_path):
    out = tmp_path / "ds"
    runner = CliRunner()
    args = ["visium", "--spaceranger", str(fx.outs), "--image", str(fx.tif), "--id", "V9"]
    args += ["--out", str(out), "--patch-um", str(PATCH_UM), "--patch-px", "8"]
    result = runner.invoke(import_app, args)
    assert result.exit_code == 0, result.output
    assert "V9: 42 spots (3 dropped, 6 padded)" in result.output
    assert str(out) in result.output
    assert read_dataset(out).ids == ["V9"]
    bad = runner.invoke(import_app, [*args[:4], str(tmp_path / "missing.tif"), *args[5:]])
    assert bad.exit_code == 2
    assert "missing.tif: file not found" in bad.output


def test_shared_writer_is_used(fx, tmp_path, monkeypatch):
    """The importer hands the writer raw int counts, (x, y) int centres and µm/px of patches."""
    seen = {}
    import rankbygene.data.writer as writer

    real = writer.write_sample

    def spy(root, sample_id, adata, img, coords, barcodes, metadata, **kw):
        seen.update(adata=adata, coords=coords, kw=kw, metadata=metadata)
        return real(root, sample_id, adata, img, coords, barcodes, metadata, **kw)

    monkeypatch.setattr(writer, "write_sample", spy)
    import_visium(fx.outs, fx.tif, "V1", tmp_path / "ds", patch_um=PATCH_UM, patch_px=8)
    assert seen["kw"]["pixel_size_um"] == pytest.approx(PATCH_UM / 8)
    assert seen["kw"]["patch_size_src"] == WINDOW
    assert seen["coords"].dtype == np.int64
    assert seen["metadata"][keys.META_TECHNOLOGY] == "Visium"
    assert base_mod.UNS_IMPORT in seen["adata"].uns
