"""Slide prediction vs extraction alone: tiles/s on the same slide and encoder, and peak RSS.

Run: ``.venv/bin/python benchmarks/bench_predict.py [--side 6000] [--repeats 3]
[--threads 2] [--no-resnet] [--json]``.

Makes synthetic pyramidal TIFF slides (0.5 µm/px, an elliptical tissue section; written
tile by tile, so the generator never holds a slide either) of ``--side`` and ``2 ×
--side`` pixels (4× the area), and a saved predictor per encoder: the paper's MLP probe
(1024-1024 hidden, 5 fold models, 2 epochs) on the top-250 genes of a synthetic dataset,
fitted on that encoder's features. Then:

- throughput: ``extract_slide_features`` and ``predict_slides`` on the small slide with
  the same encoder (``tiny`` at 64 px, ``resnet50-trunc`` at 224 px unless
  ``--no-resnet``, random weights),
  interleaved in ``--repeats`` rounds, best round kept; ``predict`` is timed without maps
  and with two gene maps, and the predictor alone on the tiles' features (what predict
  adds to extraction, apart from writing its outputs);
- memory: each of extract and predict (tiny, 2 maps) on each slide size in a fresh
  process, reporting its peak resident set size (``VmHWM`` of ``/proc/self/status``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import tifffile
import torch
from safetensors.torch import save_file

import harness
from rankbygene.data import make_synthetic_dataset
from rankbygene.evaluation import GeneEvalConfig, MLPProbeConfig
from rankbygene.features import extract_features, read_features
from rankbygene.features.slides import extract_slide_features
from rankbygene.models import create_encoder
from rankbygene.predict.encoders import open_encoder
from rankbygene.predict.fit import fit_predictor
from rankbygene.predict.saved import load_predictor
from rankbygene.predict.settings import PREDICT
from rankbygene.predict.slides import predict_slides

# The ResNet is the heavy part: the smoke run measures the tiny encoder only.
QUICK = {"side": 1000, "repeats": 1, "spots": 40, "resnet": False}

MPP = 0.5
PATCH_UM = 112.0  # the synthetic dataset's spot window, so the predictor's card says 112
TILE = 256  # TIFF tile side


def _tissue(y0: int, x0: int, h: int, w: int, side: int, scale: int, seed: int) -> np.ndarray:
    """The slide's pixels [y0:y0+h, x0:x0+w] at ``1/scale``: pink ellipse on glass, noisy."""
    rng = np.random.default_rng(seed + y0 * 7919 + x0)
    yy, xx = np.mgrid[y0 : y0 + h, x0 : x0 + w].astype(np.float32) * scale
    c = side / 2
    inside = ((xx - c) / (0.42 * side)) ** 2 + ((yy - c) / (0.3 * side)) ** 2 <= 1
    img = np.full((h, w, 3), 242, dtype=np.uint8)
    tint = (xx / side)[..., None] * np.array([-60.0, 40.0, -40.0], dtype=np.float32)
    pink = np.array([210, 120, 175], dtype=np.float32) + tint
    pink += rng.normal(0, 14, size=(h, w, 3)).astype(np.float32)
    img[inside] = np.clip(pink[inside], 0, 255).astype(np.uint8)
    return img


def _tiles(side: int, scale: int) -> Iterator[np.ndarray]:
    n = side // scale
    for y in range(0, n, TILE):
        for x in range(0, n, TILE):
            tile = np.full((TILE, TILE, 3), 242, dtype=np.uint8)
            h, w = min(TILE, n - y), min(TILE, n - x)
            tile[:h, :w] = _tissue(y, x, h, w, side, scale, seed=0)
            yield tile


def write_slide(path: Path, side: int) -> Path:
    """A pyramidal tiled TIFF of ``side``² pixels (levels 1, 1/4, 1/16), tile by tile."""
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(
            _tiles(side, 1), shape=(side, side, 3), dtype=np.uint8, tile=(TILE, TILE),
            subifds=2, photometric="rgb", resolution=(1e4 / MPP, 1e4 / MPP),
            resolutionunit="CENTIMETER",
        )  # fmt: skip
        for scale in (4, 16):
            n = side // scale
            tif.write(
                _tiles(side, scale), shape=(n, n, 3), dtype=np.uint8, tile=(TILE, TILE),
                subfiletype=1, photometric="rgb",
            )  # fmt: skip
    return path


def make_predictor(name: str, root: Path, spots: int) -> tuple[Path, Path]:
    """Random-weights encoder ``name`` (saved) and an MLP predictor on its features."""
    patch_px = create_encoder(name).transform.input_size
    ds = make_synthetic_dataset(
        root / f"data_{name}", n_samples=3, n_spots=spots, n_genes=300, patch_px=patch_px, seed=0
    )
    torch.manual_seed(0)
    encoder = create_encoder(name)
    weights = root / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in encoder.backbone.state_dict().items()}, weights)
    extract_features(ds, encoder, root / f"feats_{name}")
    config = GeneEvalConfig(panel="top250", mlp=MLPProbeConfig(epochs=2))
    out = fit_predictor(ds, root / f"feats_{name}", ds.ids, root / f"pred_{name}", config=config)
    return weights, out


def throughput(name: str, slide: Path, weights: Path, predictor: Path, repeats: int, root: Path):
    """Tiles/s of extract alone and of predict (no maps, two maps), best of ``repeats``."""
    source = open_encoder(encoder=name, weights=weights)
    saved = load_predictor(predictor)
    genes = saved.genes[:2]
    no_maps = replace(PREDICT, max_maps=0)
    runs = {
        "extract --slides": lambda: extract_slide_features(
            slide, source.network, root / "x", patch_um=PATCH_UM, overwrite=True
        ),
        "predict (no maps)": lambda: predict_slides(
            slide, source, saved, root / "p0", settings=no_maps, overwrite=True
        ),
        "predict (+2 maps)": lambda: predict_slides(
            slide, source, saved, root / "p2", genes=genes, overwrite=True
        ),
    }
    n_tiles = predict_slides(slide, source, saved, root / "warm", settings=no_maps)
    n_tiles = next(iter(n_tiles.values()))["n_tiles"]
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):  # interleaved: a load change hits every run alike
        for label, job in runs.items():
            t0 = time.perf_counter()
            job()
            best[label] = min(best[label], time.perf_counter() - t0)
    # What predict adds, timed alone: the predictor on the tiles' features (best of 5)
    feats = read_features(root / "x" / f"{slide.stem}.h5").features
    alone = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        saved.predict(feats)
        alone = min(alone, time.perf_counter() - t0)
    base = best["extract --slides"]
    return {
        "tiles": n_tiles,
        "predictor alone": {"seconds": round(alone, 3), "vs_extract": round(alone / base, 4)},
        **{
            label: {"seconds": round(t, 2), "tiles_per_s": round(n_tiles / t, 1),
                    "vs_extract": round(t / base, 3)}
            for label, t in best.items()
        },
    }  # fmt: skip


# The child reports VmHWM (this process image's peak RSS): ru_maxrss would carry over the
# parent's peak through fork and exec.
_CHILD = """
import json, re, sys, time, logging, torch
logging.disable(logging.INFO)
torch.set_num_threads({threads})
kind, slide, weights, predictor, out = sys.argv[1:6]
t0 = time.perf_counter()
if kind == "extract":
    from rankbygene.features.slides import extract_slide_features
    from rankbygene.models import create_encoder
    extract_slide_features(slide, create_encoder("tiny", weights), out, patch_um={patch_um})
else:
    from rankbygene.predict.encoders import open_encoder
    from rankbygene.predict.saved import load_predictor
    from rankbygene.predict.slides import predict_slides
    saved = load_predictor(predictor)
    predict_slides(slide, open_encoder(encoder="tiny", weights=weights), saved, out,
                   genes=saved.genes[:2])
status = open("/proc/self/status").read()
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) / 1024
print(json.dumps({{"peak_rss_mb": round(peak, 1), "seconds": round(time.perf_counter() - t0, 1)}}))
"""


def peak_rss(kind: str, slide: Path, weights: Path, predictor: Path, out: Path, threads: int):
    """Peak RSS (MB) of one extract or predict run in a fresh process."""
    code = _CHILD.format(threads=threads, patch_um=PATCH_UM)
    args = [sys.executable, "-c", code, kind, str(slide), str(weights), str(predictor), str(out)]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(
    side: int = 6000, repeats: int = 3, threads: int = 2, spots: int = 300, resnet: bool = True
) -> dict:
    """Throughput on the small slide, and peak RSS on both slide sizes.

    Args:
        side: Side (px) of the small slide; the large one is twice as wide and high.
        repeats: Interleaved rounds of the throughput runs (the best of each is kept).
        threads: torch intra-op threads.
        spots: Spots per synthetic sample the predictors are fitted on (3 samples).
        resnet: Also measure ``resnet50-trunc`` (224 px) beside ``tiny``.

    Returns:
        ``{"slide_px", "mpp", "throughput_small_slide": {encoder: {run: {seconds,
        tiles_per_s, vs_extract}}}, "peak_rss_tiny": {"{kind} {size}": {peak_rss_mb,
        seconds}}, "torch_threads"}``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    encoders = ("tiny", "resnet50-trunc") if resnet else ("tiny",)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            small = write_slide(root / "small.tif", side)
            large = write_slide(root / "large.tif", 2 * side)
            predictors = {name: make_predictor(name, root, spots) for name in encoders}
            report: dict = {"slide_px": {"small": side, "large": 2 * side}, "mpp": MPP}
            report["throughput_small_slide"] = {
                name: throughput(name, small, w, p, repeats, root / name)
                for name, (w, p) in predictors.items()
            }
            weights, predictor = predictors["tiny"]
            report["peak_rss_tiny"] = {
                f"{kind} {size}": peak_rss(
                    kind, slide, weights, predictor, root / f"{kind}_{size}", threads
                )
                for size, slide in (("small", small), ("large", large))
                for kind in ("extract", "predict")
            }
    finally:
        torch.set_num_threads(before)  # run_all runs the next bench in this process
    report["torch_threads"] = threads
    return report


_RUNS = {
    "extract --slides": "`extract --slides`",
    "predict (no maps)": "`predict`, no maps",
    "predict (+2 maps)": "`predict`, 2 gene maps",
    "predictor alone": "the predictor alone (5 MLPs on the features)",
}


def table(result: dict) -> str:
    """The two tables of BENCHMARKS.md: seconds and tiles/s per run and encoder (the
    extra time over extraction in brackets), then peak RSS per slide size."""
    through = result["throughput_small_slide"]
    tiles = next(iter(through.values()))["tiles"]
    header = [f"small slide ({tiles} tiles)"]
    for name in through:
        header += [f"`{name}` s", f"`{name}` tiles/s"]
    rows = []
    for key, label in _RUNS.items():
        cells = [label]
        for runs in through.values():
            entry = runs[key]
            extra = entry["vs_extract"] - (0 if key == "predictor alone" else 1)
            note = f" ({100 * extra:+.1f} %)" if key != "extract --slides" else ""
            cells.append(f"{entry['seconds']:.2f}{note}")
            cells.append(f"{entry['tiles_per_s']:,.1f}" if "tiles_per_s" in entry else "")
        rows.append(cells)
    sizes = result["slide_px"]
    rss = result["peak_rss_tiny"]
    memory_rows = [
        [f"`{kind}`", *(f"{rss[f'{kind} {s}']['peak_rss_mb']:,.0f} MB" for s in ("small", "large"))]
        for kind in ("extract", "predict")
    ]
    memory = harness.markdown_table(
        ["peak RSS (`tiny`, 2 maps)", f"{sizes['small']:,}² px slide",
         f"{sizes['large']:,}² px slide (4× area)"],
        memory_rows,
    )  # fmt: skip
    return harness.markdown_table(header, rows) + "\n\n" + memory


def main() -> None:
    """Command-line entry point: print the tables (or the JSON with ``--json``)."""
    harness.main(sys.modules[__name__])


if __name__ == "__main__":
    main()
