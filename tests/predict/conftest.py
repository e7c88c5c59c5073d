"""What the predict tests share: a small dataset, one encoder's weights file, its features,
a fitted predictor and a synthetic pyramidal slide (all made once per session)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from safetensors.torch import save_file

from rankbygene.data import make_synthetic_dataset
from rankbygene.evaluation import GeneEvalConfig, MLPProbeConfig
from rankbygene.features import extract_features
from rankbygene.models import create_encoder
from rankbygene.predict.fit import fit_predictor

TRAIN, TEST = ["SYN00", "SYN01"], ["SYN02"]
FAST_MLP = MLPProbeConfig(hidden_dims=(32,), epochs=3, lr=1e-3, folds=2)
SLIDE_MPP = 1.0  # µm per px: 112 µm tiles are 112 px


@dataclass(frozen=True)
class Setup:
    """Paths of the shared inputs."""

    root: Path
    data: Path
    weights: Path  # the tiny encoder's weights (safetensors)
    features: Path  # its features of every sample
    predictor: Path  # an MLP predictor fitted on TRAIN, top12 panel
    config: GeneEvalConfig
    train: tuple[str, ...] = tuple(TRAIN)
    test: tuple[str, ...] = tuple(TEST)


def tissue_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A white slide with a pink elliptical section whose colour varies left to right
    (so predictions vary over the tissue)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    inside = ((xx - width / 2) / (0.4 * width)) ** 2 + ((yy - height / 2) / (0.4 * height)) ** 2
    img = np.full((height, width, 3), 245, dtype=np.uint8)
    img += rng.integers(0, 8, size=img.shape, dtype=np.uint8)
    tint = (xx / width)[..., None] * np.array([-60.0, 40.0, -40.0])
    pink = np.array([215, 120, 175]) + tint + rng.normal(0, 12, size=(height, width, 3))
    img[inside <= 1] = np.clip(pink[inside <= 1], 0, 255).astype(np.uint8)
    return img


def write_pyramid(path: Path, img: np.ndarray, mpp: float = SLIDE_MPP) -> Path:
    """A tiled pyramidal TIFF (levels 1, 1/2, 1/4 in SubIFDs) with its pixel size."""
    with tifffile.TiffWriter(path) as tif:
        tif.write(
            img, tile=(128, 128), subifds=2, photometric="rgb",
            resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER",
        )  # fmt: skip
        for step in (2, 4):
            tif.write(img[::step, ::step], tile=(128, 128), subfiletype=1, photometric="rgb")
    return path


@pytest.fixture(scope="session")
def slide_maker():
    """``make(path, height, width, seed=0, mpp=SLIDE_MPP)``: write a synthetic pyramidal
    slide; returns its path."""

    def make(path: Path, height: int, width: int, seed: int = 0, mpp: float = SLIDE_MPP):
        return write_pyramid(path, tissue_image(height, width, seed), mpp)

    return make


@pytest.fixture(scope="session")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    root = tmp_path_factory.mktemp("predict")
    ds = make_synthetic_dataset(
        root / "data", n_samples=3, n_spots=80, n_genes=40, patch_px=32, seed=2
    )
    torch.manual_seed(0)
    encoder = create_encoder("tiny")
    weights = root / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in encoder.backbone.state_dict().items()}, weights)
    extract_features(ds, encoder, root / "feats")
    config = GeneEvalConfig(panel="top12", mlp=FAST_MLP)
    fit_predictor(ds, root / "feats", TRAIN, root / "predictor", config=config)
    return Setup(root, Path(ds.root), weights, root / "feats", root / "predictor", config)
