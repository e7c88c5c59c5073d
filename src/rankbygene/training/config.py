"""Typed training configuration, loadable from and saved to YAML.

The CLI builds a :class:`TrainConfig`; the library never sees argparse. Defaults
follow the paper (docs/method.md §4); a method may override a few of them (BLEEP uses a
256-d projection and τ = 1), which is applied by :func:`resolve_config` so that the
``config.yaml`` written into a run directory is exactly what ran.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from rankbygene.configs import check_choices, config_from_mapping, load_config

# What Lightning's Trainer(precision=...) accepts, as strings.
Precision = Literal[
    "64", "64-true", "32", "32-true", "16", "16-mixed", "16-true", "bf16", "bf16-mixed",
    "bf16-true", "transformer-engine", "transformer-engine-float16",
]  # fmt: skip

COLOUR_FIELDS = {
    "jitter_brightness": "brightness",
    "jitter_contrast": "contrast",
    "jitter_saturation": "saturation",
    "jitter_hue": "hue",
    "p_jitter": "p_jitter",
    "p_grayscale": "p_grayscale",
}
"""Config field → :class:`rankbygene.models.ColourAugment` field (the strong view's colour)."""


def check_run_basics(out: str, epochs: int, checkpoint_every: int) -> None:
    """The checks every Lightning run (training, pretraining) makes of its settings.

    Raises:
        ValueError: no ``out``, ``epochs`` < 1 or ``checkpoint_every`` < 0, naming the fix.
    """
    if not out:
        raise ValueError("No run directory given: pass --out RUN.")
    if epochs < 1:
        raise ValueError(f"epochs must be ≥ 1, got {epochs}.")
    if checkpoint_every < 0:
        raise ValueError(
            f"checkpoint_every must be ≥ 0 (0 keeps only last.ckpt), got {checkpoint_every}."
        )


def colour_kwargs(config: Any) -> dict[str, float]:
    """The :data:`COLOUR_FIELDS` of a config (training or pretraining) as keyword
    arguments of :class:`rankbygene.models.ColourAugment`."""
    return {name: getattr(config, field) for field, name in COLOUR_FIELDS.items()}


JITTER_FIELDS = ("jitter_brightness", "jitter_contrast", "jitter_saturation", "jitter_hue")
"""The four strengths ``--jitter B,C,S,H`` sets, in that order."""


@dataclass
class TrainConfig:
    """Everything a training run needs. Field comments give the paper's value.

    Attributes:
        data: Dataset directory in the HEST-1k layout.
        out: Run directory to create (config, checkpoints, metrics, encoder).
        method: a registered method (``rankbygene``, ``hest-ft``, ``bleep``, ``stnet``,
            ``histogene``; see ``rankbygene.methods``).
        encoder: Encoder registry name (``tiny``, ``uni``, ``resnet50-trunc``, a timm name...).
        weights: Local weights file for the encoder (or ``hub``); None = random init,
            refused for an encoder worth its pretraining (uni, ctranspath) unless
            ``random_init``.
        random_init: Start such an encoder from a random initialisation on purpose.
        train_samples: Sample ids used for training (None = every sample).
        val_samples: Explicit validation sample ids (taken out of the training ids).
        val_split: Automatic validation hold-out when ``val_samples`` is not given:
            ``patient`` (one whole patient), ``section`` (one sample) or ``none``.
        panel: Gene panel spec (``top250``, ``hvg50``, ``topN``, or a gene-list file path).
        gene_list: Optional gene-list file; with ``panel=topN`` picks the top N within it.
        target_sum: Library-size normalisation target (scanpy convention 1e4).
        smooth: Spatial smoothing of expression over array neighbours (paper: on).
        epochs: Training epochs (paper: 100).
        batch_size: Spots per batch and per device (paper: 64).
        lr_image: Adam learning rate of backbone + projection head (paper: 1e-4).
        lr_gene: Adam learning rate of the gene encoder (paper: 1e-3).
        proj_dim: Projection / gene embedding size (paper: 1024; BLEEP: 256).
        temperature: Contrastive temperature τ (paper: 0.1; BLEEP: 1.0).
        symmetric: Average image→gene and gene→image InfoNCE.
        lambda_rank: Weight λ1 of the ranking loss (paper: 5).
        lambda_dist: Weight λ2 of the distillation loss (paper: 1).
        triplets: ``sampled`` (paper's acceleration) or ``all``.
        ranking_variant: ``paper`` or ``reference-code`` (docs/method.md §7).
        stop_gradient: Treat gene similarities as targets in the ranking loss.
        distill: Distillation kind: ``mse`` (paper), ``cosine``, ``infonce``.
        ema_every: EMA teacher update after every ``step`` (paper) or ``epoch``.
        momentum_start: EMA momentum at the start of the cosine schedule (0.96).
        momentum_end: EMA momentum at the end (1.0).
        student_augment: ``strong``, ``weak`` or ``none``; None = the method's default.
        jitter_brightness: Strong view: brightness factor in [1 − b, 1 + b] (paper: 0.2).
        jitter_contrast: Strong view: contrast factor in [1 − c, 1 + c] (paper: 0.2).
        jitter_saturation: Strong view: saturation factor in [1 − s, 1 + s] (paper: 0.2).
        jitter_hue: Strong view: hue shift in [−h, h] turns (paper: 0.1).
        p_jitter: Strong view: probability of the colour jitter (paper: 0.8).
        p_grayscale: Strong view: probability of grayscale (paper: 0.2). Lower the
            strengths to keep more of the stain's colour, which carries signal in H&E.
        freeze_backbone: Train heads only (the backbone stays in eval mode).
        cache_frozen_features: With a frozen backbone, compute its features once and train
            the heads on the cache (no augmentation of the backbone input then).
        train_last_blocks: Train only the last k backbone blocks (None = all).
        precision: Lightning precision (``32``, ``bf16-mixed``, ``16-mixed``, ...).
        accelerator: Lightning accelerator (``auto``, ``cpu``, ``gpu``).
        devices: Number of devices (DDP when > 1).
        num_nodes: Number of machines.
        strategy: Lightning strategy (``auto``, ``ddp``, ``ddp_spawn``...).
        num_workers: DataLoader workers.
        preload: Load all patches of the training samples into memory (small data).
        checkpoint_every: Also keep ``epochNNN.ckpt`` every N epochs (0: off). Only
            ``last.ckpt`` is kept otherwise: a checkpoint holds the student, the EMA
            teacher, the gene encoder and Adam's two moments, tens of MB with d = 1024.
        seed: Global seed; CPU runs are deterministic for a seed.
        resume: Continue from ``out/checkpoints/last.ckpt``.
    """

    data: str = ""
    out: str = ""
    method: str = "rankbygene"
    encoder: str = "tiny"
    weights: str | None = None
    random_init: bool = False
    train_samples: list[str] | None = None
    val_samples: list[str] | None = None
    val_split: Literal["patient", "section", "none"] = "patient"
    panel: str = "top250"
    gene_list: str | None = None
    target_sum: float = 1e4
    smooth: bool = True
    epochs: int = 100
    batch_size: int = 64
    lr_image: float = 1e-4
    lr_gene: float = 1e-3
    proj_dim: int | None = None
    temperature: float | None = None
    symmetric: bool = False
    lambda_rank: float = 5.0
    lambda_dist: float = 1.0
    triplets: Literal["sampled", "all"] = "sampled"
    ranking_variant: Literal["paper", "reference-code"] = "paper"
    stop_gradient: bool = True
    distill: Literal["mse", "cosine", "infonce"] = "mse"
    ema_every: Literal["step", "epoch"] = "step"
    momentum_start: float = 0.96
    momentum_end: float = 1.0
    student_augment: Literal["strong", "weak", "none"] | None = None
    jitter_brightness: float = 0.2
    jitter_contrast: float = 0.2
    jitter_saturation: float = 0.2
    jitter_hue: float = 0.1
    p_jitter: float = 0.8
    p_grayscale: float = 0.2
    freeze_backbone: bool = False
    cache_frozen_features: bool = True
    train_last_blocks: int | None = None
    precision: Precision = "32"
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    num_workers: int = 0
    preload: bool = True
    checkpoint_every: int = 0
    seed: int = 0
    resume: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.precision = str(self.precision)  # YAML reads `precision: 32` as a number
        check_choices(self)  # a typo in a choice is an error, not a silent default

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML-safe)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict, refusing unknown keys (a typo must not be silently ignored)."""
        return config_from_mapping(cls, values, "training config")

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        """Read a YAML file written by :meth:`to_yaml` or by hand."""
        return load_config(cls, path)

    def to_yaml(self, path: str | Path) -> None:
        """Write the config as YAML."""
        with open(path, "w") as handle:
            yaml.safe_dump(self.to_dict(), handle, sort_keys=False)

    def colour_augment(self) -> dict[str, float]:
        """The strong view's colour settings, as keyword arguments of
        :class:`rankbygene.models.ColourAugment`."""
        return colour_kwargs(self)

    def updated(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
