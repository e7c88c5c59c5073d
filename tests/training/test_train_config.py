"""TrainConfig: YAML round-trip, unknown keys refused, method defaults resolved."""

from __future__ import annotations

from pathlib import Path

import pytest

from rankbygene.methods import get_method, list_methods
from rankbygene.training import TrainConfig, resolve_config


def test_yaml_round_trip(tmp_path):
    cfg = TrainConfig(data="d", out="o", train_samples=["a", "b"], lambda_rank=2.0, epochs=3)
    cfg.to_yaml(tmp_path / "c.yaml")
    assert TrainConfig.from_yaml(tmp_path / "c.yaml") == cfg


def test_unknown_key_is_refused(tmp_path):
    (tmp_path / "c.yaml").write_text("lamda_rank: 3\n")
    with pytest.raises(ValueError, match="lamda_rank"):
        TrainConfig.from_yaml(tmp_path / "c.yaml")


@pytest.mark.parametrize(
    ("method", "proj_dim", "temperature"),
    [("rankbygene", 1024, 0.1), ("hest-ft", 1024, 0.1), ("bleep", 256, 1.0)],
)
def test_method_defaults(method, proj_dim, temperature):
    cfg = resolve_config(TrainConfig(data="d", out="o", method=method))
    assert (cfg.proj_dim, cfg.temperature) == (proj_dim, temperature)
    # A user's explicit value wins over the method default.
    cfg = resolve_config(TrainConfig(data="d", out="o", method=method, proj_dim=64))
    assert cfg.proj_dim == 64


def test_unknown_method_lists_choices():
    with pytest.raises(ValueError, match="bleep"):
        get_method("clip")
    assert {"rankbygene", "hest-ft", "bleep", "stnet"} <= set(list_methods())


def test_invalid_values():
    with pytest.raises(ValueError, match="batch_size"):
        resolve_config(TrainConfig(data="d", out="o", batch_size=2))
    with pytest.raises(ValueError, match="--data"):
        resolve_config(TrainConfig(out="o"))


CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load_and_resolve(path):
    cfg = resolve_config(TrainConfig.from_yaml(path).updated(data="d", out="o"))
    assert cfg.proj_dim and cfg.temperature and cfg.epochs >= 1


def test_paper_configs_hold_the_paper_settings():
    cfg = TrainConfig.from_yaml(next(p for p in CONFIGS if p.name == "paper_breast_uni.yaml"))
    paper = (cfg.encoder, cfg.lambda_rank, cfg.lambda_dist, cfg.batch_size, cfg.epochs)
    assert paper == ("uni", 5.0, 1.0, 64, 100)
    optimisation = (cfg.lr_image, cfg.lr_gene, cfg.temperature, cfg.momentum_start)
    assert optimisation == (1e-4, 1e-3, 0.1, 0.96)
