"""backbone_blocks / freeze_backbone / unfreeze_last_blocks per model family."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rankbygene.models import (
    backbone_blocks,
    create_encoder,
    freeze_backbone,
    unfreeze_last_blocks,
)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _trainable_roots(enc) -> set[str]:
    return {n.split(".")[0] for n, p in enc.backbone.named_parameters() if p.requires_grad}


def test_blocks_per_family():
    tiny = create_encoder("tiny")
    assert backbone_blocks(tiny) == list(tiny.backbone.blocks)
    assert len(backbone_blocks(create_encoder("resnet50-trunc"))) == 3  # layer4 removed
    assert len(backbone_blocks(create_encoder("timm/resnet18"))) == 4
    dense = create_encoder("densenet121")
    assert backbone_blocks(dense) == [
        getattr(dense.backbone.features, f"denseblock{i}") for i in range(1, 5)
    ]
    swin = create_encoder("ctranspath", random_init=True)
    assert backbone_blocks(swin) == list(swin.backbone.layers)
    vit = create_encoder("timm/vit_tiny_patch16_224", img_size=32)
    assert len(backbone_blocks(vit)) == 12
    with pytest.raises(ValueError, match="cannot find the blocks of a Linear"):
        backbone_blocks(nn.Linear(2, 2))


def test_freeze_and_unfreeze_last_blocks_vit():
    vit = create_encoder("timm/vit_tiny_patch16_224", img_size=32)
    freeze_backbone(vit.backbone)
    assert not any(p.requires_grad for p in vit.parameters())
    unfreeze_last_blocks(vit, 2)
    trainable = {n for n, p in vit.backbone.named_parameters() if p.requires_grad}
    assert any(n.startswith("blocks.11.") for n in trainable)
    assert any(n.startswith("blocks.10.") for n in trainable)
    assert not any(n.startswith("blocks.9.") for n in trainable)
    assert "norm.weight" in trainable  # the final norm follows the last block
    assert not {"cls_token", "pos_embed", "patch_embed.proj.weight"} & trainable
    # only trainable parameters receive gradients
    vit(torch.randn(1, 3, 32, 32)).sum().backward()
    assert vit.backbone.blocks[0].attn.qkv.weight.grad is None
    assert vit.backbone.blocks[11].attn.qkv.weight.grad is not None


def test_unfreeze_last_blocks_resnet_densenet_tiny():
    res = create_encoder("timm/resnet18")
    unfreeze_last_blocks(res, 1)
    assert _trainable_roots(res) == {"layer4"}
    dense = create_encoder("densenet121")
    unfreeze_last_blocks(dense, 2)
    names = {n.split(".")[1] for n, p in dense.backbone.named_parameters() if p.requires_grad}
    assert names == {"denseblock3", "transition3", "denseblock4", "norm5"}
    tiny = create_encoder("tiny")
    unfreeze_last_blocks(tiny, 0)
    assert not any(p.requires_grad for p in tiny.parameters())
    unfreeze_last_blocks(tiny, 4)
    assert all(p.requires_grad for p in tiny.parameters())
    with pytest.raises(ValueError, match=r"k must be in \[0, 4\]"):
        unfreeze_last_blocks(tiny, 5)
