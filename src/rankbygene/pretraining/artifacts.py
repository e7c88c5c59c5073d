"""Everything a pretraining run directory holds, written and read in one place.

Layout (names in :mod:`rankbygene.keys`)::

    RUN/pretrain.yaml     the resolved PretrainConfig (marks a pretraining run)
    RUN/tiles.json        tiles per sample or slide id: what the run learned from
    RUN/checkpoints/      Lightning checkpoints (last.ckpt)
    RUN/metrics.csv       one row per epoch
    RUN/encoder/          the downstream backbone, as a training run's (card written last:
                          it marks a finished run)

``encoder/`` is what ``train --weights RUN/encoder/model.safetensors`` starts from;
:func:`rankbygene.training.load_run` opens the run like a training run (``extract
--run``, ``predict --run``), through :func:`load_pretraining_run`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rankbygene import keys
from rankbygene.fileio import atomic_path, read_json, write_json
from rankbygene.methods import Method
from rankbygene.models import Encoder, load_encoder, save_encoder
from rankbygene.pretraining.config import PretrainConfig

__all__ = [
    "PRETRAIN_FILES",
    "PretrainedRun",
    "export_pretrained_encoder",
    "is_pretraining_run",
    "load_pretraining_run",
    "read_tile_counts",
    "write_pretrain_start",
]

#: Everything a pretraining run writes at its top level (what ``--overwrite`` removes).
PRETRAIN_FILES = (
    keys.PRETRAIN_CONFIG,
    keys.PRETRAIN_TILES,
    keys.RUN_CHECKPOINTS,
    keys.RUN_METRICS,
    keys.RUN_ENCODER_DIR,
)


def is_pretraining_run(path: str | Path) -> bool:
    """Whether ``path`` holds a pretraining run (finished or not)."""
    return (Path(path) / keys.PRETRAIN_CONFIG).is_file()


def write_pretrain_start(out: Path, config: PretrainConfig, tile_counts: dict[str, int]) -> None:
    """Write ``tiles.json`` and ``pretrain.yaml`` (atomically) before training starts."""
    write_json(out / keys.PRETRAIN_TILES, tile_counts)
    with atomic_path(out / keys.PRETRAIN_CONFIG) as tmp:
        config.to_yaml(tmp)


def read_tile_counts(run_dir: str | Path) -> dict[str, int]:
    """Tiles per sample or slide id that a pretraining run learned from."""
    return read_json(Path(run_dir) / keys.PRETRAIN_TILES)


def export_pretrained_encoder(out: Path, encoder: Encoder, config: PretrainConfig) -> None:
    """Write ``encoder/`` in the format of a training run's (weights, then the card)."""
    save_encoder(
        encoder,
        out / keys.RUN_ENCODER_DIR,
        source_run=str(out.resolve()),
        method=f"pretrain-{config.method}",
        tiles=sum(read_tile_counts(out).values()),
    )


def _no_gene_objective(settings: Any) -> Any:
    raise ValueError("a pretraining run is self-supervised: it has no gene objective.")


@dataclass(frozen=True)
class PretrainedRun:
    """A finished pretraining run, opened by :func:`load_pretraining_run`.

    It answers what readers of training runs ask (``method``, ``genes``, ``encoder()``):
    an image-encoder run with no panel and no predictor of its own.

    Attributes:
        path: the run directory.
        config: its settings.
    """

    path: Path
    config: PretrainConfig

    @property
    def method(self) -> Method:
        """What the run is, as a method declaration (not a registered training method)."""
        return Method(
            name=f"pretrain-{self.config.method}",
            build_objective=_no_gene_objective,
            description=f"self-supervised {self.config.method} pretraining",
            network="image-encoder",
        )

    @property
    def genes(self) -> list[str]:
        """No panel: pretraining sees no expression."""
        return []

    def encoder(self) -> Encoder:
        """The pretrained backbone."""
        return load_encoder(self.path / keys.RUN_ENCODER_DIR)


def load_pretraining_run(run_dir: str | Path) -> PretrainedRun:
    """Open a finished pretraining run.

    Raises:
        FileNotFoundError: not a pretraining run, or one that has not finished.
    """
    run_dir = Path(run_dir)
    if not is_pretraining_run(run_dir):
        raise FileNotFoundError(f"{run_dir} is not a pretraining run (no {keys.PRETRAIN_CONFIG}).")
    if not (run_dir / keys.RUN_ENCODER_DIR / keys.ENCODER_CARD).is_file():
        raise FileNotFoundError(
            f"{run_dir}: the pretraining has not finished (no {keys.RUN_ENCODER_DIR}/"
            f"{keys.ENCODER_CARD}). Run `rankbygene pretrain ... --out {run_dir} --resume` "
            "to completion first."
        )
    return PretrainedRun(run_dir, PretrainConfig.from_yaml(run_dir / keys.PRETRAIN_CONFIG))
