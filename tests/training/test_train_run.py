"""End-to-end training runs on tiny synthetic data (CPU, `tiny` encoder)."""

from __future__ import annotations

import logging
import os

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch

from rankbygene import keys
from rankbygene.models import load_encoder
from rankbygene.training import TrainConfig, load_run, resolve_config, train
from rankbygene.training.module import AlignmentModule


def _config(data, out, **kw) -> TrainConfig:
    base = dict(
        data=str(data),
        out=str(out),
        encoder="tiny",
        panel="top40",
        batch_size=32,
        epochs=1,
        lr_image=1e-3,
        accelerator="cpu",
        val_split="patient",
        seed=0,
    )
    return TrainConfig(**(base | kw))


@pytest.mark.slow
def test_rankbygene_run_learns_and_writes_every_output(tiny_dataset, tmp_path):
    run = train(_config(tiny_dataset, tmp_path / "run", epochs=4))
    for name in (keys.RUN_CONFIG, keys.RUN_METRICS, keys.RUN_GENES):
        assert (run / name).is_file()
    assert (run / keys.RUN_CHECKPOINTS / keys.RUN_LAST_CKPT).is_file()
    metrics = pd.read_csv(run / keys.RUN_METRICS)
    assert list(metrics["epoch"]) == [0, 1, 2, 3]
    for term in ("contrastive", "ranking", "distillation", "total", "rank_acc_paper"):
        assert f"train_{term}" in metrics and f"val_{term}" in metrics
    # The objective falls and the image side learns the gene ranking on held-out spots.
    assert metrics["train_total"].iloc[-1] < metrics["train_total"].iloc[0]
    # The ranking term falls (its hinge gets satisfied), and rank accuracy (chance 0.5)
    # stands above chance on the held-out patient: the epoch's low-variance estimate
    # pools ~3,000 triplets (standard error ~0.009), so 0.53 is > 3 standard errors. A
    # ranking term of the wrong sign drives it below 0.5.
    ranking = metrics["train_ranking"]
    assert ranking.iloc[-1] < 0.5 * ranking.iloc[0], ranking.tolist()
    assert metrics["val_rank_acc_full"].iloc[-1] > 0.53, metrics["val_rank_acc_full"].tolist()
    # Momentum follows the cosine schedule upwards.
    assert metrics["momentum"].is_monotonic_increasing
    # The resolved config records the validation split actually used.
    saved = TrainConfig.from_yaml(run / keys.RUN_CONFIG)
    assert saved.val_samples and not set(saved.val_samples) & set(saved.train_samples)
    # Loading the run's encoder back is one call and gives the teacher backbone.
    encoder = load_run(run).encoder()
    x = torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8)
    ckpt = torch.load(run / keys.RUN_CHECKPOINTS / keys.RUN_LAST_CKPT, weights_only=False)
    module = AlignmentModule(TrainConfig(**ckpt["hyper_parameters"]["config"]), n_genes=40)
    module.load_state_dict(ckpt["state_dict"])
    module.eval()
    encoder.eval()
    with torch.no_grad():
        expected = module.downstream_backbone()(module.backbone.transform.normalize(x))
        got = encoder(encoder.transform.normalize(x))
    torch.testing.assert_close(got, expected)
    head, gene_encoder = load_run(run).retrieval_heads()
    genes = load_run(run).genes
    assert len(genes) == 40 and gene_encoder(torch.zeros(1, 40)).shape == (1, 1024)
    assert head(got).shape == (2, 1024)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "term"), [("hest-ft", "contrastive"), ("bleep", "soft_clip")])
def test_other_methods_train(tiny_dataset, tmp_path, method, term):
    run = train(_config(tiny_dataset, tmp_path / method, method=method))
    metrics = pd.read_csv(run / keys.RUN_METRICS)
    assert f"train_{term}" in metrics and np.isfinite(metrics[f"train_{term}"]).all()
    assert "train_distillation" not in metrics  # no teacher
    assert load_encoder(run / keys.RUN_ENCODER_DIR).embed_dim > 0


@pytest.mark.slow
def test_stnet_regresses_expression_without_a_gene_encoder(tiny_dataset, tmp_path):
    config = _config(tiny_dataset, tmp_path / "stnet", method="stnet", epochs=3)
    module = AlignmentModule(resolve_config(config), n_genes=40)
    assert isinstance(module.student.head, torch.nn.Linear)
    assert module.student.head.out_features == 40  # one output per panel gene
    assert not list(module.gene_encoder.parameters())
    run = train(config)
    metrics = pd.read_csv(run / keys.RUN_METRICS)
    assert metrics["train_mse"].iloc[-1] < metrics["train_mse"].iloc[0]
    assert "train_contrastive" not in metrics
    with pytest.raises(ValueError, match="nothing to retrieve"):
        load_run(run).retrieval_heads()
    assert load_run(run).encoder().embed_dim > 0


class _StopAfterFirstEpoch(L.Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = True


@pytest.mark.slow
def test_resume_reproduces_the_uninterrupted_run(tiny_dataset, tmp_path):
    full = train(_config(tiny_dataset, tmp_path / "full", epochs=2))
    cfg = _config(tiny_dataset, tmp_path / "parts", epochs=2)
    train(cfg, callbacks=[_StopAfterFirstEpoch()])  # a run stopped after epoch 0
    assert len(pd.read_csv(tmp_path / "parts" / keys.RUN_METRICS)) == 1
    resumed = train(cfg.updated(resume=True))
    a = load_run(full).encoder().state_dict()
    b = load_run(resumed).encoder().state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
    pd.testing.assert_series_equal(
        pd.read_csv(full / keys.RUN_METRICS)["train_total"],
        pd.read_csv(resumed / keys.RUN_METRICS)["train_total"],
    )


@pytest.mark.slow
def test_ddp_two_cpu_processes_use_the_gathered_batch(tiny_dataset, tmp_path):
    run = train(
        _config(tiny_dataset, tmp_path / "ddp", devices=2, strategy="ddp_spawn", batch_size=16)
    )
    metrics = pd.read_csv(run / keys.RUN_METRICS)
    assert metrics["train_global_batch"].iloc[0] == 32  # 2 processes x 16 spots
    assert (run / keys.RUN_ENCODER_DIR / keys.ENCODER_WEIGHTS).is_file()


def test_batch_larger_than_data_is_refused(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="--batch-size"):
        train(_config(tiny_dataset, tmp_path / "r", batch_size=1000))


def test_empty_training_split_is_refused(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="training split is empty"):
        train(_config(tiny_dataset, tmp_path / "r", train_samples=["SYN00"], val_samples=["SYN00"]))


def test_unknown_training_sample_is_refused(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="NOPE"):
        train(_config(tiny_dataset, tmp_path / "r", train_samples=["NOPE"]))


def test_existing_run_needs_resume(tiny_dataset, tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / keys.RUN_CONFIG).write_text("epochs: 1\n")
    with pytest.raises(ValueError, match="--resume"):
        train(_config(tiny_dataset, tmp_path / "r"))


def test_resume_with_another_panel_is_refused(tiny_dataset, tmp_path):
    out = tmp_path / "r"
    (out / keys.RUN_CHECKPOINTS).mkdir(parents=True)
    (out / keys.RUN_CHECKPOINTS / keys.RUN_LAST_CKPT).write_bytes(b"")
    (out / keys.RUN_GENES).write_text("GENE_A\nGENE_B\n")
    with pytest.raises(ValueError, match="panel"):
        train(_config(tiny_dataset, out, resume=True))


def test_nan_loss_names_the_step_and_term():
    cfg = TrainConfig(data="d", out="o", encoder="tiny", proj_dim=16, temperature=0.1)
    module = AlignmentModule(cfg, n_genes=5)
    batch = {
        "image": torch.randint(0, 255, (8, 3, 32, 32), dtype=torch.uint8),
        "expr": torch.full((8, 5), float("nan")),
    }
    with pytest.raises(FloatingPointError, match=r"step 0.*contrastive"):
        module._compute(batch, train=True)


@pytest.mark.slow
def test_bf16_mixed_precision_trains_on_cpu(tiny_dataset, tmp_path):
    run = train(_config(tiny_dataset, tmp_path / "bf16", precision="bf16-mixed"))
    metrics = pd.read_csv(run / keys.RUN_METRICS)
    assert np.isfinite(metrics["train_total"]).all()
    # Exported weights stay float32 whatever the training precision.
    encoder = load_run(run).encoder()
    assert all(p.dtype == torch.float32 for p in encoder.parameters())


def test_lightning_product_tips_are_dropped_but_device_info_kept(caplog):
    from lightning.pytorch.utilities.rank_zero import rank_zero_info

    import rankbygene.training.run  # noqa: F401  (installs the filter)

    with caplog.at_level(logging.INFO, logger="lightning.pytorch.utilities.rank_zero"):
        rank_zero_info("💡 Tip: install something")
        rank_zero_info("GPU available: False, used: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False, used: False"]


def _files(root) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mode & 0o777 for p in root.rglob("*.*")}


@pytest.mark.parametrize(
    ("keep", "kept"),
    [(None, []), (1, ["epoch000.ckpt", "epoch001.ckpt", "epoch002.ckpt"]), (2, ["epoch001.ckpt"])],
)
def test_checkpoints_kept_are_last_and_every_nth_and_hold_only_the_training_state(
    tiny_dataset, tmp_path, keep, kept
):
    """3 epochs: only last.ckpt by default, plus epochNNN.ckpt every `checkpoint_every`.
    A checkpoint is the networks and Adam's two moments, nothing more (no data, no
    arrays in the hyperparameters), and every file of the run has the same mode."""
    every = {} if keep is None else {"checkpoint_every": keep}  # None: the default
    config = _config(
        tiny_dataset, tmp_path / "run", epochs=3, proj_dim=32, val_split="none", **every
    )
    run = train(config)
    ckpts = run / keys.RUN_CHECKPOINTS
    assert sorted(p.name for p in ckpts.iterdir()) == sorted([keys.RUN_LAST_CKPT, *kept])
    assert torch.load(ckpts / keys.RUN_LAST_CKPT, weights_only=True)["epoch"] == 2
    module = AlignmentModule(resolve_config(config), n_genes=40)
    state = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    trained = sum(p.numel() * p.element_size() for p in module.parameters() if p.requires_grad)
    size = (ckpts / keys.RUN_LAST_CKPT).stat().st_size
    assert size < state + 2 * trained + 256_000, (size, state, trained)
    assert size < 5_000_000
    modes = _files(run)
    umask_mode = 0o666 & ~_current_umask()
    assert set(modes.values()) == {umask_mode}, modes


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
