"""Contract of every registered method: it builds, trains a step, exports what it declares,
and each loss weight it declares reaches exactly its own loss term."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from rankbygene.data import read_dataset
from rankbygene.evaluation.predictors.registry import build_predictors
from rankbygene.methods import get_method, list_methods
from rankbygene.training import TrainConfig, load_run, resolve_config, train
from rankbygene.training.data import SpotTensorDataset, build_spot_table, select_training_panel
from rankbygene.training.module import AlignmentModule

METHODS = list_methods()
TINY_HISTOGENE = {"dim": 16, "depth": 1, "heads": 2, "patch_px": 8}


def _config(method: str, **kw) -> TrainConfig:
    extra = TINY_HISTOGENE if get_method(method).network == "section-transformer" else {}
    return resolve_config(
        TrainConfig(data="unused", out="unused", method=method, extra=extra, **kw)
    )


def _terms(method: str, seed: int = 0, **kw) -> dict[str, torch.Tensor]:
    """The objective's terms on fixed random inputs of the method's shape."""
    cfg = _config(method, **kw)
    objective = get_method(method).build_objective(cfg)
    gen = torch.Generator().manual_seed(seed)
    dim = 8 if get_method(method).predicts_expression else 16
    v, g, t = (torch.randn(12, dim, generator=gen) for _ in range(3))
    teacher = t if get_method(method).uses_teacher else None
    return objective(v, g, teacher, generator=torch.Generator().manual_seed(1))


def test_the_registry_holds_the_five_compared_systems() -> None:
    assert METHODS == ["bleep", "hest-ft", "histogene", "rankbygene", "stnet"]


@pytest.mark.parametrize("method", METHODS)
def test_objective_returns_named_terms_and_their_weighted_total(method: str) -> None:
    terms = _terms(method)
    assert "total" in terms and len(terms) >= 2
    assert all(torch.isfinite(v) and v.ndim == 0 for v in terms.values())
    weights = get_method(method).term_weights
    if not weights:  # one term: the total is that term
        (name,) = set(terms) - {"total"}
        torch.testing.assert_close(terms["total"], terms[name])


@pytest.mark.parametrize("method", [m for m in METHODS if get_method(m).term_weights])
def test_each_declared_weight_scales_exactly_its_own_term(method: str) -> None:
    """Changing one weight by Δ changes the total by Δ × its term and nothing else, so a
    swapped or dropped weight (λ1 given to distillation, say) fails here."""
    weights = get_method(method).term_weights
    base = _terms(method, **dict.fromkeys(weights, 1.0))
    for field, term in weights.items():
        moved = _terms(method, **{**dict.fromkeys(weights, 1.0), field: 3.5})
        expected = base["total"] + 2.5 * base[term]
        torch.testing.assert_close(moved["total"], expected, msg=f"{field} -> {term}")
        for other in set(base) - {"total"}:
            torch.testing.assert_close(moved[other], base[other])
    assert {f.name for f in dataclasses.fields(TrainConfig)} >= set(weights)


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_trains_a_step_and_exports_what_it_declares(method: str, tiny_dataset, tmp_path):
    declared = get_method(method)
    cfg = _config(method, epochs=1, batch_size=32, panel="top12", val_split="none")
    cfg = cfg.updated(
        data=str(tiny_dataset), out=str(tmp_path / method), accelerator="cpu",
        train_samples=["SYN00"],
    )  # fmt: skip
    run = load_run(train(cfg))
    assert run.method == declared and len(run.genes) == 12
    if declared.network == "image-encoder":
        assert run.encoder().embed_dim > 0
    else:
        assert run.histogene().head.out_features == 12
    if declared.predicts_expression:
        assert run.expression_head().out_features == 12
    else:
        _image_head, gene_encoder = run.retrieval_heads()
        assert gene_encoder(torch.zeros(1, 12)).shape[1] == cfg.proj_dim
    for name in declared.predictors:  # every predictor it declares can be built from the run
        (predictor,) = build_predictors(name, run=run)
        assert predictor.name == name and predictor.genes == run.genes


def test_bleep_training_moves_its_loss_away_from_uniform(tiny_dataset) -> None:
    """A few optimiser steps of the bleep method on one batch of real patches: the soft
    CLIP loss must leave ln(batch) (uniform targets and logits, nothing learnt) and fall
    well below it, through the student and the gene encoder."""
    torch.manual_seed(0)
    cfg = _config("bleep", encoder="tiny", panel="top40")
    dataset = read_dataset(tiny_dataset)
    genes = select_training_panel(dataset, ["SYN00"], "top40", None, target_sum=cfg.target_sum)
    table = build_spot_table(
        dataset, ["SYN00"], genes, target_sum=cfg.target_sum, smooth=False, preload=True
    )
    batch = SpotTensorDataset(table).__getitems__(list(range(32)))
    module = AlignmentModule(cfg, n_genes=len(genes))
    optimizer = module.configure_optimizers()
    losses = []
    for _ in range(25):
        v = module.student_embed(batch, augment=False)
        loss = module.objective(v, module.gene_encoder(batch["expr"]))["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    uniform = math.log(32)
    assert max(abs(x - uniform) for x in losses) > 0.5
    assert losses[-1] < uniform - 1.0
