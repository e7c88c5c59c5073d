"""The report page as a reader gets it: figure sizes on a 1,100 px column, and (slow,
with Chromium) the rendered page itself."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rankbygene import keys
from rankbygene.data import make_synthetic_dataset
from rankbygene.evaluation import evaluate_genes
from rankbygene.features import extract_features, list_feature_files, read_features, write_features
from rankbygene.models import create_encoder
from rankbygene.report import ReportSections, build_report
from rankbygene.report.plots.common import PAGE_WIDTH_PX

N_METHODS = 5
N_GENES_SHOWN = 2  # the report's default: the two best-predicted genes
MIN_PANEL_PX = 220
# Height of a title's lowest line of text: capitals and digits are ~0.73 em, so 9 px
# means a font of ~12 px (9 pt shown 1:1 at 100 dpi is 12.5 px); at least 9 px is asked.
MIN_TEXT_PX = 9

_SCREENSHOT = Path(__file__).parents[2] / "benchmarks" / "report_screenshot.py"


def _screenshot_module():
    spec = importlib.util.spec_from_file_location("report_screenshot", _SCREENSHOT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results dir with N_METHODS evaluations (ridge probe on noisier and noisier
    features of a tiny random encoder) and its report.html."""
    root = tmp_path_factory.mktemp("page")
    ds = make_synthetic_dataset(
        root / "data", n_samples=3, n_spots=80, n_genes=30, patch_px=16, seed=0
    )
    base = root / "features"
    extract_features(ds, create_encoder("tiny"), base, batch_size=64)
    rng = np.random.default_rng(0)
    results = root / "results"
    for m in range(N_METHODS):
        fdir = root / f"features-{m}"
        for sid, path in list_feature_files(base).items():
            ff = read_features(path)
            noisy = ff.features + rng.normal(scale=0.5 * m, size=ff.features.shape)
            write_features(fdir / f"{sid}.h5", noisy, ff.coords, ff.barcodes, {"encoder": "tiny"})
        evaluate_genes(
            ds,
            fdir,
            ["SYN00", "SYN01"],
            ["SYN02"],
            panel="top8",
            probe="ridge",
            out=results / "eval" / f"method-{m}",
        )
    return build_report(results)


def _runs(mask: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """[start, end) of the True stretches of ``mask``, joined across gaps < ``gap``."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) >= gap)
    starts = np.r_[idx[0], idx[breaks + 1]]
    ends = np.r_[idx[breaks], idx[-1]] + 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _panels(pixels: np.ndarray, min_px: int = 60) -> list[tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1) of the coloured areas at least ``min_px`` in both sides:
    the maps' spots (viridis colours are saturated; text and frames are grey). Colour
    bars are too thin to count."""
    rgb = pixels[..., :3].astype(int)
    coloured = (rgb.max(axis=-1) - rgb.min(axis=-1)) > 40
    boxes = []
    for y0, y1 in _runs(coloured.any(axis=1), gap=12):
        if y1 - y0 < min_px:
            continue
        for x0, x1 in _runs(coloured[y0:y1].any(axis=0), gap=12):
            if x1 - x0 >= min_px:
                boxes.append((x0, y0, x1, y1))
    return boxes


def _title_height(pixels: np.ndarray, box: tuple[int, int, int, int]) -> int:
    """Height (px) of the lowest line of dark text just above a panel (its title), from
    the top of its capitals to the bottom of its underscores, if any."""
    x0, y0, x1, _ = box
    dark = (pixels[: max(0, y0 - 2), x0:x1, :3] < 160).all(axis=-1).any(axis=1)
    lines = _runs(dark, gap=4)  # joins a line and its underscores
    return lines[-1][1] - lines[-1][0] if lines else 0


def _gene_maps_img(page: str) -> tuple[dict[str, str], Image.Image]:
    tag = re.search(r'<img [^>]*data-file="gene_maps_[^"]+"[^>]*>', page)
    assert tag is not None, "no gene maps on the page"
    attrs = dict(re.findall(r'(\w[\w-]*)="([^"]*)"', tag.group(0)))
    data = base64.b64decode(attrs["src"].split(",", 1)[1])
    return attrs, Image.open(io.BytesIO(data))


def test_gene_maps_png_fits_the_page(report: Path) -> None:
    attrs, png = _gene_maps_img(report.read_text())
    assert (int(attrs["width"]), int(attrs["height"])) == png.size
    assert png.width <= PAGE_WIDTH_PX  # shown at its natural size: one PNG px per CSS px
    scale = min(1.0, PAGE_WIDTH_PX / png.width)
    pixels = np.asarray(png.convert("RGB"))
    boxes = _panels(pixels)
    assert len(boxes) == N_GENES_SHOWN * (1 + N_METHODS)
    rows = [[b for b in boxes if b[1] == y0] for y0 in sorted({b[1] for b in boxes})]
    assert max(len(row) for row in rows) == 4  # panels wrap after 4 columns
    for box in boxes:
        assert (box[2] - box[0]) * scale >= MIN_PANEL_PX
        assert _title_height(pixels, box) * scale >= MIN_TEXT_PX


def test_every_figure_is_shown_unscaled(report: Path) -> None:
    page = report.read_text()
    sizes = re.findall(r'<img [^>]*width="(\d+)" height="(\d+)"', page)
    assert len(sizes) == len(re.findall(r"<img ", page)) >= 1
    assert all(int(w) <= PAGE_WIDTH_PX for w, _ in sizes)
    assert "log1p(norm.) expression" in page and "1st–99th percentile" in page  # caption


def test_evals_table_shows_panel_source(report: Path, tmp_path: Path) -> None:
    res = json.loads((report.parent / "eval" / "method-0" / keys.RESULTS_JSON).read_text())
    assert res["panel_source"].startswith("top")  # evaluate genes records it
    res = {k: v for k, v in res.items() if k != "panel_source"}  # as results of older versions
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / keys.RESULTS_JSON).write_text(json.dumps(res | {"panel_source": "HEST"}))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / keys.RESULTS_JSON).write_text(json.dumps(res))
    sections = ReportSections(evals={"a": tmp_path / "a", "b": tmp_path / "b"})
    page = build_report(tmp_path, sections=sections).read_text()
    assert "<th>panel source</th>" in page
    assert "<td>HEST</td>" in page and "<td>n/a</td>" in page
    page = build_report(tmp_path, sections=ReportSections(evals={"b": tmp_path / "b"}))
    assert "panel source" not in page.read_text()  # only when some result has it


@pytest.mark.slow
@pytest.mark.skipif(
    _screenshot_module().find_browser() is None,
    reason="chromium is not on PATH (make install tries `apt-get install chromium`)",
)
def test_report_as_rendered_by_chromium(report: Path, tmp_path: Path) -> None:
    shot = _screenshot_module()
    layout = shot.image_layout(report, width=1280)
    assert layout["column_width"] == pytest.approx(PAGE_WIDTH_PX)
    images = {img["file"]: img for img in layout["images"]}
    maps = next(img for name, img in images.items() if name.startswith("gene_maps_"))
    for img in images.values():  # every figure inside the column, none scaled
        assert img["width"] <= layout["column_width"]
        assert img["width"] == pytest.approx(img["natural_width"])

    png = shot.render(report, tmp_path / "page.png", width=1280)
    pixels = np.asarray(Image.open(png).convert("RGB"))
    assert (pixels < 250).any(axis=-1).mean() > 0.02  # not blank
    x, y = round(maps["x"]), round(maps["y"])
    region = pixels[y : y + round(maps["height"]), x : x + round(maps["width"])]
    assert region.shape[0] > 0.9 * maps["height"]  # the screenshot holds the whole figure
    boxes = _panels(region)
    assert len(boxes) == N_GENES_SHOWN * (1 + N_METHODS)
    for box in boxes:
        assert box[2] - box[0] >= MIN_PANEL_PX
        assert _title_height(region, box) >= MIN_TEXT_PX
