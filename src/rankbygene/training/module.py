"""The LightningModule that aligns an image encoder with a gene encoder.

One module serves every method of :mod:`rankbygene.methods`: the method decides
whether an EMA teacher exists, what the student sees and which objective is used.
Per step: augment (seeded by the global step, so a resumed run is reproducible),
encode, gather across devices with gradients (the losses see the global batch),
compute named loss terms, then update the teacher by EMA after the optimizer step.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import nn

from rankbygene.losses import rank_accuracy, rank_accuracy_full
from rankbygene.methods import get_method
from rankbygene.models import (
    BackboneWithHead,
    ColourAugment,
    MLPHead,
    TeacherStudent,
    create_encoder,
    freeze_backbone,
    strong_augment,
    unfreeze_last_blocks,
    weak_augment,
)
from rankbygene.models import cosine_momentum as cosine_momentum_schedule
from rankbygene.training.config import TrainConfig

logger = logging.getLogger(__name__)

Augment = Callable[..., torch.Tensor]


def student_augmentation(kind: str, config: TrainConfig) -> Augment | None:
    """The student's view: ``strong`` with the config's colour strengths, ``weak``, or
    None (``none``)."""
    if kind == "strong":
        return functools.partial(strong_augment, colour=ColourAugment(**config.colour_augment()))
    return {"weak": weak_augment}.get(kind)


class AlignmentModule(L.LightningModule):
    """Student (backbone + head), gene encoder, optional EMA teacher, one objective.

    Args:
        config: Resolved training config (method defaults applied).
        n_genes: Panel size G (input of the gene encoder).
    """

    def __init__(self, config: TrainConfig, n_genes: int) -> None:
        super().__init__()
        self.config = config
        self.method = get_method(config.method)
        self.n_genes = n_genes
        predicts = self.method.predicts_expression
        assert predicts or config.proj_dim is not None, "resolve the config first"
        backbone = create_encoder(
            config.encoder, weights=config.weights, random_init=config.random_init
        )
        if config.freeze_backbone:
            freeze_backbone(backbone)
        elif config.train_last_blocks is not None:
            unfreeze_last_blocks(backbone, config.train_last_blocks)
        # ST-Net-style methods regress the G genes with one linear layer; the others project.
        head = (
            nn.Linear(backbone.embed_dim, n_genes)
            if predicts
            else MLPHead(backbone.embed_dim, config.proj_dim)
        )
        # The teacher (when the method has one) is an EMA copy of backbone + head.
        self.networks: TeacherStudent | BackboneWithHead = (
            TeacherStudent(backbone, head)
            if self.method.uses_teacher
            else BackboneWithHead(backbone, head)
        )
        # Without a gene encoder the "gene side" is the expression itself.
        self.gene_encoder = nn.Identity() if predicts else MLPHead(n_genes, config.proj_dim)
        self.objective = self.method.build_objective(config)
        augment = config.student_augment or self.method.student_augment
        self.student_augment = student_augmentation(augment, config)
        self.save_hyperparameters({"config": config.to_dict(), "n_genes": n_genes})

    @property
    def student(self) -> BackboneWithHead:
        """Trained backbone + projection head."""
        nets = self.networks
        return nets.student if isinstance(nets, TeacherStudent) else nets

    @property
    def teacher(self) -> BackboneWithHead | None:
        """EMA teacher, or None for methods without one."""
        nets = self.networks
        return nets.teacher if isinstance(nets, TeacherStudent) else None

    @property
    def backbone(self) -> nn.Module:
        """The student backbone (its transform normalises the input)."""
        return self.student.backbone

    # --- encoding ----------------------------------------------------------------------
    def backbone_features(self, backbone: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """Shape: images uint8 (B, 3, H, W) -> (B, embed_dim)."""
        x = self.backbone.transform.normalize(images)
        return backbone(x.contiguous(memory_format=torch.channels_last))

    def _embed(
        self, nets: BackboneWithHead, batch: dict[str, torch.Tensor], augment: Any, stream: int
    ) -> torch.Tensor:
        if "features" in batch:  # cached features of a frozen backbone
            return nets.head(batch["features"])
        images = batch["image"]
        if augment is not None:
            images = augment(images, generator=self._step_generator(stream))
        return nets.head(self.backbone_features(nets.backbone, images))

    def student_embed(self, batch: dict[str, torch.Tensor], augment: bool) -> torch.Tensor:
        """Projected student features (strong view when training). Shape: (B, proj_dim)."""
        return self._embed(self.student, batch, self.student_augment if augment else None, 0)

    @torch.no_grad()
    def teacher_embed(self, batch: dict[str, torch.Tensor], augment: bool) -> torch.Tensor:
        """Projected teacher features (weak view when training). Shape: (B, proj_dim)."""
        assert self.teacher is not None
        return self._embed(self.teacher, batch, weak_augment if augment else None, 1)

    def downstream_backbone(self) -> nn.Module:
        """The backbone whose features are used downstream (teacher when there is one)."""
        return (self.teacher or self.student).backbone

    # --- steps -------------------------------------------------------------------------
    def _step_generator(self, stream: int) -> torch.Generator:
        """A generator fixed by (seed, global step, rank, stream): resume-reproducible."""
        seed = self.config.seed
        key = ((seed * 1_000_003 + self.global_step) * 97 + self.global_rank) * 7 + stream
        return torch.Generator(device=self.device).manual_seed(key % (2**63))

    def _gather(self, x: torch.Tensor | None) -> torch.Tensor | None:
        """All-gather across processes keeping gradients. Shape: (B, D) -> (world*B, D)."""
        if x is None or self._trainer is None or self.trainer.world_size == 1:
            return x
        return self.all_gather(x, sync_grads=True).flatten(0, 1)

    def _compute(self, batch: dict[str, torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        v = self.student_embed(batch, augment=train)
        g = self.gene_encoder(batch["expr"])
        t = self.teacher_embed(batch, augment=train) if self.teacher is not None else None
        v, g, t = self._gather(v), self._gather(g), self._gather(t)
        try:
            terms = self.objective(v, g, t, generator=self._step_generator(2))
        except FloatingPointError as err:
            raise FloatingPointError(
                f"step {self.global_step} (epoch {self.current_epoch}): {err}. Lower the "
                "learning rate, use precision 32, or check the expression for extreme values."
            ) from err
        # Rank accuracy on gene EMBEDDINGS (paper §4.3): teacher view when there is one.
        image_side = (t if t is not None else v).detach()
        gen = self._step_generator(3)
        terms["rank_acc_paper"] = torch.tensor(rank_accuracy(image_side, g.detach(), generator=gen))
        terms["rank_acc_full"] = torch.tensor(
            rank_accuracy_full(image_side, g.detach(), generator=gen)
        )
        terms["global_batch"] = torch.tensor(float(v.shape[0]))
        return terms

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.config.freeze_backbone:
            self.backbone.eval()
        terms = self._compute(batch, train=True)
        size = batch["expr"].shape[0]
        for name, value in terms.items():
            self.log(
                f"train_{name}",
                value.detach().float(),
                on_step=False,
                on_epoch=True,
                batch_size=size,
                prog_bar=name in ("total", "rank_acc_full"),
            )
        return terms["total"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        if batch["expr"].shape[0] < 3:
            return  # a triplet needs three spots
        terms = self._compute(batch, train=False)
        for name, value in terms.items():
            self.log(
                f"val_{name}",
                value.float(),
                on_epoch=True,
                batch_size=batch["expr"].shape[0],
                prog_bar=name == "rank_acc_full",
                sync_dist=True,
            )

    # --- EMA ---------------------------------------------------------------------------
    def momentum_at(self, progress_step: int, total: int) -> float:
        """EMA momentum on the cosine schedule (docs/method.md §2)."""
        return cosine_momentum_schedule(
            progress_step,
            max(total, 1),
            m0=self.config.momentum_start,
            m1=self.config.momentum_end,
        )

    def _ema_update(self, m: float) -> None:
        if isinstance(self.networks, TeacherStudent):
            self.networks.update_teacher(m)
            self.log("momentum", m, on_step=False, on_epoch=True)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.config.ema_every == "step":
            total = int(self.trainer.estimated_stepping_batches)
            self._ema_update(self.momentum_at(self.global_step, total))

    def on_train_epoch_end(self) -> None:
        if self.config.ema_every == "epoch":
            self._ema_update(self.momentum_at(self.current_epoch, self.trainer.max_epochs or 1))

    # --- optimisation ------------------------------------------------------------------
    def configure_optimizers(self) -> torch.optim.Optimizer:
        image_params = [p for p in self.student.parameters() if p.requires_grad]
        groups = [
            {"params": image_params, "lr": self.config.lr_image, "name": "image"},
            {"params": list(self.gene_encoder.parameters()), "lr": self.config.lr_gene},
        ]
        return torch.optim.Adam([g for g in groups if g["params"]])
