"""Figures of the report from stored results (PNG via Agg): gene maps, training curves,
feature views."""

from rankbygene.report.plots.curves import (
    plot_loss_curves,
    plot_rank_accuracy,
    read_metrics,
    save_loss_curves,
    save_rank_accuracy,
)
from rankbygene.report.plots.embedding import (
    pair_similarities,
    plot_feature_tsne,
    plot_similarity_scatter,
    save_feature_tsne,
    save_similarity_scatter,
)
from rankbygene.report.plots.spatial import (
    plot_gene_maps,
    plot_spatial_expression,
    read_predictions,
    save_gene_maps,
)

__all__ = [
    "pair_similarities",
    "plot_feature_tsne",
    "plot_gene_maps",
    "plot_loss_curves",
    "plot_rank_accuracy",
    "plot_similarity_scatter",
    "plot_spatial_expression",
    "read_metrics",
    "read_predictions",
    "save_feature_tsne",
    "save_gene_maps",
    "save_loss_curves",
    "save_rank_accuracy",
    "save_similarity_scatter",
]
