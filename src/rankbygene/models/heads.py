"""MLP projection head and gene encoder."""

from __future__ import annotations

import itertools

import torch
from torch import nn


class MLPHead(nn.Module):
    """Plain MLP: (Linear → ReLU [→ Dropout]) × (n_layers − 1) → Linear.

    Used both as the image projection head h_v and as the gene encoder h_g
    (docs/method.md §2: 3-layer MLPs to d = 1024). The paper describes a plain MLP, so
    there is no normalisation layer (the authors' code uses a residual MLP with
    LayerNorm, docs/method.md §7; not reproduced here).

    Args:
        in_dim: Input width.
        out_dim: Output width d.
        hidden_dim: Hidden width (default: ``out_dim``).
        n_layers: Number of linear layers (≥ 1).
        dropout: Dropout after each hidden ReLU.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 1024,
        hidden_dim: int | None = None,
        n_layers: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        hidden = out_dim if hidden_dim is None else hidden_dim
        widths = [in_dim] + [hidden] * (n_layers - 1) + [out_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(widths)):
            layers.append(nn.Linear(a, b))
            if i < n_layers - 1:
                layers.append(nn.ReLU(inplace=True))
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers)
        self.in_dim = in_dim
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project.

        Shape:
            x: (N, in_dim); output: (N, out_dim).
        """
        return self.net(x)
