"""BLEEP's soft-target CLIP loss (a compared system, docs/method.md §6)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rankbygene.losses.checks import check_pair, check_temperature


def soft_clip_loss(
    image_feats: torch.Tensor,
    gene_feats: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    r"""CLIP loss with soft targets from both modalities' self-similarities (BLEEP).

    .. math::
        \text{logits} = V G^\top / \tau, \quad
        T = \mathrm{softmax}_{row}\!\big((V V^\top + G G^\top) / 2 / \tau\big), \quad
        L = \tfrac{1}{N} \sum_i \tfrac{1}{2}\big(
            \mathrm{CE}(\text{logits}_{i\cdot}, T_{i\cdot})
            + \mathrm{CE}(\text{logits}^\top_{i\cdot}, T^\top_{i\cdot})\big)

    where each row of V and G is first standardised over its D features (mean 0,
    variance 1: a LayerNorm without affine parameters, so its norm is √D). BLEEP's
    projection heads end in that LayerNorm, and its τ = 1 is set for dot products of
    that size (order D). Unit vectors would squeeze the logits and the targets into
    [−1/τ, 1/τ]: the targets are then near uniform, the loss sits at ln N and every
    aligned configuration, collapse included, is stationary. As in BLEEP, the
    gradient flows through the targets too.

    Args:
        image_feats: Image embeddings V (the projection head's raw output).
        gene_feats: Gene embeddings G, row i paired with image row i.
        temperature: τ (BLEEP's default 1.0).

    Shape:
        image_feats: (N, D); gene_feats: (N, D); output: scalar.
    """
    check_pair(image_feats, gene_feats, ("image_feats", "gene_feats"))
    check_temperature(temperature)
    v = F.layer_norm(image_feats, image_feats.shape[1:])  # as BLEEP's head's last layer
    g = F.layer_norm(gene_feats, gene_feats.shape[1:])
    logits = v @ g.T / temperature
    targets = ((v @ v.T + g @ g.T) / 2.0 / temperature).softmax(dim=1)
    image_to_gene = F.cross_entropy(logits, targets, reduction="none")
    gene_to_image = F.cross_entropy(logits.T, targets.T, reduction="none")
    return (0.5 * (image_to_gene + gene_to_image)).mean()


class SoftCLIPLoss(nn.Module):
    """Module form of :func:`soft_clip_loss`.

    Args:
        temperature: τ.
    """

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        check_temperature(temperature)
        self.temperature = temperature

    def forward(self, image_feats: torch.Tensor, gene_feats: torch.Tensor) -> torch.Tensor:
        """Compute the loss; see :func:`soft_clip_loss`.

        Shape:
            image_feats: (N, D); gene_feats: (N, D); output: scalar.
        """
        return soft_clip_loss(image_feats, gene_feats, self.temperature)
