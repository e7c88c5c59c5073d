"""Typed settings of a self-supervised pretraining run, loadable from and saved to YAML.

Cheap to import (no torch): the CLI reads its ``--help`` defaults here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from rankbygene.configs import check_choices, config_from_mapping, load_config
from rankbygene.data.tiling import TILING
from rankbygene.training.config import Precision, check_run_basics

__all__ = ["PretrainConfig"]


@dataclass
class PretrainConfig:
    """Everything a pretraining run needs.

    Attributes:
        images: a dataset directory (HEST layout: its stored spot patches are the tiles),
            a whole-slide image, or a directory of slides (tissue tiles of ``patch_um``).
        out: Run directory to create (config, checkpoints, metrics, ``encoder/``).
        encoder: Encoder registry name (``tiny``, ``resnet18``, a timm name...).
        weights: Local weights to start from (None: random initialisation).
        random_init: Start an encoder worth its pretraining (uni, ctranspath) at random on
            purpose (otherwise no ``weights`` is an error, as everywhere).
        method: ``dino`` (self-distillation with multi-crop views and an EMA teacher;
            the teacher backbone is exported) or ``simclr`` (two views, NT-Xent).
        samples: Sample ids of the dataset (or slide ids) to take tiles from (None: all).
        mpp: Slides: µm per level-0 pixel (None: read from the file).
        patch_um: Slides: tile side in µm, the window the encoder will see downstream.
        min_tissue: Slides: minimum tissue fraction of a kept tile.
        max_tiles_per_image: Tiles kept per slide or sample (a seeded random subset).
        epochs: Training epochs.
        batch_size: Tiles per batch and per device.
        lr: AdamW learning rate (scaled by nothing: set it for your batch).
        weight_decay: AdamW weight decay.
        proj_dim: Output width of the projection head (DINO: prototypes; SimCLR: embedding).
        hidden_dim: Hidden width of the projection head.
        bottleneck_dim: DINO head's bottleneck width.
        n_local_views: DINO: small local crops per tile (besides the two global views).
        local_crop_px: DINO: side of the local crops (None: 3/7 of the input size, as 96
            of 224).
        min_scale: Smallest area fraction of a random resized crop (global / SimCLR views).
        temperature: SimCLR: NT-Xent temperature.
        teacher_temp: DINO: teacher softmax temperature.
        student_temp: DINO: student softmax temperature.
        momentum_start: DINO: EMA momentum at the start of the cosine schedule.
        momentum_end: DINO: EMA momentum at the end.
        jitter_brightness: Colour jitter brightness strength (default: the paper's 0.2).
        jitter_contrast: Contrast strength (0.2).
        jitter_saturation: Saturation strength (0.2).
        jitter_hue: Hue strength in turns (0.1).
        p_jitter: Probability of colour jitter per view (0.8).
        p_grayscale: Probability of grayscale per view (0.2).
        precision: Lightning precision.
        accelerator: Lightning accelerator.
        devices: Devices (DDP when > 1).
        num_nodes: Machines.
        strategy: Lightning strategy.
        num_workers: DataLoader workers (the views are made in the workers).
        checkpoint_every: Also keep ``epochNNN.ckpt`` every N epochs (0: only ``last.ckpt``,
            which is written after every epoch).
        seed: Global seed.
        resume: Continue from ``out/checkpoints/last.ckpt``.
    """

    images: str = ""
    out: str = ""
    encoder: str = "tiny"
    weights: str | None = None
    random_init: bool = False
    method: Literal["dino", "simclr"] = "dino"
    samples: list[str] | None = None
    mpp: float | None = None
    patch_um: float = TILING.patch_um
    min_tissue: float = TILING.min_tissue
    max_tiles_per_image: int = 2000
    epochs: int = 100
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 0.04
    proj_dim: int = 2048
    hidden_dim: int = 512
    bottleneck_dim: int = 64
    n_local_views: int = 6
    local_crop_px: int | None = None
    min_scale: float = 0.25
    temperature: float = 0.2
    teacher_temp: float = 0.04
    student_temp: float = 0.1
    momentum_start: float = 0.996
    momentum_end: float = 1.0
    jitter_brightness: float = 0.2
    jitter_contrast: float = 0.2
    jitter_saturation: float = 0.2
    jitter_hue: float = 0.1
    p_jitter: float = 0.8
    p_grayscale: float = 0.2
    precision: Precision = "32"
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    num_workers: int = 0
    checkpoint_every: int = 0
    seed: int = 0
    resume: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.precision = str(self.precision)  # YAML reads `precision: 32` as a number
        check_choices(self)

    def check(self) -> PretrainConfig:
        """Refuse values no run can use; returns self.

        Raises:
            ValueError: naming the setting and the fix.
        """
        if not self.images:
            raise ValueError("No images given: pass --images DATASET_DIR or a slide (directory).")
        check_run_basics(self.out, self.epochs, self.checkpoint_every)
        if self.batch_size < 2:
            raise ValueError(
                f"batch_size must be ≥ 2 (contrast needs a pair), got {self.batch_size}."
            )
        if self.max_tiles_per_image < 1:
            raise ValueError(f"max_tiles_per_image must be ≥ 1, got {self.max_tiles_per_image}.")
        if not 0 < self.min_scale <= 1:
            raise ValueError(f"min_scale must be within (0, 1], got {self.min_scale}.")
        if self.n_local_views < 0:
            raise ValueError(f"n_local_views must be ≥ 0, got {self.n_local_views}.")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML-safe)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_yaml(cls, path: str | Path) -> PretrainConfig:
        """Read a YAML file written by :meth:`to_yaml` or by hand."""
        return load_config(cls, path)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PretrainConfig:
        """Build from a dict, refusing unknown keys."""
        return config_from_mapping(cls, values, "pretraining config")

    def to_yaml(self, path: str | Path) -> None:
        """Write the config as YAML."""
        with open(path, "w") as handle:
            yaml.safe_dump(self.to_dict(), handle, sort_keys=False)

    def updated(self, **changes: Any) -> PretrainConfig:
        """A copy with some fields changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
