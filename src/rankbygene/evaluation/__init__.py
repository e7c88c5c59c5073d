"""Evaluation of learned features: gene-expression prediction metrics, probes and pipelines."""

from rankbygene.evaluation.metrics import gene_metrics, mean_std, pearson_per_gene
from rankbygene.evaluation.probes import (
    MLPProbe,
    MLPProbeConfig,
    RidgeProbeConfig,
    cross_fit_mlp,
    fit_ridge_probe,
    make_folds,
    select_best_epoch,
    train_mlp_probe,
)
from rankbygene.evaluation.retrieval import retrieval_predict

__all__ = [
    "MLPProbe",
    "MLPProbeConfig",
    "RidgeProbeConfig",
    "cross_fit_mlp",
    "fit_ridge_probe",
    "gene_metrics",
    "make_folds",
    "mean_std",
    "pearson_per_gene",
    "retrieval_predict",
    "select_best_epoch",
    "train_mlp_probe",
]
