"""Evaluation of learned features: gene-expression prediction and slide-level tasks.

- :mod:`.genes`: ``evaluate genes`` (panel, predictors, scoring, results);
- :mod:`.predictors`: the predictors behind one interface (MLP and ridge probes, a run's
  head, BLEEP retrieval, the position baseline);
- :mod:`.slides` and :mod:`.mil`: slide classification and survival with ABMIL;
- :mod:`.metrics`: PCC/MSE/MAE per gene and their summaries.

Names are imported on first use, so ``import rankbygene.evaluation.genes.config`` (e.g.
by the command line, for its help) does not load torch.
"""

from rankbygene.lazy import lazy_exports

_EXPORTS = {
    "GeneEvalConfig": "rankbygene.evaluation.genes.config",
    "GeneEvaluation": "rankbygene.evaluation.genes.results",
    "evaluate_genes": "rankbygene.evaluation.genes.evaluate",
    "run_gene_evaluation": "rankbygene.evaluation.genes.evaluate",
    "write_gene_evaluation": "rankbygene.evaluation.genes.results",
    "MLPProbeConfig": "rankbygene.evaluation.predictors.settings",
    "RidgeProbeConfig": "rankbygene.evaluation.predictors.settings",
    "RetrievalSettings": "rankbygene.evaluation.predictors.settings",
    "PositionSettings": "rankbygene.evaluation.predictors.settings",
    "Predictor": "rankbygene.evaluation.predictors.base",
    "SpotSet": "rankbygene.evaluation.predictors.base",
    "build_predictors": "rankbygene.evaluation.predictors",
    "retrieval_predict": "rankbygene.evaluation.predictors.retrieval",
    "gene_metrics": "rankbygene.evaluation.metrics",
    "mean_std": "rankbygene.evaluation.metrics",
    "pearson_per_gene": "rankbygene.evaluation.metrics",
    "GatedAttentionMIL": "rankbygene.evaluation.mil",
    "concordance_index": "rankbygene.evaluation.mil",
    "survival_nll_loss": "rankbygene.evaluation.mil",
    "SlideEvalConfig": "rankbygene.evaluation.slides.config",
    "evaluate_slides": "rankbygene.evaluation.slides.cv",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
