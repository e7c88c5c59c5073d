"""Settings of one gene-expression evaluation (written to ``EVAL/config.yaml``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from rankbygene.configs import config_from_mapping
from rankbygene.evaluation.predictors.settings import (
    PROBES,
    MLPProbeConfig,
    PositionSettings,
    RetrievalSettings,
    RidgeProbeConfig,
)

__all__ = ["GeneEvalConfig"]

_NESTED = {
    "mlp": MLPProbeConfig,
    "ridge": RidgeProbeConfig,
    "retrieval": RetrievalSettings,
    "position": PositionSettings,
}


@dataclass
class GeneEvalConfig:
    """Settings of one gene-expression evaluation.

    Attributes:
        panel: ``topN``, ``hvgN`` or a gene-list file (see ``data.select_panel``), chosen
            on the training samples. Ignored by a run's own predictors (``head``,
            ``retrieval``), which are scored on the run's panel (``genes.txt``).
        gene_list: optional gene-list file; with ``panel="topN"`` gives the top N
            within that list.
        probe: ``mlp`` (paper), ``ridge`` (HEST-Benchmark), ``both`` (mlp, then ridge),
            ``head`` / ``retrieval`` (a run's own predictor; needs the run) or
            ``position`` (array position only, no features).
        run: the training run whose own predictor is scored (``head``, ``retrieval``).
        mlp, ridge, retrieval, position: each predictor's settings.
        smooth: spatially smooth the expression targets (docs/method.md §1).
        target_sum: library-size normalisation target.
        split_unit: ``"patient"`` (default) refuses a test sample whose patient is in
            training; ``"section"`` allows it, for data from a single patient
            (leave-one-section-out), and the results say so.
    """

    panel: str = "top250"
    gene_list: str | None = None
    probe: str = "mlp"
    run: str | None = None
    mlp: MLPProbeConfig = field(default_factory=MLPProbeConfig)
    ridge: RidgeProbeConfig = field(default_factory=RidgeProbeConfig)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    position: PositionSettings = field(default_factory=PositionSettings)
    smooth: bool = True
    target_sum: float = 1e4
    split_unit: Literal["patient", "section"] = "patient"

    def __post_init__(self) -> None:
        for name, kind in _NESTED.items():
            value = getattr(self, name)
            if isinstance(value, Mapping):
                setattr(self, name, config_from_mapping(kind, value, f"GeneEvalConfig.{name}"))
        if self.probe not in PROBES:
            raise ValueError(f"Unknown probe {self.probe!r}; choose one of {', '.join(PROBES)}.")
        if self.run is not None and self.probe not in ("head", "retrieval"):
            raise ValueError(
                f"run={self.run} is scored only with probe head or retrieval, not {self.probe!r}."
            )
        if self.split_unit not in ("patient", "section"):
            raise ValueError(f"split_unit must be 'patient' or 'section'; got {self.split_unit!r}.")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML/JSON-ready)."""
        d = asdict(self)
        d["mlp"]["hidden_dims"] = list(self.mlp.hidden_dims)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GeneEvalConfig:
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        return config_from_mapping(cls, d, "GeneEvalConfig")
