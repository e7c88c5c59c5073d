"""Gene-image contrastive loss (RankByGene Eq. 1, InfoNCE)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rankbygene.losses.checks import check_pair, check_temperature


def info_nce_loss(
    image_feats: torch.Tensor,
    gene_feats: torch.Tensor,
    temperature: float = 0.1,
    symmetric: bool = False,
) -> torch.Tensor:
    r"""InfoNCE between paired image and gene embeddings.

    .. math::
        L_{con} = -\frac{1}{N} \sum_i \log
            \frac{\exp(s(v_i, g_i)/\tau)}{\sum_j \exp(s(v_i, g_j)/\tau)}

    with s the cosine similarity (features are L2-normalised here). The positive for
    image i is gene vector i; the other genes of the batch are the negatives.

    Args:
        image_feats: Image-side embeddings v.
        gene_feats: Gene-side embeddings g, row i paired with image row i.
        temperature: Softmax temperature τ.
        symmetric: Average the image→gene and gene→image directions (CLIP style);
            the paper uses image→gene only.

    Shape:
        image_feats: (N, D); gene_feats: (N, D); output: scalar.

    Returns:
        The mean cross-entropy.
    """
    check_pair(image_feats, gene_feats, ("image_feats", "gene_feats"))
    check_temperature(temperature)
    logits = F.normalize(image_feats, dim=1) @ F.normalize(gene_feats, dim=1).T / temperature
    target = torch.arange(logits.shape[0], device=logits.device)
    loss = F.cross_entropy(logits, target)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(logits.T, target))
    return loss


class InfoNCELoss(nn.Module):
    """Module form of :func:`info_nce_loss`.

    Args:
        temperature: Softmax temperature τ.
        symmetric: Average both directions.
    """

    def __init__(self, temperature: float = 0.1, symmetric: bool = False) -> None:
        super().__init__()
        check_temperature(temperature)
        self.temperature = temperature
        self.symmetric = symmetric

    def forward(self, image_feats: torch.Tensor, gene_feats: torch.Tensor) -> torch.Tensor:
        """Compute the loss; see :func:`info_nce_loss`.

        Shape:
            image_feats: (N, D); gene_feats: (N, D); output: scalar.
        """
        return info_nce_loss(image_feats, gene_feats, self.temperature, self.symmetric)
