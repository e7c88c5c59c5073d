"""The ``Encoder`` wrapper and the builders of the registered backbones.

Each builder takes ``pretrained_id`` (a timm/hub id to fetch weights with, or None
for random initialisation) and extra ``timm.create_model`` keyword arguments, and
returns a backbone whose forward gives pooled (B, D) features.
"""

from __future__ import annotations

from typing import Any

import timm
import torch
from torch import nn

from rankbygene.models.tiny import TinyCNN
from rankbygene.models.transform import EncoderTransform

UNI_ARCH = "vit_large_patch16_224"
# UNI's model card: ViT-L/16 at 224 px, LayerScale init 1e-5, no classifier.
UNI_KWARGS: dict[str, Any] = {
    "img_size": 224,
    "patch_size": 16,
    "init_values": 1e-5,
    "num_classes": 0,
    "dynamic_img_size": True,
}
RESNET50_TRUNC_DIM = 1024  # channels after layer3


class Encoder(nn.Module):
    """A backbone with its identity: registry name, feature width, eval transform.

    Args:
        backbone: Module mapping normalised images to pooled features.
        name: Registry name it was built from (e.g. ``"uni"``, ``"timm/resnet18"``).
        embed_dim: Width D of the pooled features.
        transform: The eval transform the backbone expects.
        build_kwargs: Extra arguments it was built with (kept to rebuild it).
        hub_id: Hub id its pretrained weights come from, if any.
    """

    def __init__(
        self,
        backbone: nn.Module,
        name: str,
        embed_dim: int,
        transform: EncoderTransform,
        build_kwargs: dict[str, Any] | None = None,
        hub_id: str | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.name = name
        self.embed_dim = int(embed_dim)
        self.transform = transform
        self.build_kwargs = dict(build_kwargs or {})
        self.hub_id = hub_id

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features of already normalised images.

        Shape:
            x: (B, 3, H, W) float; output: (B, embed_dim).
        """
        return self.backbone(x)

    def extra_repr(self) -> str:
        """Name and width, for ``print(encoder)``."""
        return f"name={self.name!r}, embed_dim={self.embed_dim}"


def _timm(
    arch: str, pretrained_id: str | None, defaults: dict[str, Any], kwargs: dict[str, Any]
) -> nn.Module:
    """``timm.create_model`` with pooled output; user kwargs override the defaults."""
    merged = {"num_classes": 0, **defaults, **kwargs}
    return timm.create_model(pretrained_id or arch, pretrained=pretrained_id is not None, **merged)


def build_timm(arch: str, pretrained_id: str | None = None, **kwargs: Any) -> nn.Module:
    """Any timm architecture with its classifier removed."""
    return _timm(arch, pretrained_id, {}, kwargs)


def build_uni(pretrained_id: str | None = None, **kwargs: Any) -> nn.Module:
    """UNI's ViT-L/16 (1024-d class token)."""
    return _timm(UNI_ARCH, pretrained_id, UNI_KWARGS, kwargs)


def build_resnet50_trunc(pretrained_id: str | None = None, **kwargs: Any) -> nn.Module:
    """ResNet-50 cut after layer3 (HEST/CLAM convention): 1024-d after average pooling.

    timm's ResNet pools whatever ``layer4`` returns, so replacing it by an identity
    keeps timm's pooling and head logic while dropping the last stage's weights.
    """
    model = _timm("resnet50", pretrained_id, {}, kwargs)
    model.layer4 = nn.Identity()
    model.num_features = RESNET50_TRUNC_DIM
    return model


def build_densenet121(pretrained_id: str | None = None, **kwargs: Any) -> nn.Module:
    """DenseNet-121 (ST-Net's backbone), 1024-d."""
    return _timm("densenet121", pretrained_id, {}, kwargs)


def build_tiny(pretrained_id: str | None = None, **kwargs: Any) -> nn.Module:
    """The small test CNN (no pretrained weights exist)."""
    if pretrained_id is not None:
        raise ValueError("the 'tiny' encoder has no pretrained weights.")
    return TinyCNN(**kwargs)
