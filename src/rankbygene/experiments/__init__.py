"""Experiments: comparisons of training variants on a split, the demo, the her2st experiment."""

from rankbygene.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "FROZEN": "rankbygene.experiments.comparison",
        "Variant": "rankbygene.experiments.comparison",
        "ablation_variants": "rankbygene.experiments.comparison",
        "run_comparison": "rankbygene.experiments.comparison",
        "standard_variants": "rankbygene.experiments.comparison",
        "summarise_folds": "rankbygene.experiments.comparison",
        "DemoConfig": "rankbygene.experiments.settings",
        "run_demo": "rankbygene.experiments.demo",
        "Her2stExperimentConfig": "rankbygene.experiments.settings",
        "run_her2st_experiment": "rankbygene.experiments.her2st",
    },
)
