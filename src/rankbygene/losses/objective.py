"""The full RankByGene objective (Eq. 6): contrastive + ranking + distillation."""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from rankbygene.losses.checks import check_temperature
from rankbygene.losses.distillation import DISTILL_KINDS, DistillKind, distillation_loss
from rankbygene.losses.info_nce import info_nce_loss
from rankbygene.losses.ranking import (
    RANKING_VARIANTS,
    TRIPLET_MODES,
    RankingVariant,
    Triplets,
    ranking_consistency_loss,
)

TERM_CONTRASTIVE = "contrastive"
TERM_RANKING = "ranking"
TERM_DISTILLATION = "distillation"
TERM_TOTAL = "total"
TERMS: tuple[str, ...] = (TERM_CONTRASTIVE, TERM_RANKING, TERM_DISTILLATION)


class RankByGeneObjective(nn.Module):
    r"""L = L_con + λ1·L_rank + λ2·L_dist (docs/method.md §3, Eq. 6).

    Every term is always returned, so logging needs no special cases: a term whose
    weight is 0 is still computed (under ``no_grad``, so it costs no backward), and
    the distillation term is a zero tensor when no teacher features are given.

    Args:
        lambda_rank: λ1, weight of the ranking-consistency term (paper: 5).
        lambda_dist: λ2, weight of the distillation term (paper: 1).
        temperature: τ of the contrastive term (and of ``infonce`` distillation).
        symmetric: Symmetric (CLIP-style) contrastive term.
        triplets: ``"sampled"`` or ``"all"`` (ranking term).
        ranking_variant: ``"paper"`` or ``"reference-code"``.
        distill: ``"mse"``, ``"cosine"`` or ``"infonce"``.
        stop_gradient: Gene similarities as fixed targets in the ranking term.
    """

    def __init__(
        self,
        lambda_rank: float = 5.0,
        lambda_dist: float = 1.0,
        temperature: float = 0.1,
        symmetric: bool = False,
        triplets: Triplets = "sampled",
        ranking_variant: RankingVariant = "paper",
        distill: DistillKind = "mse",
        stop_gradient: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("lambda_rank", lambda_rank), ("lambda_dist", lambda_dist)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}.")
        check_temperature(temperature)
        if triplets not in TRIPLET_MODES:
            raise ValueError(f"triplets must be one of {TRIPLET_MODES}, got {triplets!r}.")
        if ranking_variant not in RANKING_VARIANTS:
            raise ValueError(
                f"ranking_variant must be one of {RANKING_VARIANTS}, got {ranking_variant!r}."
            )
        if distill not in DISTILL_KINDS:
            raise ValueError(f"distill must be one of {DISTILL_KINDS}, got {distill!r}.")
        self.lambda_rank = float(lambda_rank)
        self.lambda_dist = float(lambda_dist)
        self.temperature = temperature
        self.symmetric = symmetric
        self.triplets = triplets
        self.ranking_variant = ranking_variant
        self.distill = distill
        self.stop_gradient = stop_gradient

    def forward(
        self,
        v: torch.Tensor,
        g: torch.Tensor,
        t: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Compute every term and the weighted total.

        Args:
            v: Student image projections (strong view).
            g: Gene embeddings of the same spots.
            t: Teacher projections (weak view), or None to skip distillation.
            generator: Randomness of the sampled ranking triplets.

        Shape:
            v: (N, D); g: (N, D); t: (N, D); each output value: scalar.

        Returns:
            ``{"contrastive", "ranking", "distillation", "total"}``.

        Raises:
            FloatingPointError: naming the first non-finite term.
        """
        con = info_nce_loss(v, g, temperature=self.temperature, symmetric=self.symmetric)
        with torch.no_grad() if self.lambda_rank == 0 else nullcontext():
            rank = ranking_consistency_loss(
                v,
                g,
                triplets=self.triplets,
                generator=generator,
                stop_gradient=self.stop_gradient,
                variant=self.ranking_variant,
            )
        if t is None:
            dist = v.new_zeros(())
        else:
            with torch.no_grad() if self.lambda_dist == 0 else nullcontext():
                dist = distillation_loss(v, t, kind=self.distill, temperature=self.temperature)
        terms = {TERM_CONTRASTIVE: con, TERM_RANKING: rank, TERM_DISTILLATION: dist}
        # one device sync for the common all-finite case; locate the culprit only on failure
        if not bool(torch.isfinite(torch.stack([x.detach() for x in terms.values()])).all()):
            bad = next(name for name, x in terms.items() if not torch.isfinite(x))
            value = float(terms[bad].detach())
            raise FloatingPointError(
                f"loss term {bad!r} is not finite ({value}); check the inputs for NaN/inf "
                "features, lower the learning rate or enable gradient clipping."
            )
        total = con + self.lambda_rank * rank + self.lambda_dist * dist
        return {**terms, TERM_TOTAL: total}

    def extra_repr(self) -> str:
        """Summarise the configuration for ``print(module)``."""
        return (
            f"lambda_rank={self.lambda_rank}, lambda_dist={self.lambda_dist}, "
            f"temperature={self.temperature}, symmetric={self.symmetric}, "
            f"triplets={self.triplets!r}, ranking_variant={self.ranking_variant!r}, "
            f"distill={self.distill!r}, stop_gradient={self.stop_gradient}"
        )
