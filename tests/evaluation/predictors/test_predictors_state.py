"""Saved predictors: every savable predictor rebuilt from its state predicts the same numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load, save
from torch import nn

from rankbygene.data import preprocess_expression, read_dataset
from rankbygene.evaluation.predictors import (
    SAVABLE,
    HeadPredictor,
    MLPProbeConfig,
    MLPProbePredictor,
    PositionPredictor,
    PredictorState,
    RetrievalPredictor,
    RidgeProbePredictor,
    SpotSet,
    predictor_from_state,
)
from rankbygene.evaluation.predictors.ridge import fit_ridge_probe
from rankbygene.evaluation.predictors.settings import RetrievalSettings, RidgeProbeConfig
from rankbygene.models import MLPHead


def _spots(n: int = 120, d: int = 10, g: int = 5, seed: int = 0) -> SpotSet:
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, d)) * 2 + 3).astype(np.float32)
    y = (x @ rng.normal(size=(d, g)) / 4 + 0.1 * rng.normal(size=(n, g))).astype(np.float32)
    return SpotSet(sample_ids=np.full(n, "S0", dtype=object), targets=y, features=x)


def _through_file(state: PredictorState) -> PredictorState:
    """What a saved predictor does: tensors through safetensors bytes, meta as is."""
    return PredictorState(load(save(state.tensors)), state.meta)


def _genes(g: int) -> list[str]:
    return [f"G{i}" for i in range(g)]


def test_mlp_probe_round_trip_predicts_the_same_numbers():
    train, test = _spots(seed=0), _spots(n=40, seed=1)
    cfg = MLPProbeConfig(hidden_dims=(16,), epochs=3, lr=1e-3, folds=3)
    fitted = MLPProbePredictor(cfg)
    fitted.fit(train, _genes(5))
    state = fitted.state()
    assert sorted(k for k in state.tensors if k.split(".")[1] != "model") == [
        "0.mean", "0.std", "1.mean", "1.std", "2.mean", "2.std",
    ]  # fmt: skip
    loaded = predictor_from_state("mlp", _through_file(state))
    assert isinstance(loaded, MLPProbePredictor) and loaded.config == cfg
    for a, b in zip(fitted.predict(test), loaded.predict(test), strict=True):
        np.testing.assert_array_equal(a, b)  # the same weights: the same numbers
    assert loaded.members() == fitted.members()  # best epochs and validation curves


def test_ridge_affine_map_equals_the_sklearn_pipeline_and_round_trips():
    train, test = _spots(n=200, d=12, g=4, seed=2), _spots(n=50, d=12, g=4, seed=3)
    cfg = RidgeProbeConfig(pca_dim=8)
    pipeline = fit_ridge_probe(train.features, train.targets, cfg)
    fitted = RidgeProbePredictor(cfg)
    fitted.fit(train, _genes(4))
    (pred,) = fitted.predict(test)
    np.testing.assert_allclose(pred, pipeline.predict(test.features), rtol=1e-5, atol=1e-5)
    state = fitted.state()
    assert (
        state.tensors["weight"].shape == (12, 4) and state.tensors["weight"].dtype == torch.float64
    )
    loaded = predictor_from_state("ridge", _through_file(state))
    np.testing.assert_array_equal(loaded.predict(test)[0], pred)
    assert (
        loaded.members()
        == fitted.members()
        == [{"fold": 0, "alpha": pytest.approx(100 / (8 * 4)), "pca_components": 8}]
    )
    wrong = _spots(n=5, d=7, seed=4)
    with pytest.raises(ValueError, match="dim 7 but the ridge probe was fitted on dim 12"):
        loaded.predict(wrong)


def test_head_round_trip_keeps_the_fitted_columns_only():
    torch.manual_seed(0)
    head = nn.Linear(10, 5)
    fitted = HeadPredictor(head, _genes(5), "/runs/stnet")
    fitted.fit(_spots(), ["G3", "G0"])
    state = fitted.state()
    assert state.meta["genes"] == ["G3", "G0"] and state.tensors["weight"].shape == (2, 10)
    loaded = predictor_from_state("head", _through_file(state))
    test = _spots(n=30, seed=5)
    np.testing.assert_array_equal(loaded.predict(test)[0], fitted.predict(test)[0])
    assert loaded.genes == ["G3", "G0"] and loaded.settings() == {"run": "/runs/stnet"}


def test_retrieval_round_trip_carries_the_reference_spots(tiny_dataset):
    torch.manual_seed(0)
    adata = read_dataset(tiny_dataset)["SYN00"].read_adata()
    genes = list(adata.var_names[:6])
    targets = preprocess_expression(adata, genes, target_sum=1e4, smooth=True)
    n = len(targets)
    rng = np.random.default_rng(6)
    train = SpotSet(
        sample_ids=np.full(n, "SYN00", dtype=object),
        targets=targets,
        features=rng.normal(size=(n, 8)).astype(np.float32),
        adatas={"SYN00": adata},
    )
    fitted = RetrievalPredictor(
        MLPHead(8, 16), MLPHead(6, 16), genes, "/runs/bleep", (1e4, True), RetrievalSettings(k=5)
    )
    fitted.fit(train, genes)
    state = fitted.state()
    assert state.tensors["reference_expression"].shape == (n, 6)
    assert state.tensors["reference_embeddings"].shape == (n, 16)
    loaded = predictor_from_state("retrieval", _through_file(state))
    test = SpotSet(np.full(7, "X"), np.zeros((7, 0)), rng.normal(size=(7, 8)).astype(np.float32))
    np.testing.assert_array_equal(loaded.predict(test)[0], fitted.predict(test)[0])
    assert loaded.members() == fitted.members() == [{"fold": 0, "k": 5}]
    with pytest.raises(RuntimeError, match="already fitted"):
        loaded.fit(train, genes)


def test_what_cannot_be_saved_or_loaded_says_so():
    assert SAVABLE == ("mlp", "ridge", "head", "retrieval")
    with pytest.raises(ValueError, match="The position predictor cannot be saved"):
        PositionPredictor().state()
    with pytest.raises(ValueError, match="Unknown saved predictor kind 'position'"):
        predictor_from_state("position", PredictorState({}, {}))
    with pytest.raises(RuntimeError, match="fit the MLP probe before saving"):
        MLPProbePredictor().state()
    fitted = RidgeProbePredictor()
    fitted.fit(_spots(), _genes(5))
    state = fitted.state()
    del state.tensors["bias"]
    with pytest.raises(ValueError, match=r"ridge predictor lacks tensor\(s\) \['bias'\]"):
        predictor_from_state("ridge", state)
