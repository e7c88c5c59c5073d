"""Gene panels, always chosen on the TRAINING samples only.

:func:`select_panel` picks ``topN`` (highest mean of normalised log1p expression),
``hvgN`` (highest variance of it; a plain variance, not scanpy's binned dispersion) or
the genes of a list file (:func:`read_gene_list`) present in every training sample.
Ranking normalises each spot to ``target_sum`` counts on all its genes, as
:func:`rankbygene.data.preprocessing.preprocess_expression` does for the targets, so
pass the same ``target_sum`` to both. The method is described in ``docs/method.md``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from rankbygene.data.preprocessing import normalize_log1p_columns

if TYPE_CHECKING:
    import anndata as ad

logger = logging.getLogger(__name__)

__all__ = ["PanelSelection", "read_gene_list", "select_panel"]


@dataclass(frozen=True)
class PanelSelection:
    """A gene panel chosen on training samples.

    Attributes:
        genes: the panel, in ranked order (``topN``/``hvgN``) or file order (list).
        dropped: genes of a gene-list file not present in every training sample.
        spec: the panel specification it came from.
        scores: per-gene score used for ranking (mean or variance), if any.
    """

    genes: list[str]
    dropped: list[str] = field(default_factory=list)
    spec: str = ""
    scores: dict[str, float] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.genes)


_RANKED = re.compile(r"^(top|hvg)(\d+)$", re.IGNORECASE)


def read_gene_list(path: str | Path) -> list[str]:
    """Genes of a list file: one per line, ``#`` starts a comment, blanks ignored.

    Duplicates are dropped, keeping the first occurrence.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"gene list file {path} does not exist")
    genes: dict[str, None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        gene = line.split("#", 1)[0].strip()
        if gene:
            genes.setdefault(gene, None)
    if not genes:
        raise ValueError(f"gene list file {path} holds no genes (one gene per line expected)")
    return list(genes)


def _common_genes(adatas: Sequence[ad.AnnData]) -> list[str]:
    """Genes present in every training sample, in the order of the first."""
    common = set(adatas[0].var_names)
    for a in adatas[1:]:
        common &= set(a.var_names)
    return [g for g in adatas[0].var_names if g in common]


def _pooled_moments(
    adatas: Sequence[ad.AnnData], genes: list[str], target_sum: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of normalised log expression over all training spots pooled.

    Normalisation to ``target_sum`` uses each spot's total over ALL its genes, not just
    the panel.

    Shape:
        returns two (G,) float64 arrays, G = len(genes).
    """
    total = np.zeros(len(genes))
    total_sq = np.zeros(len(genes))
    n = 0
    for a in adatas:
        logx = normalize_log1p_columns(a.X, a.var_names.get_indexer(genes), target_sum)
        total += np.asarray(logx.sum(axis=0), dtype=np.float64).reshape(-1)
        sq = logx.multiply(logx) if sp.issparse(logx) else logx * logx
        total_sq += np.asarray(sq.sum(axis=0), dtype=np.float64).reshape(-1)
        n += a.n_obs
    mean = total / max(n, 1)
    var = np.maximum(total_sq / max(n, 1) - mean**2, 0.0)
    return mean, var


def select_panel(
    adatas: Sequence[ad.AnnData],
    panel: str | Path,
    *,
    gene_list: str | Path | None = None,
    target_sum: float = 1e4,
) -> PanelSelection:
    """Choose a gene panel from the TRAINING samples only.

    Args:
        adatas: the training samples' AnnDatas (raw counts); never pass test samples.
        panel: ``"topN"`` (N highest mean normalised log1p expression), ``"hvgN"``
            (N highest variance of normalised log1p expression), or a gene-list file
            (all its genes present in every training sample).
        gene_list: optional gene-list file that restricts ``topN``/``hvgN`` to its genes.
        target_sum: counts per spot of the library-size normalisation ``topN``/``hvgN``
            rank on; use the ``target_sum`` of the targets
            (:func:`~rankbygene.data.preprocessing.preprocess_expression`).

    Returns:
        The selection, with genes of a list that are missing reported in ``dropped``
        (and logged as a warning).

    Raises:
        ValueError: bad spec, no training samples, or a list with no gene present.
    """
    if not adatas:
        raise ValueError("select_panel needs at least one training sample")
    spec = str(panel)
    common = _common_genes(adatas)
    if not common:
        raise ValueError("the training samples share no gene; check their var_names")
    match = _RANKED.match(spec) if isinstance(panel, str) else None
    if gene_list is not None and not match:
        raise ValueError(
            f"gene_list={gene_list} restricts a 'topN'/'hvgN' panel; with the panel {spec!r} "
            "pass the list file as the panel itself"
        )
    list_path = gene_list if match else Path(panel)
    if not match and not Path(panel).is_file():
        raise ValueError(
            f"panel {spec!r} is neither 'topN', 'hvgN' (e.g. 'top250', 'hvg50') nor an existing "
            "gene-list file"
        )

    candidates = common
    dropped: list[str] = []
    if list_path is not None:
        listed = read_gene_list(list_path)
        present = set(common)
        candidates = [g for g in listed if g in present]
        dropped = [g for g in listed if g not in present]
        if not candidates:
            raise ValueError(
                f"gene list file {list_path}: none of its {len(listed)} genes is present in "
                "every training sample; check the gene naming (symbols vs Ensembl ids)"
            )
        if dropped:
            logger.warning(
                "gene list %s: %d of %d genes are not present in every training sample and are "
                "dropped (e.g. %s)",
                list_path,
                len(dropped),
                len(listed),
                ", ".join(dropped[:10]),
            )
    if not match:
        return PanelSelection(genes=candidates, dropped=dropped, spec=spec)

    kind, n = match.group(1).lower(), int(match.group(2))
    if n < 1:
        raise ValueError(f"panel {spec!r}: N must be >= 1")
    mean, var = _pooled_moments(adatas, candidates, target_sum)
    score = mean if kind == "top" else var
    if n > len(candidates):
        logger.warning(
            "panel %s asks for %d genes but only %d are available; using all of them",
            spec,
            n,
            len(candidates),
        )
    order = np.argsort(-score, kind="stable")[:n]
    genes = [candidates[i] for i in order]
    return PanelSelection(
        genes=genes,
        dropped=dropped,
        spec=spec if gene_list is None else f"{spec}:{gene_list}",
        scores={candidates[i]: float(score[i]) for i in order},
    )
