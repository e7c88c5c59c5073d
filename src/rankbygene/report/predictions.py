"""The report's view of ``rankbygene predict`` outputs (a ``PRED/`` with ``predict.json``).

Per slide or section: what was predicted (tiles or spots, window, predictor), the maps
``predict`` drew (``PRED/maps/{id}_{gene}.png``: a slide's heatmap over its thumbnail; a
section's measured beside predicted), and for a section with measurements the PCC of
every predicted gene with the measured one across its spots, computed here from the
layers of ``PRED/{id}.h5ad``. The report reads these files only: it does not import
the prediction code.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np

from rankbygene import keys
from rankbygene.evaluation.metrics import pearson_per_gene
from rankbygene.report.discover import read_json
from rankbygene.report.tables import html_table

logger = logging.getLogger(__name__)

__all__ = ["MapFigure", "PredictedItem", "gene_pcc", "predicted_items", "predictor_line"]


@dataclass
class MapFigure:
    """A map PNG ``predict`` drew, with its caption."""

    title: str
    png: Path
    note: str = ""


@dataclass
class PredictedItem:
    """One predicted slide or section as the report shows it.

    Attributes:
        heading: slide or section id and what it is.
        summary: one line (escaped HTML) on tiles/spots and windows.
        table: per-gene PCC table (HTML), sections with measurements only.
        maps: the maps, in the order of the predicted genes.
        note: a warning (no tissue tile...), escaped HTML.
    """

    heading: str
    summary: str
    table: str = ""
    maps: list[MapFigure] = field(default_factory=list)
    note: str = ""


def gene_pcc(path: Path) -> dict[str, float] | None:
    """Per-gene PCC of ``predicted`` with ``target`` across a prediction file's spots
    (None without measurements; NaN for a gene constant on either side)."""
    adata = ad.read_h5ad(path)
    if keys.LAYER_TARGET not in adata.layers:
        return None
    pcc = pearson_per_gene(
        np.asarray(adata.layers[keys.LAYER_PREDICTED]), np.asarray(adata.layers[keys.LAYER_TARGET])
    )
    return dict(zip(map(str, adata.var_names), pcc.tolist(), strict=True))


def predictor_line(summary: dict[str, Any]) -> str:
    """What predicted and on which scale, as one escaped line."""
    pred = summary.get("predictor", {})
    enc = pred.get("encoder", {})
    scale = summary.get("scale", {})
    run = enc.get("source_run") or "no run"
    return html.escape(
        f"Predictor {pred.get('path', '?')} ({pred.get('probe', '?')}, "
        f"{pred.get('n_members', '?')} model(s), panel {pred.get('panel', {}).get('spec', '?')}) "
        f"on {enc.get('encoder', '?')} features ({run}; {enc.get('patch_um', '?')} µm patches). "
        f"Values: {scale.get('description', scale.get('units', '?'))}."
    )


def _pcc_table(pcc: dict[str, float]) -> str:
    finite = [v for v in pcc.values() if v == v]
    mean = sum(finite) / len(finite) if finite else float("nan")
    rows = [["<b>mean</b>", f'<span class="n">{mean:.3f}</span> over {len(finite)} genes']]
    rows += [
        [html.escape(g), "n/a (constant)" if v != v else f'<span class="n">{v:.3f}</span>']
        for g, v in sorted(pcc.items(), key=lambda kv: -kv[1] if kv[1] == kv[1] else np.inf)
    ]
    return html_table(["gene", "PCC (measured vs predicted, across spots)"], rows)


def _item(pred_dir: Path, item_id: str, entry: dict[str, Any]) -> PredictedItem:
    maps = [
        MapFigure(f"{item_id}: {gene}", pred_dir / rel)
        for gene, rel in entry.get("maps", {}).items()
    ]
    if entry.get("kind") == "slide":
        summary = html.escape(
            f"{entry.get('n_tiles', 0)} tissue tiles of {entry.get('patch_um', '?')} µm "
            f"({entry.get('tile_px', '?')} px at {entry.get('mpp', 0):.3g} µm/px) from "
            f"{entry.get('source', '?')}."
        )
        note = html.escape(entry.get("warning", ""))
        return PredictedItem(f"Slide {item_id}", summary, maps=maps, note=note)
    summary = html.escape(f"{entry.get('n_spots', 0)} spots of {entry.get('source', '?')}.")
    h5ad = pred_dir / entry.get("h5ad", f"{item_id}{keys.ST_SUFFIX}")
    pcc = gene_pcc(h5ad) if h5ad.is_file() else None
    table = _pcc_table(pcc) if pcc else ""
    note = "" if pcc else "No measurements of the predicted genes: predictions only."
    return PredictedItem(f"Section {item_id}", summary, table, maps, note)


def predicted_items(pred_dir: Path) -> list[PredictedItem]:
    """Every finished slide or section of a ``predict`` output, in id order."""
    summary = read_json(pred_dir / keys.PRED_SUMMARY) or {}
    items = []
    for item_id, entry in summary.get("items", {}).items():
        if not (pred_dir / entry.get("h5ad", "")).is_file():
            continue  # not finished
        items.append(_item(pred_dir, item_id, entry))
    return items
