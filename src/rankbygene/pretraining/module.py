"""The LightningModule of self-supervised pretraining: DINO or SimCLR on tile views.

The losses, projection heads, EMA update and momentum schedule are lightly's
(``DINOLoss``, ``DINOProjectionHead``, ``update_momentum``, ``cosine_schedule``;
``NTXentLoss``, ``SimCLRProjectionHead``). Views of one size go through the backbone
together (the two global crops in one pass, the local crops in another), as DINO's own
multi-crop wrapper does. With several devices DINO's centre is averaged across
processes and SimCLR's negatives gathered from all of them (lightly does both). DINO's
head holds a weight-normalised layer that cannot be pickled, so it needs a launching
strategy (``ddp``), not ``ddp_spawn``.
"""

from __future__ import annotations

import copy
import warnings

import lightning as L
import torch
from lightly.loss import DINOLoss, NTXentLoss
from lightly.models.modules import DINOProjectionHead, SimCLRProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import nn

from rankbygene.models import Encoder, create_encoder
from rankbygene.pretraining.config import PretrainConfig

__all__ = ["SelfSupervisedModule"]

DINO_FREEZE_LAST_LAYER = 1  # epochs the DINO head's last layer stays fixed (DINO's default)


class SelfSupervisedModule(L.LightningModule):
    """Backbone + projection head (and, for DINO, their EMA teacher) and the SSL loss.

    Args:
        config: the run's checked settings.
    """

    def __init__(self, config: PretrainConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder: Encoder = create_encoder(
            config.encoder, weights=config.weights, random_init=config.random_init
        )
        dim = self.encoder.embed_dim
        self.teacher_encoder: Encoder | None = None
        self.teacher_head: nn.Module | None = None
        self.criterion: nn.Module
        if config.method == "dino":
            head_dims = (dim, config.hidden_dim, config.bottleneck_dim, config.proj_dim)
            with warnings.catch_warnings():
                # lightly's head uses torch's older weight_norm; nothing a user can act on
                warnings.filterwarnings("ignore", message=r".*weight_norm.*deprecated.*")
                self.head: nn.Module = DINOProjectionHead(
                    *head_dims, freeze_last_layer=DINO_FREEZE_LAST_LAYER
                )
                # that weight norm cannot be deep-copied: a second head, same weights
                self.teacher_head = DINOProjectionHead(*head_dims)
            self.teacher_head.load_state_dict(self.head.state_dict())
            self.teacher_encoder = copy.deepcopy(self.encoder)
            deactivate_requires_grad(self.teacher_encoder)
            deactivate_requires_grad(self.teacher_head)
            self.criterion = DINOLoss(
                output_dim=config.proj_dim,
                warmup_teacher_temp=config.teacher_temp,
                teacher_temp=config.teacher_temp,
                student_temp=config.student_temp,
            )
        else:
            self.head = SimCLRProjectionHead(dim, config.hidden_dim, config.proj_dim)
            self.criterion = NTXentLoss(temperature=config.temperature, gather_distributed=True)
        self.save_hyperparameters({"config": config.to_dict()})

    def downstream_encoder(self) -> Encoder:
        """The backbone exported for downstream use: DINO's teacher, SimCLR's backbone."""
        return self.teacher_encoder if self.teacher_encoder is not None else self.encoder

    @staticmethod
    def _project(
        encoder: nn.Module, head: nn.Module, views: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """Head outputs of each view; views of one size share a forward pass.

        Shape:
            views: V tensors (B, 3, s_v, s_v); returns V tensors (B, proj_dim).
        """
        out: list[torch.Tensor] = []
        start = 0
        while start < len(views):
            stop = start + 1
            while stop < len(views) and views[stop].shape == views[start].shape:
                stop += 1
            x = torch.cat(views[start:stop]).contiguous(memory_format=torch.channels_last)
            out += list(head(encoder(x)).chunk(stop - start))
            start = stop
        return out

    def momentum(self) -> float:
        """The teacher's EMA momentum at this step (cosine from start to end)."""
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        return cosine_schedule(
            self.global_step, total, self.config.momentum_start, self.config.momentum_end
        )

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        """One step on a batch of views. Shape: batch is V tensors (B, 3, s, s)."""
        views = list(batch)
        if self.teacher_encoder is not None and self.teacher_head is not None:
            m = self.momentum()
            update_momentum(self.encoder, self.teacher_encoder, m)
            update_momentum(self.head, self.teacher_head, m)
            with torch.no_grad():
                teacher = self._project(self.teacher_encoder, self.teacher_head, views[:2])
            student = self._project(self.encoder, self.head, views)
            loss = self.criterion(teacher, student, teacher_temp=self.config.teacher_temp)
            self.log("momentum", m, on_step=False, on_epoch=True)
        else:
            z0, z1 = self._project(self.encoder, self.head, views[:2])
            loss = self.criterion(z0, z1)
        self.log(
            "train_loss", loss.detach(), on_step=False, on_epoch=True, prog_bar=True,
            batch_size=views[0].shape[0], sync_dist=True,
        )  # fmt: skip
        return loss

    def on_after_backward(self) -> None:
        if isinstance(self.head, DINOProjectionHead):
            self.head.cancel_last_layer_gradients(self.current_epoch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [
            p for p in (*self.encoder.parameters(), *self.head.parameters()) if p.requires_grad
        ]
        return torch.optim.AdamW(params, lr=self.config.lr, weight_decay=self.config.weight_decay)
