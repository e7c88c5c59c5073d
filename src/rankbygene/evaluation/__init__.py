"""Evaluation of learned features: gene prediction (probes, retrieval) and slide-level tasks."""

from rankbygene.evaluation.genes import (
    GeneEvalConfig,
    GeneEvaluation,
    evaluate_genes,
    run_gene_evaluation,
    write_gene_evaluation,
)
from rankbygene.evaluation.metrics import gene_metrics, mean_std, pearson_per_gene
from rankbygene.evaluation.mil import GatedAttentionMIL, concordance_index, survival_nll_loss
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
from rankbygene.evaluation.retrieval_run import (
    RetrievalSettings,
    evaluate_retrieval,
    run_retrieval_evaluation,
)
from rankbygene.evaluation.slides import SlideEvalConfig, evaluate_slides

__all__ = [
    "GatedAttentionMIL",
    "GeneEvalConfig",
    "GeneEvaluation",
    "MLPProbe",
    "MLPProbeConfig",
    "RetrievalSettings",
    "RidgeProbeConfig",
    "SlideEvalConfig",
    "concordance_index",
    "cross_fit_mlp",
    "evaluate_genes",
    "evaluate_retrieval",
    "evaluate_slides",
    "fit_ridge_probe",
    "gene_metrics",
    "make_folds",
    "mean_std",
    "pearson_per_gene",
    "retrieval_predict",
    "run_gene_evaluation",
    "run_retrieval_evaluation",
    "select_best_epoch",
    "survival_nll_loss",
    "train_mlp_probe",
    "write_gene_evaluation",
]
