"""Experiments: comparisons of training variants on a split, and the her2st experiment."""

from rankbygene.experiments.comparison import (
    FROZEN,
    Variant,
    ablation_variants,
    run_comparison,
    standard_variants,
    summarise_folds,
)

__all__ = [
    "FROZEN",
    "Variant",
    "ablation_variants",
    "run_comparison",
    "standard_variants",
    "summarise_folds",
]
