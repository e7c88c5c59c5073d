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
        T = \mathrm{softmax}_{row}\!\big((S^v + S^g) / 2 / \tau\big), \quad
        L = \tfrac{1}{N} \sum_i \tfrac{1}{2}\big(
            \mathrm{CE}(\text{logits}_{i\cdot}, T_{i\cdot})
            + \mathrm{CE}(\text{logits}^\top_{i\cdot}, T^\top_{i\cdot})\big)

    with S^v = V Vᵀ, S^g = G Gᵀ and the targets T detached. BLEEP applies this to
    unnormalised projections; here V and G are L2-normalised first so the scale is
    set by τ alone and matches the other losses of the package.

    Args:
        image_feats: Image embeddings V.
        gene_feats: Gene embeddings G, row i paired with image row i.
        temperature: τ (BLEEP's default 1.0).

    Shape:
        image_feats: (N, D); gene_feats: (N, D); output: scalar.
    """
    check_pair(image_feats, gene_feats, ("image_feats", "gene_feats"))
    check_temperature(temperature)
    v = F.normalize(image_feats, dim=1)
    g = F.normalize(gene_feats, dim=1)
    logits = v @ g.T / temperature
    with torch.no_grad():
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
