"""A small CNN encoder for tests and CPU runs."""

from __future__ import annotations

import itertools

import torch
from torch import nn

TINY_CHANNELS: tuple[int, ...] = (16, 32, 64, 128)


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """conv3x3 stride 2 → BN → ReLU: halves the resolution."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class TinyCNN(nn.Module):
    """Four stride-2 conv blocks (16-32-64-128 channels) and global average pooling.

    Accepts any input size (≥ 1 px; 64 px by default in the registry), ~100k
    parameters, fast on a CPU.

    Args:
        in_chans: Input channels.
        channels: Output channels of each block.

    Attributes:
        blocks: The conv blocks, in order (what ``backbone_blocks`` returns).
        num_features: Width of the pooled output.
    """

    def __init__(self, in_chans: int = 3, channels: tuple[int, ...] = TINY_CHANNELS) -> None:
        super().__init__()
        widths = (in_chans, *channels)
        self.blocks = nn.Sequential(*(_conv_block(a, b) for a, b in itertools.pairwise(widths)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = channels[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features.

        Shape:
            x: (B, C, H, W); output: (B, num_features).
        """
        return self.pool(self.blocks(x)).flatten(1)
