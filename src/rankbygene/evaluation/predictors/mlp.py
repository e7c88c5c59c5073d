"""The paper's MLP probe on frozen features, cross-fitted over k folds of the training spots.

(Over 350 lines: the probe, its k-fold cross-fit and its saved state are one unit.)

Architecture in → 1024 → 1024 → G with ReLU and dropout 0.1 (the paper does not give
the dropout rate; 0.1 is our choice), Adam lr 1e-4, 20 epochs, MSE, batch 64. The
training spots are split into k folds; on each fold the model is trained on the other
k−1 folds and the epoch with the lowest validation MSE is kept; the k kept models are
the predictor's members (their mean is the ensemble prediction). Inputs are
standardised with the statistics of the fold's training part only. Training is plain
torch on in-memory tensors with minibatches drawn by index permutation (no DataLoader:
features are small).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import GroupKFold, KFold
from torch import nn
from tqdm.auto import tqdm

from rankbygene.evaluation.predictors.base import (
    Predictor,
    PredictorState,
    SpotSet,
    require_tensors,
)
from rankbygene.evaluation.predictors.settings import FoldUnit, MLPProbeConfig

logger = logging.getLogger(__name__)

__all__ = [
    "MLPProbe",
    "MLPProbePredictor",
    "build_mlp",
    "cross_fit_mlp",
    "make_folds",
    "select_best_epoch",
    "train_mlp_probe",
]


def build_mlp(in_dim: int, out_dim: int, hidden_dims: Sequence[int], dropout: float) -> nn.Module:
    """Linear/ReLU/Dropout stack ``in → hidden… → out``.

    Shape:
        input: (B, in_dim); output: (B, out_dim).
    """
    layers: list[nn.Module] = []
    prev = in_dim
    for width in hidden_dims:
        layers += [nn.Linear(prev, width), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        prev = width
    layers.append(nn.Linear(prev, out_dim))
    return nn.Sequential(*layers)


def select_best_epoch(val_losses: Sequence[float] | np.ndarray) -> int:
    """Index of the epoch with the lowest validation loss (first one on ties; NaN ignored).

    Args:
        val_losses: one validation loss per epoch, in order.

    Returns:
        0-based epoch index.
    """
    arr = np.asarray(val_losses, dtype=np.float64)
    if arr.size == 0 or not np.isfinite(arr).any():
        raise ValueError(
            f"No finite validation loss to select an epoch from: {arr.tolist()}. "
            "Check the features for NaN/inf and lower the learning rate."
        )
    return int(np.nanargmin(np.where(np.isfinite(arr), arr, np.nan)))


@dataclass
class MLPProbe:
    """A trained MLP probe together with its input standardisation.

    Attributes:
        model: the network, holding the weights of the kept (best) epoch.
        mean: feature means of the training part, (D,).
        std: feature standard deviations of the training part, (D,).
        best_epoch: 0-based index of the kept epoch.
        train_losses: mean training MSE per epoch.
        val_losses: validation MSE per epoch (empty without validation data).
    """

    model: nn.Module
    mean: torch.Tensor
    std: torch.Tensor
    best_epoch: int
    train_losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)

    @property
    def best_val_loss(self) -> float:
        """Validation MSE of the kept epoch (NaN without validation data)."""
        return self.val_losses[self.best_epoch] if self.val_losses else float("nan")

    @torch.inference_mode()
    def predict(self, X: np.ndarray | torch.Tensor, chunk: int = 8192) -> np.ndarray:
        """Predict expression for features ``X``.

        Shape:
            X: (N, D); output: (N, G) float32.
        """
        self.model.eval()
        x = torch.as_tensor(X, dtype=torch.float32)
        outs = [
            self.model((x[i : i + chunk] - self.mean) / self.std) for i in range(0, len(x), chunk)
        ]
        return torch.cat(outs).numpy() if outs else np.zeros((0, 0), dtype=np.float32)


def _standardisation(x: torch.Tensor, enabled: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and std (std of constant features set to 1 to avoid 0/0)."""
    if not enabled:
        return torch.zeros(x.shape[1]), torch.ones(x.shape[1])
    mean = x.mean(dim=0)
    std = x.std(dim=0, unbiased=False)
    return mean, torch.where(std > 0, std, torch.ones_like(std))


@torch.inference_mode()
def _mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 8192) -> float:
    """Mean squared error over all entries, evaluated in chunks."""
    model.eval()
    total = 0.0
    for i in range(0, len(x), chunk):
        total += float(((model(x[i : i + chunk]) - y[i : i + chunk]) ** 2).sum())
    return total / max(y.numel(), 1)


def train_mlp_probe(
    X_train: np.ndarray,
    Y_train: np.ndarray,
    X_val: np.ndarray | None,
    Y_val: np.ndarray | None,
    config: MLPProbeConfig,
    *,
    seed: int | None = None,
) -> MLPProbe:
    """Train one MLP probe and keep the epoch with the lowest validation MSE.

    Without validation data the last epoch is kept.

    Args:
        X_train: training features.
        Y_train: training targets (preprocessed expression).
        X_val: validation features or None.
        Y_val: validation targets or None.
        config: probe hyper-parameters.
        seed: overrides ``config.seed`` (the cross-fit passes seed + fold).

    Returns:
        The trained probe with its loss history.

    Shape:
        X_train: (N, D); Y_train: (N, G); X_val: (M, D); Y_val: (M, G).
    """
    seed = config.seed if seed is None else seed
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # layer initialisation and dropout masks
    x = torch.as_tensor(X_train, dtype=torch.float32)
    y = torch.as_tensor(Y_train, dtype=torch.float32)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{x.shape[0]} feature rows but {y.shape[0]} expression rows.")
    mean, std = _standardisation(x, config.standardize_inputs)
    x = (x - mean) / std
    has_val = X_val is not None and Y_val is not None and len(X_val) > 0
    if has_val:
        xv = (torch.as_tensor(X_val, dtype=torch.float32) - mean) / std
        yv = torch.as_tensor(Y_val, dtype=torch.float32)

    model = build_mlp(x.shape[1], y.shape[1], config.hidden_dims, config.dropout)
    if config.init_bias_to_mean:
        # Start from the mean expression: with the paper's small learning rate and few
        # epochs, a zero-initialised output would spend them learning the offset.
        with torch.no_grad():
            model[-1].bias.copy_(y.mean(dim=0))
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    train_losses: list[float] = []
    val_losses: list[float] = []
    best_state = copy.deepcopy(model.state_dict())
    best_loss = float("inf")
    for _ in range(config.epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        running = 0.0
        for i in range(0, len(x), config.batch_size):
            idx = perm[i : i + config.batch_size]
            loss = nn.functional.mse_loss(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += float(loss.detach()) * len(idx)
        train_losses.append(running / len(x))
        if has_val:
            val_losses.append(_mse(model, xv, yv))
            # Keep a copy only on improvement (strict <: the first best epoch wins ties,
            # the same rule as select_best_epoch).
            if val_losses[-1] < best_loss:
                best_loss = val_losses[-1]
                best_state = copy.deepcopy(model.state_dict())
    if has_val:
        best_epoch = select_best_epoch(val_losses)
        model.load_state_dict(best_state)
    else:
        best_epoch = config.epochs - 1
    model.eval()
    return MLPProbe(model, mean, std, best_epoch, train_losses, val_losses)


def make_folds(
    n: int,
    k: int,
    *,
    unit: FoldUnit = "spots",
    groups: Sequence[str] | np.ndarray | None = None,
    seed: int = 0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split ``n`` training spots into k (train, validation) index folds.

    Args:
        n: number of training spots.
        k: number of folds (>= 2).
        unit: ``"spots"`` shuffles spots into folds (paper); ``"samples"`` keeps
            each group (sample id) within one fold.
        groups: group label per spot; required for ``unit="samples"``.
        seed: shuffling seed.

    Returns:
        k pairs of integer index arrays (train, validation).
    """
    if k < 2:
        raise ValueError(f"folds must be >= 2 (k-fold cross-fitting); got {k}.")
    if unit == "spots":
        if n < k:
            raise ValueError(f"{n} training spots cannot be split into {k} folds.")
        splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
        return [(tr, va) for tr, va in splitter.split(np.zeros(n))]
    if unit == "samples":
        if groups is None or len(groups) != n:
            raise ValueError("fold_unit='samples' needs one sample id per training spot.")
        n_groups = len(np.unique(np.asarray(groups)))
        if n_groups < k:
            raise ValueError(
                f"fold_unit='samples' with {k} folds needs at least {k} training samples; "
                f"got {n_groups}. Use fold_unit='spots' or fewer folds (--folds)."
            )
        splitter = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
        return [(tr, va) for tr, va in splitter.split(np.zeros(n), groups=np.asarray(groups))]
    raise ValueError(f"fold_unit must be 'spots' or 'samples'; got {unit!r}.")


def cross_fit_mlp(
    X: np.ndarray,
    Y: np.ndarray,
    config: MLPProbeConfig,
    *,
    groups: Sequence[str] | np.ndarray | None = None,
) -> list[MLPProbe]:
    """Train one MLP probe per fold of the training set (docs/method.md §5).

    Args:
        X: features of all training spots.
        Y: preprocessed expression of the same spots.
        config: probe and fold settings.
        groups: sample id per spot (needed for ``fold_unit="samples"``).

    Returns:
        One probe per fold, each holding its best-validation-epoch weights.

    Shape:
        X: (N, D); Y: (N, G).
    """
    folds = make_folds(len(X), config.folds, unit=config.fold_unit, groups=groups, seed=config.seed)
    probes = []
    for f, (tr, va) in enumerate(tqdm(folds, desc="MLP probe folds", leave=False)):
        probe = train_mlp_probe(X[tr], Y[tr], X[va], Y[va], config, seed=config.seed + f)
        logger.info(
            "fold %d/%d: best epoch %d, val MSE %.4f",
            f + 1,
            len(folds),
            probe.best_epoch + 1,
            probe.best_val_loss,
        )
        probes.append(probe)
    return probes


class MLPProbePredictor(Predictor):
    """The k fold models of :func:`cross_fit_mlp` as one predictor (one member per fold)."""

    name = "mlp"

    def __init__(self, config: MLPProbeConfig | None = None) -> None:
        self.config = config or MLPProbeConfig()
        self.probes: list[MLPProbe] = []

    def fit(self, train: SpotSet, genes: list[str]) -> None:
        features = train.require_features(self.name)
        self.probes = cross_fit_mlp(features, train.targets, self.config, groups=train.sample_ids)

    def predict(self, spots: SpotSet) -> list[np.ndarray]:
        features = spots.require_features(self.name)
        return [probe.predict(features) for probe in self.probes]

    def settings(self) -> dict[str, Any]:
        return asdict(self.config)

    def members(self) -> list[dict[str, Any]]:
        return [
            {
                "fold": i,
                "best_epoch": p.best_epoch,
                "val_mse": p.best_val_loss,
                "val_curve": p.val_losses,
            }
            for i, p in enumerate(self.probes)
        ]

    def state(self) -> PredictorState:
        """Each fold model's weights and input standardisation (``{fold}.model.*``,
        ``{fold}.mean``, ``{fold}.std``); the settings and dims rebuild the networks."""
        if not self.probes:
            raise RuntimeError("fit the MLP probe before saving it.")
        tensors: dict[str, torch.Tensor] = {}
        for i, probe in enumerate(self.probes):
            tensors |= {f"{i}.model.{k}": v for k, v in probe.model.state_dict().items()}
            tensors[f"{i}.mean"], tensors[f"{i}.std"] = probe.mean, probe.std
        first = self.probes[0].model
        meta = {
            "config": {**asdict(self.config), "hidden_dims": list(self.config.hidden_dims)},
            "in_dim": int(first[0].in_features),
            "out_dim": int(first[-1].out_features),
            "members": self.members(),
        }
        return PredictorState(tensors, meta)

    @classmethod
    def from_state(cls, state: PredictorState) -> MLPProbePredictor:
        config = MLPProbeConfig(**state.meta["config"])
        predictor = cls(config)
        for i, member in enumerate(state.meta["members"]):
            weights = state.under(f"{i}.model.")
            require_tensors(state, [f"{i}.mean", f"{i}.std"], cls.name)
            model = build_mlp(
                state.meta["in_dim"], state.meta["out_dim"], config.hidden_dims, config.dropout
            )
            try:
                model.load_state_dict(weights)
            except RuntimeError as err:  # missing, unexpected or mis-shaped tensors
                raise ValueError(
                    f"The saved MLP probe's fold {i} does not fit its recorded shape: {err}"
                ) from err
            predictor.probes.append(
                MLPProbe(
                    model.eval(),
                    state.tensors[f"{i}.mean"],
                    state.tensors[f"{i}.std"],
                    int(member["best_epoch"]),
                    val_losses=list(member.get("val_curve") or []),
                )
            )
        return predictor
