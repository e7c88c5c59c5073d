"""HisToGene: a transformer over the spots of a section (model, section data, training)."""

from rankbygene.methods.histogene.model import (
    HISTOGENE_DEFAULTS,
    HisToGeneNet,
    histogene_settings,
    section_positions,
)

__all__ = ["HISTOGENE_DEFAULTS", "HisToGeneNet", "histogene_settings", "section_positions"]
