"""Gene panels (rankbygene.data.panels): chosen on training samples only, at a target_sum."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from rankbygene.data import read_gene_list, select_panel


@pytest.fixture()
def rng():
    return np.random.default_rng(0)


def _adata(counts, genes):
    return ad.AnnData(
        X=sp.csr_matrix(np.asarray(counts, dtype=np.float32)),
        var=pd.DataFrame(index=genes),
        obs=pd.DataFrame(index=[f"s{i}" for i in range(len(counts))]),
    )


@pytest.fixture()
def cohort(rng):
    """Two training samples and one test sample in which gene HOT is huge."""
    genes = ["A", "B", "C", "D", "E", "HOT"]
    means = np.array([50.0, 20.0, 5.0, 1.0, 10.0, 0.5])
    train1 = _adata(rng.poisson(means, size=(30, 6)), genes)
    train2 = _adata(rng.poisson(means, size=(20, 6)), genes)
    test_means = means.copy()
    test_means[-1] = 500.0
    test = _adata(rng.poisson(test_means, size=(25, 6)), genes)
    only_one = _adata(rng.poisson(np.r_[means, 900.0], size=(10, 7)), [*genes, "ONLY1"])
    return train1, train2, test, only_one


def _pooled_log(adatas, genes, target_sum=1e4):
    rows = []
    for a in adatas:
        x = a.X.toarray().astype(np.float64)
        lib = x.sum(1, keepdims=True)
        rows.append(np.log1p(x / lib * target_sum)[:, a.var_names.get_indexer(genes)])
    return np.concatenate(rows)


def test_top_and_hvg_panels_match_reference_on_training_only(cohort):
    train1, train2, test, _ = cohort
    panel = select_panel([train1, train2], "top3")
    pooled = _pooled_log([train1, train2], list(train1.var_names))
    expect = [train1.var_names[i] for i in np.argsort(-pooled.mean(0), kind="stable")[:3]]
    assert panel.genes == expect == ["A", "B", "E"]
    assert "HOT" not in select_panel([train1, train2], "top5").genes
    # the same call with the test sample included would pick HOT: proves it only sees training
    assert "HOT" in select_panel([train1, train2, test], "top5").genes
    hvg = select_panel([train1, train2], "hvg2")
    expect_hvg = [train1.var_names[i] for i in np.argsort(-pooled.var(0), kind="stable")[:2]]
    assert hvg.genes == expect_hvg
    np.testing.assert_allclose(hvg.scores[expect_hvg[0]], pooled.var(0).max(), rtol=1e-5)


def test_panel_uses_genes_present_in_every_training_sample(cohort):
    train1, _, _, only_one = cohort
    assert "ONLY1" in select_panel([only_one], "top1").genes
    panel = select_panel([train1, only_one], "top7")
    assert "ONLY1" not in panel.genes and len(panel.genes) == 6


def test_gene_list_panels_report_dropped_genes(cohort, tmp_path, caplog):
    train1, train2, _, _ = cohort
    path = tmp_path / "genes.txt"
    path.write_text("# breast cancer genes\nD\nNOT_THERE  # absent\n\nB\nC\nD\nMISSING2\n")
    assert read_gene_list(path) == ["D", "NOT_THERE", "B", "C", "MISSING2"]
    with caplog.at_level(logging.WARNING):
        panel = select_panel([train1, train2], path)
    assert panel.genes == ["D", "B", "C"]
    assert panel.dropped == ["NOT_THERE", "MISSING2"]
    assert "2 of 5 genes" in caplog.text and "NOT_THERE" in caplog.text
    within = select_panel([train1, train2], "top2", gene_list=path)
    assert within.genes == ["B", "C"] and within.dropped == ["NOT_THERE", "MISSING2"]
    none = tmp_path / "none.txt"
    none.write_text("X1\nX2\n")
    with pytest.raises(ValueError, match=r"none\.txt: none of its 2 genes"):
        select_panel([train1], none)
    with pytest.raises(ValueError, match="neither 'topN', 'hvgN'"):
        select_panel([train1], "best250")
    with pytest.raises(ValueError, match="at least one training sample"):
        select_panel([], "top5")


def test_top_panel_ranks_at_the_given_target_sum():
    """log1p is not linear, so the ranking depends on the normalisation target.

    STEADY is 20% of every spot; PATCHY1/PATCHY2 are 70-80% of some spots and absent
    from others. Mean log1p expression (spots of 100 counts):

    - target_sum=1e4: STEADY log1p(2000) = 7.60 > PATCHY1 5.95 > PATCHY2 5.30
    - target_sum=1:   PATCHY1 0.373 > PATCHY2 0.228 > STEADY log1p(0.2) = 0.182
    """
    adata = _adata([[80, 20, 0], [0, 20, 80], [70, 20, 10]], ["PATCHY1", "STEADY", "PATCHY2"])
    assert select_panel([adata], "top1").genes == ["STEADY"]  # default target_sum is 1e4
    assert select_panel([adata], "top2", target_sum=1e4).genes == ["STEADY", "PATCHY1"]
    assert select_panel([adata], "top1", target_sum=1).genes == ["PATCHY1"]
    assert select_panel([adata], "top2", target_sum=1).genes == ["PATCHY1", "PATCHY2"]
    for target_sum in (1, 1e4):
        panel = select_panel([adata], "top3", target_sum=target_sum)
        expect = _pooled_log([adata], panel.genes, target_sum).mean(0)
        np.testing.assert_allclose([panel.scores[g] for g in panel.genes], expect, rtol=1e-6)
