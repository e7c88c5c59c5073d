"""Settings of the multi-run jobs (plain dataclasses, cheap to import: the CLI reads them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from rankbygene.configs import check_choices
from rankbygene.training.config import JITTER_FIELDS

__all__ = [
    "COMPARED_METHODS",
    "FULL_EPOCHS",
    "QUICK_EPOCHS",
    "DemoConfig",
    "Her2stExperimentConfig",
]

COMPARED_METHODS: tuple[str, ...] = ("stnet", "histogene", "hest-ft", "bleep", "rankbygene")
"""The trained systems every comparison runs (docs/method.md §6), beside the frozen encoder."""

FULL_EPOCHS, QUICK_EPOCHS = 12, 3


@dataclass
class DemoConfig:
    """Settings of the demo; ``quick`` shrinks data and epochs to about a minute.

    The encoder is trained from a random initialisation here (no weights can be
    downloaded), so the image learning rate is 1e-3 rather than the paper's 1e-4,
    which is meant for fine-tuning a pretrained UNI.

    ``threads`` fixes torch's intra-op threads: float sums are split across threads,
    so the numbers depend on the thread count (the last digits of a PCC, and more after
    a few epochs of training); fixing it makes two runs on one machine print the same
    table whatever ``OMP_NUM_THREADS`` says.
    """

    out: Path = Path("demo_out")
    quick: bool = False
    n_samples: int = 6
    n_spots: int = 300
    n_genes: int = 200
    patch_px: int = 64
    encoder: str = "tiny"
    epochs: int | None = None  # None: FULL_EPOCHS, or QUICK_EPOCHS with quick
    batch_size: int = 64
    lr_image: float = 1e-3
    panel: str = "top100"
    probe_epochs: int = 20
    seed: int = 0
    threads: int = 2
    methods: tuple[str, ...] = COMPARED_METHODS
    extra_train: dict[str, Any] = field(default_factory=dict)

    def resolved(self) -> DemoConfig:
        """Fill ``epochs`` and apply the ``quick`` presets (smaller data, fewer epochs)."""
        values = asdict(self)
        if self.quick:
            values |= {"n_samples": 4, "n_spots": 200, "probe_epochs": 10}
        values["epochs"] = self.epochs or (QUICK_EPOCHS if self.quick else FULL_EPOCHS)
        return DemoConfig(**values)


@dataclass
class Her2stExperimentConfig:
    """Settings of the her2st experiment (CPU-sized defaults; see BENCHMARKS.md).

    Attributes:
        root: her2st folder (with ``data/ST-cnts``, ``data/ST-spotfiles``, ``data/ST-imgs``).
        sections: Section ids, e.g. ``["C2", "C3", "C4", "C5", "C6"]``.
        out: Output directory.
        gene_list: Gene-list file evaluated as a second panel (None: top-250 only).
        patch_px: Stored patch size of the 112 µm window.
        encoder: Encoder name (random initialisation unless ``weights``).
        weights: Initial weights of the encoder (a local file, e.g. the
            ``encoder/model.safetensors`` of a ``rankbygene pretrain`` run).
        init: ``random`` (a seeded initialisation, or ``weights``) or ``pretrain``:
            self-supervised pretraining in each outer fold on the fold's training
            sections only (starting from ``weights`` when given), whose encoder every
            variant of the fold then starts from.
        pretrain_method: ``dino`` or ``simclr`` (with ``init="pretrain"``).
        pretrain_epochs: Pretraining epochs (with ``init="pretrain"``).
        jitter: Colour jitter strengths (brightness, contrast, saturation, hue) of the
            strong views (the training student's and the pretraining views); None: the
            paper's (0.2, 0.2, 0.2, 0.1).
        p_jitter: Probability of the colour jitter; None: the paper's 0.8.
        p_grayscale: Probability of grayscale; None: the paper's 0.2.
        random_init: Start an encoder worth its pretraining (uni, ctranspath) from a
            random initialisation on purpose (otherwise no ``weights`` is an error).
        epochs: Training epochs per run.
        batch_size: Training batch.
        lr_image: Image-side learning rate (1e-3: a randomly initialised encoder).
        train_panel: Panel the gene encoder is trained on.
        probe_epochs: Epochs of the MLP probe (paper: 20).
        ablation: Also run λ1 ∈ {0, 5} × λ2 ∈ {0, 1}.
        folds: Limit the number of outer folds (None = all).
        seed: Seed of the initialisation, training and probes.
        threads: torch intra-op threads (fixed: the numbers depend on it, see DemoConfig).
    """

    root: Path = Path("../shared/data/her2st")
    sections: list[str] = field(default_factory=lambda: ["C2", "C3", "C4", "C5", "C6"])
    out: Path = Path("her2st_out")
    gene_list: Path | None = None
    patch_px: int = 64
    encoder: str = "tiny"
    weights: str | None = None
    random_init: bool = False
    init: Literal["random", "pretrain"] = "random"
    pretrain_method: Literal["dino", "simclr"] = "dino"
    pretrain_epochs: int = 20
    jitter: list[float] | None = None
    p_jitter: float | None = None
    p_grayscale: float | None = None
    epochs: int = 8
    batch_size: int = 64
    lr_image: float = 1e-3
    train_panel: str = "top250"
    probe_epochs: int = 20
    ablation: bool = True
    folds: int | None = None
    seed: int = 0
    threads: int = 2

    def __post_init__(self) -> None:
        check_choices(self)  # --init random|pretrain, --pretrain-method dino|simclr

    def colour(self) -> dict[str, float]:
        """The colour settings given, as training (and pretraining) config fields."""
        if self.jitter is not None and len(self.jitter) != len(JITTER_FIELDS):
            raise ValueError(f"jitter takes {len(JITTER_FIELDS)} strengths; got {self.jitter}.")
        values = dict(zip(JITTER_FIELDS, self.jitter, strict=True)) if self.jitter else {}
        given = {"p_jitter": self.p_jitter, "p_grayscale": self.p_grayscale}
        return values | {k: v for k, v in given.items() if v is not None}


HER2ST_LATER_SETTINGS = (
    "random_init",
    "init",
    "pretrain_method",
    "pretrain_epochs",
    "jitter",
    "p_jitter",
    "p_grayscale",
)
"""Settings added after the first her2st runs: recorded in ``job.json`` only when they
differ from their default, so an output directory of an earlier run is still reused."""
