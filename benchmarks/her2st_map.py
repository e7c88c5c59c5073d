"""The README's map: ERBB2 predicted on the her2st C2 H&E image, from a predictor trained on C3–C6.

Run: ``.venv/bin/python benchmarks/her2st_map.py [--her2st ../shared/data/her2st]
[--out her2st_map] [--epochs 10]``.

A quick CPU-scale run, not the paper's setting: RankByGene trains the ``tiny`` CNN from
a random initialisation for ``--epochs`` epochs on sections C3–C6 (64 px patches of the
112 µm window, top-250 panel, no validation hold-out), the paper's MLP probe is fitted
on its features of the same sections, and ``predict`` maps C2, which neither saw: the
whole H&E JPEG as a slide, and C2's ST spots (measured vs predicted PCC). The commands
are printed as they run; the ERBB2 map is copied to ``docs/figures/``. One patient
(serial sections of one tumour): this shows the pipeline on a real slide, it does not
measure generalisation across patients.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIGURE = REPO / "docs" / "figures" / "her2st_C2_ERBB2.png"
TRAIN = "C3,C4,C5,C6"


def rbg(*args: object) -> str:
    """Run ``rankbygene ARGS`` (this interpreter's package), echoing the command."""
    words = [str(a) for a in args]
    print("$ rankbygene " + shlex.join(words), flush=True)
    code = "from rankbygene.cli.main import app; app()"
    done = subprocess.run([sys.executable, "-c", code, *words], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--her2st", type=Path, default=REPO.parent / "shared" / "data" / "her2st")
    parser.add_argument("--out", type=Path, default=Path("her2st_map"))
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    out = args.out
    if out.exists():
        sys.exit(f"{out} exists: remove it or pass another --out (the run starts from scratch).")
    data = out / "data"
    rbg("data", "import", "her2st", "--root", args.her2st, "--sections", f"C2,{TRAIN}",
        "--out", data, "--patch-px", 64)  # fmt: skip
    rbg("train", "--data", data, "--out", out / "run", "--method", "rankbygene",
        "--encoder", "tiny", "--epochs", args.epochs, "--batch-size", 64,
        "--train-samples", TRAIN, "--val-split", "none", "--panel", "top250")  # fmt: skip
    rbg("extract", "--data", data, "--run", out / "run", "--out", out / "feats")
    rbg("fit", "--data", data, "--features", out / "feats", "--train-samples", TRAIN,
        "--panel", "top250", "--out", out / "predictor")  # fmt: skip
    info = json.loads(rbg("data", "info", data, "--json"))
    mpp = next(s["pixel_size_um"] for s in info["samples"] if s["id"] == "C2")
    jpg = next((args.her2st / "data" / "ST-imgs" / "C" / "C2").glob("*.jpg"))
    rbg("predict", "--slides", jpg, "--mpp", f"{mpp:.4f}", "--run", out / "run",
        "--predictor", out / "predictor", "--out", out / "pred",
        "--genes", "ERBB2,FASN")  # fmt: skip
    spots = rbg("predict", "--data", data, "--samples", "C2", "--run", out / "run",
                "--predictor", out / "predictor", "--out", out / "pred", "--genes",
                "ERBB2,FASN")  # fmt: skip
    print(spots, end="")
    rbg("report", out / "pred")
    summary = json.loads((out / "pred" / "predict.json").read_text())
    print("C2 spots, PCC measured vs predicted:", summary["items"]["C2"]["pcc"])
    slide = summary["items"][jpg.stem]
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "pred" / slide["maps"]["ERBB2"], FIGURE)
    print(f"{slide['n_tiles']} tiles; map copied to {FIGURE} ({FIGURE.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
