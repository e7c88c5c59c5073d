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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from rankbygene import __version__, keys
from rankbygene.fileio import atomic_path, read_json, write_json, write_text_atomic
from rankbygene.methods import Method, get_method
from rankbygene.methods.histogene import HisToGeneNet
from rankbygene.models import Encoder, MLPHead, load_encoder, save_encoder
from rankbygene.models.checkpoint import read_safetensors
from rankbygene.training.config import TrainConfig

__all__ = [
    "TrainedRun",
    "check_resume_panel",
    "export_encoder_run",
    "export_histogene_run",
    "load_run",
    "read_run_genes",
    "write_run_start",
]

IMAGE_HEAD_PREFIX, GENE_ENCODER_PREFIX = "image_head.", "gene_encoder."
HEADS_CARD_FIELDS = ("embed_dim", "proj_dim", "n_genes")
HISTOGENE_CARD_FIELDS = ("n_genes", "settings")
RETRAIN = "the run's files are damaged: train it again (`rankbygene train ... --overwrite`)"


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


def load_run(run_dir: str | Path) -> TrainedRun:
    """Open a finished training run, checking that it is one.

    Raises:
        FileNotFoundError: not a run directory, or a run that has not finished (its
            heads card, written last, is absent), naming the command to run.
        ValueError: a config that does not parse or names an unknown method.
    """
    run_dir = Path(run_dir)
    if not (run_dir / keys.RUN_CONFIG).is_file():
        raise FileNotFoundError(
            f"{run_dir} is not a training run (no {keys.RUN_CONFIG}). Train one with "
            f"`rankbygene train --data DIR --out {run_dir}`."
        )
    if not (run_dir / keys.RUN_HEADS_CARD).is_file():
        raise FileNotFoundError(
            f"{run_dir}: the run has not finished (no {keys.RUN_HEADS_CARD}). Run "
            f"`rankbygene train ... --out {run_dir} --resume` to completion first."
        )
    config = TrainConfig.from_yaml(run_dir / keys.RUN_CONFIG)
    return TrainedRun(run_dir, config, read_run_genes(run_dir), get_method(config.method))
