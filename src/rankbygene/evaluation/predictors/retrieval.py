"""BLEEP's retrieval predictor: a spot's expression from its nearest training spots.

The run's image head projects a query spot's features (``rankbygene extract --run RUN``
output) into the joint space; its gene encoder projects the training (reference)
spots' expression on the run's panel, preprocessed as the run was trained. A query's
prediction is the (weighted) mean expression of its top-k most similar reference spots
(cosine similarity), so every prediction is a convex combination of training rows. The
panel is the run's own (``genes.txt``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rankbygene.data import preprocess_expression
from rankbygene.evaluation.predictors.base import (
    Predictor,
    PredictorState,
    SpotSet,
    check_run_features,
    require_tensors,
)
from rankbygene.evaluation.predictors.settings import RetrievalSettings, Weighting
from rankbygene.models import MLPHead
from rankbygene.training import TrainedRun

logger = logging.getLogger(__name__)

__all__ = ["RetrievalPredictor", "retrieval_predict"]

EMBED_CHUNK = 4096  # rows per forward pass of a head (bounds memory)


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


def _embed(head: torch.nn.Module, x: np.ndarray) -> torch.Tensor:
    """Project rows through a head in chunks and L2-normalise.

    Shape:
        x: (N, in_dim); returns (N, out_dim) float32.
    """
    t = torch.as_tensor(x, dtype=torch.float32)
    with torch.inference_mode():
        out = torch.cat([head(c) for c in torch.split(t, EMBED_CHUNK)])
    return F.normalize(out, dim=1)


class RetrievalPredictor(Predictor):
    """BLEEP retrieval with a run's image head and gene encoder (a single member).

    Args:
        image_head: projects image features into the joint space.
        gene_encoder: projects the reference spots' expression into it (None for a
            predictor rebuilt from its state, whose references are already embedded).
        genes: the run's panel (the gene encoder's input columns).
        source: the run (resolved path), for settings and messages.
        encoder_scale: (target_sum, smooth) of the expression the gene encoder was
            trained on.
        settings: k, weighting, temperature.
    """

    name = "retrieval"

    def __init__(
        self,
        image_head: MLPHead,
        gene_encoder: MLPHead | None,
        genes: list[str],
        source: str,
        encoder_scale: tuple[float, bool],
        settings: RetrievalSettings | None = None,
    ) -> None:
        self.config = settings or RetrievalSettings()
        if self.config.k < 1:
            raise ValueError(f"k must be >= 1; got {self.config.k}.")
        self.image_head, self.gene_encoder = image_head.eval(), gene_encoder
        self.run_genes = list(genes)
        self.source = source
        self.encoder_scale = encoder_scale
        self._reference: tuple[torch.Tensor, np.ndarray] | None = None

    @classmethod
    def from_run(
        cls, run: TrainedRun, settings: RetrievalSettings | None = None
    ) -> RetrievalPredictor:
        """The retrieval predictor of a finished run with a gene encoder (BLEEP)."""
        image_head, gene_encoder = run.retrieval_heads()
        scale = (float(run.config.target_sum), bool(run.config.smooth))
        return cls(image_head, gene_encoder, run.genes, str(run.path.resolve()), scale, settings)

    @property
    def genes(self) -> list[str]:
        return list(self.run_genes)

    def fit(self, train: SpotSet, genes: list[str]) -> None:
        """Embed the reference spots' expression, preprocessed as the run was trained."""
        if self.gene_encoder is None:
            raise RuntimeError("a loaded retrieval predictor is already fitted (no gene encoder).")
        target_sum, smooth = self.encoder_scale
        ids = list(dict.fromkeys(train.sample_ids.tolist()))  # samples in row order
        encoder_input = np.concatenate(
            [
                preprocess_expression(
                    train.adatas[s], self.genes, target_sum=target_sum, smooth=smooth, sample_id=s
                )
                for s in ids
            ]
        )
        self._reference = (_embed(self.gene_encoder, encoder_input), train.targets)
        n = len(train.targets)
        if self.config.k > n:
            logger.warning("k=%d > %d training spots: using all of them", self.config.k, n)

    def predict(self, spots: SpotSet) -> list[np.ndarray]:
        if self._reference is None:
            raise RuntimeError("fit the retrieval predictor on the training spots first.")
        features = spots.require_features(self.name)
        check_run_features(features, self.image_head.in_dim, self.source)
        ref_emb, ref_expr = self._reference
        pred = retrieval_predict(
            _embed(self.image_head, features),
            ref_emb,
            ref_expr,
            self.config.k,
            weighting=self.config.weighting,
            temperature=self.config.temperature,
        )
        return [pred.numpy()]

    def settings(self) -> dict[str, Any]:
        return {"run": self.source, **asdict(self.config)}

    def members(self) -> list[dict[str, Any]]:
        n = 0 if self._reference is None else len(self._reference[1])
        return [{"fold": 0, "k": min(self.config.k, n)}]

    def state(self) -> PredictorState:
        """The image head (``image_head.*``) and the reference spots: their gene
        embeddings (``reference_embeddings`` (R, P)) and expression on the fitted panel
        (``reference_expression`` (R, G))."""
        if self._reference is None:
            raise RuntimeError("fit the retrieval predictor before saving it.")
        ref_emb, ref_expr = self._reference
        tensors = {f"image_head.{k}": v for k, v in self.image_head.state_dict().items()}
        tensors["reference_embeddings"] = ref_emb.contiguous()
        tensors["reference_expression"] = torch.as_tensor(ref_expr, dtype=torch.float32)
        meta = {
            "config": asdict(self.config),
            "image_head": {"in_dim": self.image_head.in_dim, "out_dim": self.image_head.out_dim},
            "genes": self.genes,
            "source": self.source,
            "encoder_scale": list(self.encoder_scale),
            "members": self.members(),
        }
        return PredictorState(tensors, meta)

    @classmethod
    def from_state(cls, state: PredictorState) -> RetrievalPredictor:
        require_tensors(state, ["reference_embeddings", "reference_expression"], cls.name)
        dims = state.meta["image_head"]
        image_head = MLPHead(int(dims["in_dim"]), int(dims["out_dim"]))
        try:
            image_head.load_state_dict(state.under("image_head."))
        except RuntimeError as err:
            raise ValueError(f"The saved retrieval image head does not fit: {err}") from err
        target_sum, smooth = state.meta["encoder_scale"]
        predictor = cls(
            image_head,
            None,
            state.meta["genes"],
            state.meta["source"],
            (float(target_sum), bool(smooth)),
            RetrievalSettings(**state.meta["config"]),
        )
        expression = state.tensors["reference_expression"].numpy()
        predictor._reference = (state.tensors["reference_embeddings"], expression)
        return predictor
