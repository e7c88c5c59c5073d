"""Everything a training run directory holds, written and read in one place.

Layout (names in :mod:`rankbygene.keys`)::

    RUN/config.yaml           resolved TrainConfig, with the alignment train/validation split
    RUN/genes.txt             the panel the run was trained on (chosen once, on its fit samples)
    RUN/checkpoints/          Lightning checkpoints (last.ckpt)
    RUN/metrics.csv           one row per epoch
    RUN/encoder/              image-encoder runs: the downstream backbone (safetensors + card)
    RUN/histogene.*           HisToGene runs: the whole network and its settings
    RUN/heads.safetensors     the image head (+ gene encoder): "image_head.*", "gene_encoder.*"
    RUN/heads.json            how to rebuild the heads; written last, so it marks a finished run

:func:`load_run` is the one checked way to open a run; every reader (``extract --run``,
the run's own predictors, comparisons) goes through it.

An existing ``RUN`` follows one rule (:func:`check_run_directory`): a run is continued
only with ``resume`` (with its saved settings: :func:`check_resume_config`; a run that
never reached a checkpoint starts again from scratch) and replaced only with
``overwrite`` (:func:`remove_run` deletes exactly the files a run writes); a non-empty
directory that is not a run is never written into. Whether a run finished is
:func:`run_finished` (its heads card is written last); how far an unfinished one got
is :func:`run_progress`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import save_file
from torch import nn

from rankbygene import __version__, keys
from rankbygene.fileio import atomic_path, read_json, write_json, write_text_atomic
from rankbygene.methods import Method, get_method
from rankbygene.methods.histogene import HisToGeneNet
from rankbygene.models import Encoder, MLPHead, load_encoder, save_encoder
from rankbygene.models.checkpoint import load_torch_file, read_safetensors
from rankbygene.pretraining.artifacts import (
    PretrainedRun,
    is_pretraining_run,
    load_pretraining_run,
)
from rankbygene.training.config import TrainConfig

__all__ = [
    "RUN_FILES",
    "TrainedRun",
    "check_resume_config",
    "check_resume_panel",
    "check_run_directory",
    "export_encoder_run",
    "export_histogene_run",
    "load_run",
    "read_run_genes",
    "remove_run",
    "run_finished",
    "run_progress",
    "write_run_start",
]

IMAGE_HEAD_PREFIX, GENE_ENCODER_PREFIX = "image_head.", "gene_encoder."
HEADS_CARD_FIELDS = ("embed_dim", "proj_dim", "n_genes")
HISTOGENE_CARD_FIELDS = ("n_genes", "settings")
RETRAIN = "the run's files are damaged: train it again (`rankbygene train ... --overwrite`)"

#: Everything a run writes at its top level (``remove_run`` deletes these and nothing else).
RUN_FILES = (
    keys.RUN_CONFIG,
    keys.RUN_GENES,
    keys.RUN_CHECKPOINTS,
    keys.RUN_METRICS,
    keys.RUN_ENCODER_DIR,
    keys.RUN_HEADS,
    keys.RUN_HEADS_CARD,
    keys.HISTOGENE_WEIGHTS,
    keys.HISTOGENE_CARD,
)
#: Settings that say where and how a run executes, not what it computes: a resumed run
#: may change them (another machine, fewer devices, a moved dataset).
EXECUTION_FIELDS = frozenset(
    {"data", "out", "resume", "accelerator", "devices", "num_nodes", "strategy",
     "num_workers", "preload"}
)  # fmt: skip


def run_progress(out: Path, marker: str = keys.RUN_CONFIG) -> str:
    """How far an unfinished run got, for messages (``last epoch 3 of 10``).

    Read from ``checkpoints/last.ckpt`` (tensors mapped, not read) and the ``epochs`` of
    the run's config file ``marker``.
    """
    last = out / keys.RUN_CHECKPOINTS / keys.RUN_LAST_CKPT
    if not last.is_file():
        return f"no checkpoint: it stopped before its first epoch ended; no {keys.RUN_LAST_CKPT}"
    try:
        done = int(load_torch_file(last, mmap=True)["epoch"]) + 1  # type: ignore[index]
    except (OSError, ValueError, KeyError, TypeError):
        return f"its {keys.RUN_CHECKPOINTS}/{keys.RUN_LAST_CKPT} is unreadable"
    try:
        total = f" of {int(yaml.safe_load((out / marker).read_text())['epochs'])}"
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError):
        total = ""
    return f"last epoch {done}{total}"


def run_finished(out: Path, finished: str = keys.RUN_HEADS_CARD) -> bool:
    """Whether the run in ``out`` finished: ``finished``, the file it writes last, exists."""
    return (out / finished).is_file()


def check_run_directory(
    out: Path,
    *,
    resume: bool,
    overwrite: bool,
    marker: str = keys.RUN_CONFIG,
    finished: str = keys.RUN_HEADS_CARD,
    kind: str = "training",
) -> bool:
    """The rule for an existing ``--out`` (see the module docstring).

    ``resume`` with nothing to resume from (a run killed before its first checkpoint,
    an empty or new directory) is a start from scratch. ``marker`` is the file that makes
    a directory a ``kind`` run and ``finished`` the file it writes last (a
    pretraining run follows the same rule with its own files).

    Returns:
        Whether training continues from ``checkpoints/last.ckpt``.

    Raises:
        ValueError: both flags; a non-empty directory that is not a run; an existing
            run without either flag, saying whether it finished and how far it got.
    """
    if resume and overwrite:
        raise ValueError(
            "--resume continues the run in --out and --overwrite replaces it: pass one of them."
        )
    if not out.is_dir() or not any(out.iterdir()):
        return False
    if not (out / marker).is_file():
        raise ValueError(
            f"{out}: the directory is not empty and is not a {kind} run (no "
            f"{marker}); choose a new or empty --out."
        )
    if resume:
        return (out / keys.RUN_CHECKPOINTS / keys.RUN_LAST_CKPT).is_file()
    if overwrite:
        return False
    if run_finished(out, finished):
        raise ValueError(
            f"{out} already holds a finished {kind} run (nothing left for --resume); pass "
            "--overwrite to replace it, or choose another --out."
        )
    raise ValueError(
        f"{out}: {kind} did not finish ({run_progress(out, marker)}); resume it with --resume, "
        "replace it with --overwrite, or choose another --out."
    )


def remove_run(out: Path, files: tuple[str, ...] = RUN_FILES) -> None:
    """Delete the files a run writes (``files``: :data:`RUN_FILES` of a training run),
    before ``overwrite`` writes anew.

    Only known names are removed (checkpoints: only ``*.ckpt``), so nothing a user put
    beside the run is lost.
    """
    for name in files:
        path = out / name
        if name == keys.RUN_CHECKPOINTS and path.is_dir():
            for ckpt in path.glob("*.ckpt"):
                ckpt.unlink()
            if not any(path.iterdir()):
                path.rmdir()
        elif name == keys.RUN_ENCODER_DIR and path.is_dir():
            for part in (keys.ENCODER_WEIGHTS, keys.ENCODER_CARD):
                (path / part).unlink(missing_ok=True)
            if not any(path.iterdir()):
                path.rmdir()
        elif path.is_file():
            path.unlink()


def _same(saved: Any, given: Any) -> bool:
    """Equal settings; an empty sample list and None (no samples) are the same."""
    return (saved or None) == (given or None) if isinstance(saved, list | None) else saved == given


def check_resume_config(out: Path, config: TrainConfig) -> None:
    """Refuse to resume with settings that differ from the run's ``config.yaml``.

    A resumed run must compute what the interrupted one would have; only where it runs
    (:data:`EXECUTION_FIELDS`) may change.

    Raises:
        ValueError: naming the file and every differing setting, with both values.
    """
    path = out / keys.RUN_CONFIG
    if not path.is_file():
        raise ValueError(f"{out}: not a training run (no {keys.RUN_CONFIG}); nothing to resume.")
    saved = TrainConfig.from_yaml(path).to_dict()
    given = config.to_dict()
    diffs = [
        f"{name} is {saved[name]!r} in the run but {given[name]!r} now"
        for name in saved
        if name not in EXECUTION_FIELDS and not _same(saved[name], given[name])
    ]
    if diffs:
        raise ValueError(
            f"{path}: --resume continues the run with its saved settings, but "
            + "; ".join(diffs)
            + ". Drop those flags (the saved values are used), or start a new run with "
            "--overwrite or another --out."
        )


def write_run_start(out: Path, config: TrainConfig, genes: list[str]) -> None:
    """Write ``genes.txt`` and ``config.yaml`` (atomically) before training starts."""
    write_text_atomic(out / keys.RUN_GENES, "\n".join(genes) + "\n")
    with atomic_path(out / keys.RUN_CONFIG) as tmp:
        config.to_yaml(tmp)


def read_run_genes(run_dir: Path) -> list[str]:
    """The panel a run was trained on, in its column order."""
    path = Path(run_dir) / keys.RUN_GENES
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {run_dir} is not a training run directory.")
    return path.read_text().split()


def check_resume_panel(out: Path, genes: list[str]) -> None:
    """Refuse to resume a run whose data now gives another panel."""
    saved = read_run_genes(out)
    if saved != genes:
        raise ValueError(
            f"{out / keys.RUN_GENES}: the run was trained on {len(saved)} genes but the data now "
            f"gives a panel of {len(genes)} ({len(set(saved) ^ set(genes))} differ). Resume with "
            "the same --data, --train-samples and --panel, or start a new --out."
        )


def _write_heads(
    out: Path, image_head: nn.Module, gene_encoder: nn.Module, card: dict[str, Any]
) -> None:
    """Write ``heads.safetensors`` and, last, its card (the run's completion marker)."""
    tensors = {f"{IMAGE_HEAD_PREFIX}{k}": v for k, v in image_head.state_dict().items()}
    tensors |= {f"{GENE_ENCODER_PREFIX}{k}": v for k, v in gene_encoder.state_dict().items()}
    with atomic_path(out / keys.RUN_HEADS) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
    write_json(out / keys.RUN_HEADS_CARD, {**card, "rankbygene_version": __version__})


def export_encoder_run(
    out: Path,
    method: Method,
    backbone: Encoder,
    image_head: nn.Module,
    gene_encoder: nn.Module,
    proj_dim: int | None,
    genes: list[str],
) -> None:
    """Write the downstream backbone (``encoder/``) and the heads of an image-encoder run."""
    save_encoder(
        backbone,
        out / keys.RUN_ENCODER_DIR,
        source_run=str(out.resolve()),
        method=method.name,
        n_genes=len(genes),
    )
    card = {
        "embed_dim": backbone.embed_dim,
        "proj_dim": proj_dim,
        "n_genes": len(genes),
        "method": method.name,
    }
    _write_heads(out, image_head, gene_encoder, card)


def export_histogene_run(
    out: Path, net: HisToGeneNet, settings: dict[str, Any], genes: list[str]
) -> None:
    """Write a HisToGene network, and its linear head in the expression-head layout."""
    with atomic_path(out / keys.HISTOGENE_WEIGHTS) as tmp:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp))
    write_json(out / keys.HISTOGENE_CARD, {"n_genes": len(genes), "settings": settings})
    card = {"embed_dim": settings["dim"], "proj_dim": None, "n_genes": len(genes)}
    _write_heads(out, net.head, nn.Identity(), {**card, "method": "histogene"})


@dataclass(frozen=True)
class TrainedRun:
    """A finished training run, opened by :func:`load_run`.

    Attributes:
        path: the run directory.
        config: its resolved training config.
        genes: the panel it was trained on (``genes.txt``).
        method: the method's declaration (what the run can be asked for).
    """

    path: Path
    config: TrainConfig
    genes: list[str]
    method: Method

    @property
    def heads_card(self) -> dict[str, Any]:
        """The card of ``heads.safetensors`` (embed_dim, proj_dim, n_genes)."""
        path = self.path / keys.RUN_HEADS_CARD
        return read_json(path, required=HEADS_CARD_FIELDS, fix=RETRAIN)

    def _head_states(self) -> dict[str, dict[str, torch.Tensor]]:
        tensors = read_safetensors(self.path / keys.RUN_HEADS)
        return {
            prefix: {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            for prefix in (IMAGE_HEAD_PREFIX, GENE_ENCODER_PREFIX)
        }

    def encoder(self) -> Encoder:
        """The downstream image encoder (the teacher backbone when the method has one)."""
        if self.method.network != "image-encoder":
            raise ValueError(
                f"{self.path} is a {self.method.name} run: it has no per-spot image encoder "
                "(a spot's features depend on its whole section). `rankbygene extract --data "
                f"DIR --run {self.path}` computes them."
            )
        return load_encoder(self.path / keys.RUN_ENCODER_DIR)

    def histogene(self) -> HisToGeneNet:
        """The trained HisToGene network (eval mode)."""
        if self.method.network != "section-transformer":
            raise ValueError(f"{self.path} is a {self.method.name} run, not a HisToGene run.")
        path = self.path / keys.HISTOGENE_CARD
        card = read_json(path, required=HISTOGENE_CARD_FIELDS, fix=RETRAIN)
        net = HisToGeneNet(card["n_genes"], **card["settings"])
        net.load_state_dict(read_safetensors(self.path / keys.HISTOGENE_WEIGHTS))
        return net.eval()

    def expression_head(self) -> nn.Linear:
        """The linear head features → panel genes (ST-Net, HisToGene)."""
        if not self.method.predicts_expression:
            raise ValueError(
                f"{self.path} is a {self.method.name} run: its head projects into an "
                "embedding space and does not predict expression. Use --probe mlp|ridge "
                "(or retrieval)."
            )
        card = self.heads_card
        head = nn.Linear(card["embed_dim"], card["n_genes"])
        head.load_state_dict(self._head_states()[IMAGE_HEAD_PREFIX])
        return head.eval()

    def retrieval_heads(self) -> tuple[MLPHead, MLPHead]:
        """Image projection head and gene encoder into the joint space (BLEEP retrieval)."""
        if self.method.predicts_expression:
            raise ValueError(
                f"{self.path} is a {self.method.name} run: its image head predicts "
                "expression and it has no gene encoder, so there is nothing to retrieve "
                "with. Evaluate its features with a probe (--probe mlp|ridge) instead."
            )
        card = self.heads_card
        states = self._head_states()
        image_head = MLPHead(card["embed_dim"], card["proj_dim"])
        gene_encoder = MLPHead(card["n_genes"], card["proj_dim"])
        image_head.load_state_dict(states[IMAGE_HEAD_PREFIX])
        gene_encoder.load_state_dict(states[GENE_ENCODER_PREFIX])
        return image_head.eval(), gene_encoder.eval()


def load_run(run_dir: str | Path) -> TrainedRun | PretrainedRun:
    """Open a finished training run, checking that it is one.

    A self-supervised pretraining run (``rankbygene pretrain``) opens too, as an
    image-encoder run with no panel and no predictor of its own, so every reader of a
    run's encoder (``extract --run``, ``predict --run``, comparisons) takes it.

    Raises:
        FileNotFoundError: not a run directory, or a run that has not finished (its
            heads card, written last, is absent), saying how far it got and naming the
            command to run.
        ValueError: a config that does not parse or names an unknown method.
    """
    run_dir = Path(run_dir)
    if is_pretraining_run(run_dir):
        return load_pretraining_run(run_dir)
    if not (run_dir / keys.RUN_CONFIG).is_file():
        raise FileNotFoundError(
            f"{run_dir} is not a training run (no {keys.RUN_CONFIG}). Train one with "
            f"`rankbygene train --data DIR --out {run_dir}`."
        )
    if not run_finished(run_dir):
        raise FileNotFoundError(
            f"{run_dir}: training did not finish ({run_progress(run_dir)}); resume it with "
            f"`rankbygene train --data DIR --out {run_dir} --resume`."
        )
    config = TrainConfig.from_yaml(run_dir / keys.RUN_CONFIG)
    return TrainedRun(run_dir, config, read_run_genes(run_dir), get_method(config.method))
