"""Freezing a backbone or training only its last blocks."""

from __future__ import annotations

import logging

from torch import nn

from rankbygene.models.encoders import Encoder

logger = logging.getLogger(__name__)


def _unwrap(encoder: nn.Module) -> nn.Module:
    return encoder.backbone if isinstance(encoder, Encoder) else encoder


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def backbone_blocks(encoder: nn.Module) -> list[nn.Module]:
    """The backbone's sequential stages, input to output, per model family.

    - timm ViT (UNI) and the tiny CNN: ``blocks``;
    - timm Swin (CTransPath): ``layers`` (the four stages);
    - ResNet: ``layer1`` … ``layer4`` (stages replaced by an identity are skipped);
    - DenseNet: ``features.denseblock1`` … ``denseblock4``.

    Args:
        encoder: An :class:`Encoder` or a bare backbone.

    Raises:
        ValueError: the family is not recognised.
    """
    model = _unwrap(encoder)
    if isinstance(getattr(model, "blocks", None), nn.Sequential | nn.ModuleList):
        return list(model.blocks)
    if isinstance(getattr(model, "layers", None), nn.Sequential | nn.ModuleList):
        return list(model.layers)
    if hasattr(model, "layer1"):
        stages = [getattr(model, f"layer{i}", None) for i in range(1, 5)]
        return [s for s in stages if isinstance(s, nn.Module) and _has_params(s)]
    features = getattr(model, "features", None)
    if isinstance(features, nn.Module):
        dense = [m for n, m in features.named_children() if n.startswith("denseblock")]
        if dense:
            return dense
    raise ValueError(
        f"cannot find the blocks of a {type(model).__name__}: known families are ViT/tiny "
        "(.blocks), Swin (.layers), ResNet (.layer1-4) and DenseNet (.features.denseblockN)."
    )


def freeze_backbone(backbone: nn.Module) -> None:
    """Turn off gradients for every parameter of ``backbone``.

    Only ``requires_grad`` changes: BatchNorm statistics still update in train mode;
    the trainer puts a frozen backbone in eval mode if it wants them fixed.
    """
    backbone.requires_grad_(False)


def unfreeze_last_blocks(backbone: nn.Module, k: int) -> None:
    """Train only the last ``k`` blocks (see :func:`backbone_blocks`) and what follows.

    Everything registered from the first trainable block on stays trainable (e.g.
    ViT/Swin's final norm, DenseNet's transitions and ``norm5``); the stem, position
    embeddings and earlier blocks are frozen. ``k = 0`` freezes everything.

    Args:
        backbone: An :class:`Encoder` or a bare backbone.
        k: Number of trailing blocks to train.

    Raises:
        ValueError: ``k`` is negative or larger than the number of blocks.
    """
    blocks = backbone_blocks(backbone)
    if not 0 <= k <= len(blocks):
        raise ValueError(f"k must be in [0, {len(blocks)}] (the backbone's blocks), got {k}.")
    model = _unwrap(backbone)
    freeze_backbone(model)
    if k == 0:
        return
    first = next(blocks[-k].parameters())
    trainable = False
    n_on = 0
    # parameters come in registration order, so everything after the first trainable
    # block's first parameter belongs to that block or to later modules
    for param in model.parameters():
        trainable = trainable or param is first
        if trainable:
            param.requires_grad_(True)
            n_on += param.numel()
    logger.info("training the last %d of %d blocks (%d parameters)", k, len(blocks), n_on)
