"""Gene-expression prediction from frozen features: what ``evaluate genes`` runs.

Protocol (docs/method.md §5): the predictor is fitted on the training samples' spots
and predicts the test samples' expression. A probe's panel is chosen on the training
samples only; a trained run's own predictor is scored on the run's panel
(``genes.txt``, chosen once when the run was trained), and ``results.json`` says which
(``panel_source``). Expression is normalised, log1p'd and smoothed; splits are by
patient (a test patient seen in training is refused).

- :mod:`.config`: the settings; :mod:`.inputs`: split, features, panel, targets;
  :mod:`.scoring`: metrics per member model and their spread; :mod:`.results`: the
  results dict and the one writer of ``EVAL/``.
"""

from rankbygene.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "GeneEvalConfig": "rankbygene.evaluation.genes.config",
        "EvalInputs": "rankbygene.evaluation.genes.inputs",
        "GeneEvaluation": "rankbygene.evaluation.genes.results",
        "write_gene_evaluation": "rankbygene.evaluation.genes.results",
        "evaluate_genes": "rankbygene.evaluation.genes.evaluate",
        "fit_gene_predictors": "rankbygene.evaluation.genes.evaluate",
        "FittedPredictors": "rankbygene.evaluation.genes.evaluate",
        "run_gene_evaluation": "rankbygene.evaluation.genes.evaluate",
    },
)
