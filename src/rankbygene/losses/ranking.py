"""Cross-modal ranking consistency (RankByGene Eqs. 2–4) and rank accuracy.

Notation (docs/method.md §3): V, G are the L2-normalised image and gene embeddings of a
batch of N spots, S^v = V Vᵀ and S^g = G Gᵀ their cosine-similarity matrices. For an
anchor i and two other spots j ≠ k (both ≠ i)

    Δg = S^g_ij − S^g_ik,   Δv = S^v_ij − S^v_ik,   f(i, j, k) = sign(Δg)·(Δg − Δv),

and the loss is the mean of max(0, f) over triplets: the image gap must have the gene
gap's sign and be at least as large. A gene tie (Δg = 0) has sign 0: no penalty.
Note f(i, j, k) = f(i, k, j), so ordered and unordered pairs give the same mean.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from rankbygene.losses.checks import check_pair

Triplets = Literal["sampled", "all"]
RankingVariant = Literal["paper", "reference-code"]
TRIPLET_MODES: tuple[str, ...] = ("sampled", "all")
RANKING_VARIANTS: tuple[str, ...] = ("paper", "reference-code")


def _uniform(
    shape: tuple[int, ...], device: torch.device, generator: torch.Generator | None
) -> torch.Tensor:
    """Uniform [0, 1) draws on ``device``, reproducible under ``generator``.

    A generator lives on one device; drawing there and moving keeps a CPU generator
    usable for GPU features (the draws are tiny).
    """
    if generator is None:
        return torch.rand(shape, device=device)
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def sample_pair_permutations(
    n: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """One random permutation of the non-anchor spots per anchor (the paper's sampling).

    Row i is a uniformly random ordering π of {0..N−1} \\ {i}; the sampled triplets of
    anchor i are (i, π_t, π_{(t+1) mod (N−1)}) for t = 0…N−2. Drawn as the argsort of
    uniform noise with the anchor's own entry forced last, which is a uniform
    permutation of the other N−1 indices with a single sort and no gather.

    Args:
        n: Batch size N (≥ 2).
        generator: Source of randomness; the same seed gives the same permutations.
        device: Device of the returned indices.

    Shape:
        output: (N, N − 1) int64.
    """
    if n < 2:
        raise ValueError(f"sampling pairs needs at least 2 spots, got {n}.")
    device = torch.device("cpu") if device is None else torch.device(device)
    noise = _uniform((n, n), device, generator)
    noise.diagonal().fill_(2.0)  # above every U[0,1) draw: the anchor sorts last
    return noise.argsort(dim=1)[:, : n - 1]


def _similarities(
    image_feats: torch.Tensor, gene_feats: torch.Tensor, stop_gradient: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine-similarity matrices S^v and S^g (S^g detached when ``stop_gradient``).

    Shape:
        image_feats: (N, D_v); gene_feats: (N, D_g); outputs: (N, N) each.
    """
    v = F.normalize(image_feats, dim=1)
    sim_v = v @ v.T
    if stop_gradient:
        with torch.no_grad():
            g = F.normalize(gene_feats, dim=1)
            sim_g = g @ g.T
    else:
        g = F.normalize(gene_feats, dim=1)
        sim_g = g @ g.T
    return sim_v, sim_g


def _paper_sampled(sim_v: torch.Tensor, sim_g: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Mean hinge over the N(N−1) sampled triplets.

    Shape:
        sim_v, sim_g: (N, N); perm: (N, N − 1); output: scalar.
    """
    a_v = sim_v.gather(1, perm)  # a[i, t] = S_{i, π_t}
    a_g = sim_g.gather(1, perm)
    # a[i, t] − a[i, t+1 mod (N−1)] = S_{i,π_t} − S_{i,π_{t+1}}: the consecutive pairs
    d_v = a_v - a_v.roll(-1, dims=1)
    d_g = a_g - a_g.roll(-1, dims=1)
    return F.relu(torch.sign(d_g) * (d_g - d_v)).mean()


def _paper_all(sim_v: torch.Tensor, sim_g: torch.Tensor) -> torch.Tensor:
    """Mean hinge over all N(N−1)(N−2) triplets (i, j, k distinct), exact.

    Shape:
        sim_v, sim_g: (N, N); output: scalar. Memory O(N³).
    """
    n = sim_v.shape[0]
    d_v = sim_v[:, :, None] - sim_v[:, None, :]  # [i, j, k] = S_ij − S_ik
    d_g = sim_g[:, :, None] - sim_g[:, None, :]
    idx = torch.arange(n, device=sim_v.device)
    i, j, k = idx[:, None, None], idx[None, :, None], idx[None, None, :]
    valid = (i != j) & (i != k) & (j != k)
    hinge = F.relu(torch.sign(d_g) * (d_g - d_v))
    return torch.where(valid, hinge, torch.zeros_like(hinge)).sum() / (n * (n - 1) * (n - 2))


def _reference_code(
    sim_v: torch.Tensor, sim_g: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """The authors' published form (docs/method.md §7), for reproduction.

    Both similarity matrices are softmaxed along rows (temperature 1, diagonal kept);
    their columns are shuffled with ONE random permutation p shared by all rows and
    both modalities; each column is paired with its left neighbour by rolling:
    Δ = P[:, p] − roll(P[:, p], 1, dim=1), so Δ[i, c] = P_{i,p_c} − P_{i,p_{c−1 mod N}}.
    The loss is the mean over all N×N entries of relu(|Δv| − |Δg|). Pairs that
    include the anchor itself are kept, as in that code.

    Shape:
        sim_v, sim_g: (N, N); output: scalar.
    """
    n = sim_v.shape[0]
    perm = _uniform((n,), sim_v.device, generator).argsort()
    p_v = sim_v.softmax(dim=1)[:, perm]
    p_g = sim_g.softmax(dim=1)[:, perm]
    d_v = p_v - p_v.roll(1, dims=1)
    d_g = p_g - p_g.roll(1, dims=1)
    return F.relu(d_v.abs() - d_g.abs()).mean()


def ranking_consistency_loss(
    image_feats: torch.Tensor,
    gene_feats: torch.Tensor,
    triplets: Triplets = "sampled",
    generator: torch.Generator | None = None,
    stop_gradient: bool = True,
    variant: RankingVariant = "paper",
) -> torch.Tensor:
    r"""Cross-modal ranking consistency loss (RankByGene Eqs. 2–4).

    .. math::
        L_{rank} = \frac{1}{|T|} \sum_{(i,j,k) \in T}
            \max\big(0,\ \mathrm{sign}(\Delta g)\,(\Delta g - \Delta v)\big)

    with Δg = S^g_ij − S^g_ik and Δv = S^v_ij − S^v_ik on cosine similarities.

    Args:
        image_feats: Image embeddings v (normalised inside).
        gene_feats: Gene embeddings g (normalised inside), the ranking targets.
        triplets: ``"sampled"`` (default, the paper's acceleration): per anchor one
            random permutation π of the other N−1 spots and the cyclic consecutive
            pairs (π_t, π_{t+1}), N(N−1) triplets, an unbiased estimate of ``"all"``;
            ``"all"``: every anchor and ordered pair j ≠ k, exact, O(N³) memory.
        generator: Randomness for ``"sampled"`` and ``"reference-code"``.
        stop_gradient: Treat S^g as a fixed target (default, the paper); ``False``
            lets the ranking term train the gene encoder too.
        variant: ``"paper"`` (above) or ``"reference-code"``: the authors' code,
            relu(|Δv| − |Δg|) on row-softmaxed similarity matrices with pairs from
            rolling one shared column shuffle (see ``_reference_code``; ``triplets``
            is ignored there).

    Shape:
        image_feats: (N, D_v); gene_feats: (N, D_g); output: scalar. N ≥ 3.

    Returns:
        The scalar loss.
    """
    check_pair(image_feats, gene_feats, ("image_feats", "gene_feats"), min_n=3)
    if triplets not in TRIPLET_MODES:
        raise ValueError(f"triplets must be one of {TRIPLET_MODES}, got {triplets!r}.")
    if variant not in RANKING_VARIANTS:
        raise ValueError(f"variant must be one of {RANKING_VARIANTS}, got {variant!r}.")
    sim_v, sim_g = _similarities(image_feats, gene_feats, stop_gradient)
    if variant == "reference-code":
        return _reference_code(sim_v, sim_g, generator)
    if triplets == "all":
        return _paper_all(sim_v, sim_g)
    perm = sample_pair_permutations(sim_v.shape[0], generator, sim_v.device)
    return _paper_sampled(sim_v, sim_g, perm)


class RankingConsistencyLoss(nn.Module):
    """Module form of :func:`ranking_consistency_loss`.

    Args:
        triplets: ``"sampled"`` or ``"all"``.
        stop_gradient: Detach the gene similarities.
        variant: ``"paper"`` or ``"reference-code"``.
    """

    def __init__(
        self,
        triplets: Triplets = "sampled",
        stop_gradient: bool = True,
        variant: RankingVariant = "paper",
    ) -> None:
        super().__init__()
        if triplets not in TRIPLET_MODES:
            raise ValueError(f"triplets must be one of {TRIPLET_MODES}, got {triplets!r}.")
        if variant not in RANKING_VARIANTS:
            raise ValueError(f"variant must be one of {RANKING_VARIANTS}, got {variant!r}.")
        self.triplets = triplets
        self.stop_gradient = stop_gradient
        self.variant = variant

    def forward(
        self,
        image_feats: torch.Tensor,
        gene_feats: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Compute the loss; see :func:`ranking_consistency_loss`.

        Shape:
            image_feats: (N, D_v); gene_feats: (N, D_g); output: scalar.
        """
        return ranking_consistency_loss(
            image_feats,
            gene_feats,
            triplets=self.triplets,
            generator=generator,
            stop_gradient=self.stop_gradient,
            variant=self.variant,
        )


def _agreement(d_v: torch.Tensor, d_g: torch.Tensor) -> float:
    """Fraction of pairs whose image gap has the gene gap's sign; gene ties skipped."""
    valid = d_g != 0
    n_valid = int(valid.sum())
    if n_valid == 0:
        return math.nan
    return float(((torch.sign(d_v) == torch.sign(d_g)) & valid).sum()) / n_valid


@torch.no_grad()
def rank_accuracy(
    image_feats: torch.Tensor,
    gene_feats: torch.Tensor,
    *,
    n_draws: int = 8,
    generator: torch.Generator | None = None,
) -> float:
    """The paper's rank-accuracy estimate (§4.3), from a few random triplets.

    Each draw takes a random anchor i and two distinct other spots j, k; it is correct
    when the target with the higher gene similarity to the anchor also has the higher
    image similarity. Draws with tied gene similarities are skipped.

    Args:
        image_feats: Image embeddings (normalised inside).
        gene_feats: Gene embeddings (normalised inside).
        n_draws: Number of random triplets.
        generator: Randomness; same seed, same draws.

    Shape:
        image_feats: (N, D_v); gene_feats: (N, D_g). N ≥ 3.

    Returns:
        Fraction correct in [0, 1]; NaN if every draw was a gene tie.
    """
    check_pair(image_feats, gene_feats, ("image_feats", "gene_feats"), min_n=3)
    if n_draws < 1:
        raise ValueError(f"n_draws must be >= 1, got {n_draws}.")
    n = image_feats.shape[0]
    device = image_feats.device
    anchors = (_uniform((n_draws,), device, generator) * n).long().clamp_max(n - 1)
    noise = _uniform((n_draws, n), device, generator)
    noise.scatter_(1, anchors[:, None], 2.0)  # the anchor is never drawn as a target
    targets = noise.argsort(dim=1)[:, :2]
    sim_v, sim_g = _similarities(image_feats, gene_feats, stop_gradient=True)
    rows = anchors[:, None]
    s_v, s_g = sim_v[rows, targets], sim_g[rows, targets]
    return _agreement(s_v[:, 0] - s_v[:, 1], s_g[:, 0] - s_g[:, 1])


@torch.no_grad()
def rank_accuracy_full(
    image_feats: torch.Tensor,
    gene_feats: torch.Tensor,
    generator: torch.Generator | None = None,
) -> float:
    """Low-variance rank accuracy over every anchor and its sampled pairs.

    Uses the same N(N−1) triplets as the sampled loss
    (:func:`sample_pair_permutations`); pairs with tied gene similarity are skipped.

    Args:
        image_feats: Image embeddings (normalised inside).
        gene_feats: Gene embeddings (normalised inside).
        generator: Randomness for the permutations.

    Shape:
        image_feats: (N, D_v); gene_feats: (N, D_g). N ≥ 3.

    Returns:
        Fraction correct in [0, 1]; NaN if every pair was a gene tie.
    """
    check_pair(image_feats, gene_feats, ("image_feats", "gene_feats"), min_n=3)
    sim_v, sim_g = _similarities(image_feats, gene_feats, stop_gradient=True)
    perm = sample_pair_permutations(sim_v.shape[0], generator, sim_v.device)
    a_v, a_g = sim_v.gather(1, perm), sim_g.gather(1, perm)
    return _agreement(a_v - a_v.roll(-1, dims=1), a_g - a_g.roll(-1, dims=1))
