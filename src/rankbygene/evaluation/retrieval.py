"""BLEEP's retrieval predictor: expression of a query spot from its nearest reference spots.

A query image embedding is compared with the gene embeddings of the training
(reference) spots in the joint space; the expression of the top-k most similar
reference spots is averaged, optionally weighted by similarity.
"""

from __future__ import annotations

import logging
from typing import Literal

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

__all__ = ["retrieval_predict"]

Weighting = Literal["mean", "similarity", "softmax"]


def retrieval_predict(
    query_img_emb: torch.Tensor,
    ref_gene_emb: torch.Tensor,
    ref_expr: torch.Tensor,
    k: int = 50,
    *,
    weighting: Weighting = "softmax",
    temperature: float = 0.1,
    normalize: bool = True,
    chunk_size: int = 2048,
) -> torch.Tensor:
    """Predict expression by a weighted average over the top-k reference spots.

    Args:
        query_img_emb: image embeddings of the spots to predict.
        ref_gene_emb: gene embeddings of the reference (training) spots, same space.
        ref_expr: expression of the reference spots.
        k: number of neighbours (capped at R).
        weighting: ``"mean"`` (BLEEP's plain average), ``"similarity"`` (weights
            proportional to the similarity, clamped at 0; falls back to the plain
            mean for a query whose top-k are all non-positive) or ``"softmax"``
            (softmax of similarity / ``temperature`` over the k neighbours).
        temperature: softmax temperature.
        normalize: L2-normalise both embeddings first (cosine similarity); off
            means raw dot products, as BLEEP's code.
        chunk_size: queries per block, bounding memory at ``chunk_size × R``.

    Returns:
        Predicted expression, float32 on the input device.

    Shape:
        query_img_emb: (Q, D); ref_gene_emb: (R, D); ref_expr: (R, G); output: (Q, G).
    """
    q = torch.as_tensor(query_img_emb, dtype=torch.float32)
    r = torch.as_tensor(ref_gene_emb, dtype=torch.float32)
    y = torch.as_tensor(ref_expr, dtype=torch.float32)
    if q.ndim != 2 or r.ndim != 2 or y.ndim != 2:
        raise ValueError(
            f"Expected 2-D inputs; got query {tuple(q.shape)}, reference {tuple(r.shape)}, "
            f"expression {tuple(y.shape)}."
        )
    if q.shape[1] != r.shape[1]:
        raise ValueError(
            f"Query embeddings have dim {q.shape[1]} but reference gene embeddings have "
            f"dim {r.shape[1]}: both must come from the same trained run."
        )
    if r.shape[0] != y.shape[0]:
        raise ValueError(
            f"{r.shape[0]} reference embeddings but {y.shape[0]} expression rows: "
            "pass the expression of the same reference spots, in the same order."
        )
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}.")
    if weighting not in ("mean", "similarity", "softmax"):
        raise ValueError(f"weighting must be 'mean', 'similarity' or 'softmax'; got {weighting!r}.")
    k = min(k, r.shape[0])
    if normalize:
        q = F.normalize(q, dim=1)
        r = F.normalize(r, dim=1)

    out = torch.empty(q.shape[0], y.shape[1], dtype=torch.float32, device=q.device)
    for start in range(0, q.shape[0], chunk_size):  # loop over blocks, not spots
        sim = q[start : start + chunk_size] @ r.T  # (c, R)
        top_sim, top_idx = torch.topk(sim, k, dim=1)  # (c, k)
        if weighting == "mean":
            w = torch.full_like(top_sim, 1.0 / k)
        elif weighting == "softmax":
            w = torch.softmax(top_sim / temperature, dim=1)
        else:
            w = top_sim.clamp_min(0.0)
            total = w.sum(dim=1, keepdim=True)
            w = torch.where(total > 0, w / total.clamp_min(1e-12), torch.full_like(w, 1.0 / k))
        # Scatter the k weights into a dense (c, R) row (same size as `sim`) and use
        # one matmul, instead of gathering a (c, k, G) block of neighbour expression.
        dense_w = torch.zeros_like(sim).scatter_(1, top_idx, w)
        out[start : start + chunk_size] = dense_w @ y
    return out
