"""Slide-level models and survival maths: gated-attention ABMIL, discrete-time survival.

The slide tasks of the paper (docs/method.md §5) pool a whole slide's patch features with
gated-attention multiple-instance learning (Ilse et al. 2018, as in CLAM) and then
either classify the slide or predict a discrete-time hazard (MCAT-style survival:
time cut into bins at quartiles of the uncensored times, negative log-likelihood of
the discrete hazard model, risk = minus the summed survival curve, C-index).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "GatedAttentionMIL",
    "concordance_index",
    "discretise_times",
    "risk_from_hazard_logits",
    "survival_bin_edges",
    "survival_nll_loss",
]


class GatedAttentionMIL(nn.Module):
    """Gated-attention ABMIL over one bag of instance features.

    ``h = ReLU(W x)``; attention ``a = softmax_n(w^T (tanh(V h) ⊙ sigmoid(U h)))``;
    slide embedding ``z = Σ_n a_n h_n``; outputs ``W_out z``.

    Args:
        in_dim: instance feature dimension D.
        n_outputs: classes (classification) or time bins (survival hazards).
        hidden: width of the instance embedding (CLAM "small": 512).
        attention_dim: width of the gated attention branch (CLAM: 256).
        dropout: dropout after the instance embedding and in the attention branch.
    """

    def __init__(
        self,
        in_dim: int,
        n_outputs: int,
        *,
        hidden: int = 512,
        attention_dim: int = 256,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.attention_tanh = nn.Sequential(
            nn.Linear(hidden, attention_dim), nn.Tanh(), nn.Dropout(dropout)
        )
        self.attention_gate = nn.Sequential(
            nn.Linear(hidden, attention_dim), nn.Sigmoid(), nn.Dropout(dropout)
        )
        self.attention_score = nn.Linear(attention_dim, 1)
        self.head = nn.Linear(hidden, n_outputs)

    def forward(self, bag: Tensor) -> tuple[Tensor, Tensor]:
        """Pool one bag.

        Args:
            bag: (n, D) instance features of one slide (n ≥ 1).

        Returns:
            ``(outputs, attention)``: (n_outputs,) logits and (n,) attention weights
            summing to 1.
        """
        if bag.ndim != 2 or bag.shape[0] == 0:
            raise ValueError(f"A bag must be (n ≥ 1, D); got shape {tuple(bag.shape)}.")
        h = self.embed(bag)
        scores = self.attention_score(self.attention_tanh(h) * self.attention_gate(h))
        attention = torch.softmax(scores.squeeze(-1), dim=0)
        return self.head(attention @ h), attention


def survival_bin_edges(times: np.ndarray, events: np.ndarray, n_bins: int = 4) -> np.ndarray:
    """Bin edges at quantiles of the uncensored times (MCAT), open at both ends.

    Args:
        times: (S,) follow-up times of the training slides.
        events: (S,) 1 when the event (death) was observed, 0 when censored.
        n_bins: number of time bins.

    Returns:
        (n_bins - 1,) inner edges; bin b holds times in [edge_{b-1}, edge_b).
    """
    observed = np.asarray(times, dtype=float)[np.asarray(events).astype(bool)]
    if observed.size < n_bins:
        raise ValueError(
            f"{observed.size} uncensored training cases cannot define {n_bins} time bins; "
            "use fewer bins (--bins) or more cases."
        )
    return np.quantile(observed, np.linspace(0, 1, n_bins + 1)[1:-1])


def discretise_times(times: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index (0 … len(edges)) of each time for the given inner edges."""
    return np.searchsorted(edges, np.asarray(times, dtype=float), side="right")


def survival_nll_loss(
    hazard_logits: Tensor, time_bin: Tensor, event: Tensor, *, alpha: float = 0.0
) -> Tensor:
    """Negative log-likelihood of the discrete-time hazard model (Zadeh & Schmid, MCAT).

    With hazards ``h_k = sigmoid(logit_k)`` and survival ``S_k = Π_{j≤k} (1 - h_j)``
    (``S_{-1} = 1``), an observed event in bin y contributes
    ``-log S_{y-1} - log h_y`` and a case censored in bin y contributes ``-log S_y``.
    ``alpha`` up-weights the uncensored part as in MCAT:
    ``(1 - alpha) · full + alpha · uncensored-only``.

    Args:
        hazard_logits: (B, K) logits of the per-bin hazards.
        time_bin: (B,) integer bin of each case's time.
        event: (B,) 1 for an observed event, 0 for censored.
        alpha: weight of the uncensored-only term.

    Returns:
        Scalar mean loss over the batch.
    """
    eps = 1e-7
    time_bin = time_bin.long().unsqueeze(1)
    event = event.float().unsqueeze(1)
    log_h = torch.nn.functional.logsigmoid(hazard_logits)
    log_one_minus_h = torch.nn.functional.logsigmoid(-hazard_logits)
    log_s = torch.cumsum(log_one_minus_h, dim=1)  # log S_k
    log_s_padded = torch.cat([torch.zeros_like(log_s[:, :1]), log_s], dim=1)  # log S_{k-1}
    log_s_before = log_s_padded.gather(1, time_bin)
    log_h_at = log_h.gather(1, time_bin)
    log_s_at = log_s_padded.gather(1, time_bin + 1)
    uncensored = -event * (log_s_before + log_h_at.clamp_min(np.log(eps)))
    censored = -(1 - event) * log_s_at
    loss = (1 - alpha) * (uncensored + censored) + alpha * uncensored
    return loss.mean()


def risk_from_hazard_logits(hazard_logits: Tensor) -> Tensor:
    """Risk score ``-Σ_k S_k`` (higher = earlier event) from (B, K) hazard logits → (B,)."""
    survival = torch.cumprod(torch.sigmoid(-hazard_logits), dim=1)
    return -survival.sum(dim=1)


def concordance_index(risk: np.ndarray, times: np.ndarray, events: np.ndarray) -> float:
    """Harrell's C-index of risk scores (higher risk should mean shorter time).

    Args:
        risk: (S,) predicted risk.
        times: (S,) follow-up times.
        events: (S,) 1 observed, 0 censored.

    Returns:
        Fraction of comparable pairs ordered correctly (ties in risk count ½).
    """
    # Imported here: scikit-survival costs ~1 s at import, and only survival needs it.
    from sksurv.metrics import concordance_index_censored

    events = np.asarray(events).astype(bool)
    if not events.any():
        raise ValueError("C-index needs at least one observed event in the test cases.")
    return float(
        concordance_index_censored(events, np.asarray(times, float), np.asarray(risk, float))[0]
    )
