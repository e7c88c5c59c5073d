"""Self-supervised pretraining: the loss falls, the encoder it exports loads wherever an
encoder is accepted, the existing-output rule, and an experiment's pretraining tiles come
only from its training sections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml
from typer.testing import CliRunner

from rankbygene import keys
from rankbygene.cli.main import app
from rankbygene.experiments.comparison import pretrained_initialisation
from rankbygene.experiments.her2st import outer_folds
from rankbygene.features import read_features
from rankbygene.models import load_encoder, weights_sha256
from rankbygene.pretraining import PretrainConfig, pretrain
from rankbygene.pretraining.artifacts import read_tile_counts
from rankbygene.training import load_run

SMALL = {  # seconds on a CPU: 32 tiles, batch 16, small heads
    # mild views (no colour change, large crops): a dozen steps show the learning; the
    # synthetic tiles differ mostly in colour, which the default jitter hides on purpose
    "min_scale": 0.8,
    "p_jitter": 0.0,
    "p_grayscale": 0.0,
    "encoder": "tiny",
    "batch_size": 16,
    "max_tiles_per_image": 16,
    "lr": 3e-3,
    "proj_dim": 64,
    "hidden_dim": 64,
    "bottleneck_dim": 16,
    "n_local_views": 2,
    "accelerator": "cpu",
}


def _losses(run) -> np.ndarray:
    return pd.read_csv(run / keys.RUN_METRICS)["train_loss"].to_numpy()


@pytest.fixture(scope="module")
def simclr_run(tiny_dataset, tmp_path_factory):
    """A SimCLR run on two samples' spot patches, made through the command line."""
    out = tmp_path_factory.mktemp("pretrain") / "simclr"
    config = out.parent / "pretrain.yaml"
    config.write_text(yaml.safe_dump({k: v for k, v in SMALL.items() if k != "encoder"}))
    args = ["pretrain", "--images", str(tiny_dataset), "--encoder", "tiny", "--out", str(out)]
    args += ["--config", str(config), "--method", "simclr", "--epochs", "6"]
    args += ["--samples", "SYN00,SYN01"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    return out


def test_simclr_loss_falls_on_dataset_patches(simclr_run):
    losses = _losses(simclr_run)
    assert len(losses) == 6 and np.isfinite(losses).all()
    assert losses[-1] < 0.6 * losses[0] and (np.diff(losses) < 0).sum() >= 4, losses
    assert read_tile_counts(simclr_run) == {"SYN00": 16, "SYN01": 16}
    metrics = pd.read_csv(simclr_run / keys.RUN_METRICS)
    assert (metrics["tiles_per_second"] > 0).all()
    assert (simclr_run / keys.RUN_CHECKPOINTS / keys.RUN_LAST_CKPT).is_file()


def _write_slide(path, seed: int, mpp: float = 2.0) -> None:
    """A white slide with a textured pink tissue ellipse, pixel size in the TIFF tags."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:400, :500]
    inside = ((xx - 250) / 200) ** 2 + ((yy - 200) / 150) ** 2 <= 1
    img = np.full((400, 500, 3), 245, dtype=np.uint8)
    nuclei = rng.random((400, 500)) < 0.05
    pink = np.array([215, 120, 175]) + rng.normal(0, 15, size=(400, 500, 3))
    pink[nuclei] = [90, 40, 140]  # purple dots: something to tell tiles apart
    img[inside] = np.clip(pink[inside], 0, 255).astype(np.uint8)
    tifffile.imwrite(
        path, img, tile=(128, 128), photometric="rgb",
        resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER",
    )  # fmt: skip


def test_dino_loss_falls_on_synthetic_slides(tmp_path):
    slides = tmp_path / "slides"
    slides.mkdir()
    _write_slide(slides / "a.tif", 0)
    _write_slide(slides / "b.tif", 1)
    config = PretrainConfig(
        images=str(slides), out=str(tmp_path / "dino"), method="dino", epochs=4,
        patch_um=64.0, **SMALL,
    )  # fmt: skip
    run = pretrain(config)
    losses = _losses(run)
    # DINO's loss is not monotone (the centre and the sharpened teacher move too): it
    # falls first, as the student learns to match the teacher
    assert losses[1:].min() < losses[0] - 0.2, losses
    assert read_tile_counts(run) == {"a": 16, "b": 16}  # tissue tiles, 16 per slide
    card = load_encoder(run / keys.RUN_ENCODER_DIR)
    assert card.name == "tiny"


def test_exported_encoder_loads_wherever_an_encoder_is_accepted(simclr_run, tiny_dataset, tmp_path):
    exported = load_encoder(simclr_run / keys.RUN_ENCODER_DIR)
    digest = weights_sha256(exported)
    # load_run opens it as an image-encoder run without a panel or predictors
    run = load_run(simclr_run)
    assert run.method.network == "image-encoder" and run.method.predictors == ()
    assert run.genes == [] and weights_sha256(run.encoder()) == digest
    # extract --run: the features record the pretrained weights
    feats = tmp_path / "feats"
    args = ["extract", "--data", str(tiny_dataset), "--run", str(simclr_run), "--out", str(feats)]
    done = CliRunner().invoke(app, [*args, "--samples", "SYN02"])
    assert done.exit_code == 0, done.output
    assert read_features(feats / "SYN02.h5").weights_sha256 == digest
    # train --weights RUN/encoder/model.safetensors starts from exactly those weights
    weights = simclr_run / keys.RUN_ENCODER_DIR / keys.ENCODER_WEIGHTS
    out = tmp_path / "train"
    args = ["train", "--data", str(tiny_dataset), "--out", str(out), "--weights", str(weights)]
    args += ["--epochs", "1", "--panel", "top20", "--batch-size", "32", "--accelerator", "cpu"]
    args += ["--val-split", "none", "--method", "hest-ft"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    from rankbygene.training.config import TrainConfig
    from rankbygene.training.module import AlignmentModule

    cfg = TrainConfig.from_yaml(out / keys.RUN_CONFIG)
    assert weights_sha256(AlignmentModule(cfg, n_genes=20).backbone) == digest


def test_an_unfinished_run_is_refused_by_load_run(simclr_run, tmp_path):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / keys.PRETRAIN_CONFIG).write_text((simclr_run / keys.PRETRAIN_CONFIG).read_text())
    with pytest.raises(FileNotFoundError, match="has not finished"):
        load_run(unfinished)


def test_existing_output_follows_the_run_rule(simclr_run, tiny_dataset, tmp_path):
    saved = PretrainConfig.from_yaml(simclr_run / keys.PRETRAIN_CONFIG)
    with pytest.raises(ValueError, match="already holds a finished pretraining run"):
        pretrain(saved)
    with pytest.raises(ValueError, match="epochs is 6 in the run but 9 now"):
        pretrain(saved.updated(resume=True, epochs=9))
    with pytest.raises(ValueError, match="other tiles"):
        pretrain(saved.updated(resume=True, samples=["SYN00", "SYN02"]))
    (tmp_path / "stranger.txt").write_text("not a run")
    with pytest.raises(ValueError, match="not a pretraining run"):
        pretrain(saved.updated(out=str(tmp_path)))


def test_a_run_killed_before_its_first_checkpoint_resumes_from_scratch(simclr_run, tmp_path):
    killed = tmp_path / "killed"
    killed.mkdir()
    saved = PretrainConfig.from_yaml(simclr_run / keys.PRETRAIN_CONFIG)
    for name in (keys.PRETRAIN_CONFIG, keys.PRETRAIN_TILES):  # what a run writes first
        (killed / name).write_text((simclr_run / name).read_text())
    with pytest.raises(ValueError, match=r"pretraining did not finish \(no checkpoint"):
        pretrain(saved.updated(out=str(killed)))
    pretrain(saved.updated(out=str(killed), resume=True, epochs=saved.epochs))
    assert load_run(killed).encoder() is not None
    assert sorted(p.name for p in (killed / keys.RUN_CHECKPOINTS).iterdir()) == [keys.RUN_LAST_CKPT]


def test_experiment_pretraining_sees_only_the_training_sections(tiny_dataset, tmp_path):
    folds, _ = outer_folds({"SYN00": "P0", "SYN01": "P1", "SYN02": "P2"})
    train_ids, test_ids = folds[0]
    assert test_ids == ["SYN00"]
    settings = PretrainConfig(method="simclr", epochs=1, **SMALL)
    run = tmp_path / "pretrain"
    weights = pretrained_initialisation(tiny_dataset, train_ids, run, settings)
    assert set(read_tile_counts(run)) == {"SYN01", "SYN02"}  # never the held-out SYN00
    assert PretrainConfig.from_yaml(run / keys.PRETRAIN_CONFIG).samples == ["SYN01", "SYN02"]
    assert weights == run / keys.RUN_ENCODER_DIR / keys.ENCODER_WEIGHTS and weights.is_file()
    # a finished run is reused, not retrained
    stamp = weights.stat().st_mtime_ns
    assert pretrained_initialisation(tiny_dataset, train_ids, run, settings) == weights
    assert weights.stat().st_mtime_ns == stamp


HER2ST = Path(__file__).resolve().parents[3] / "shared" / "data" / "her2st"


@pytest.mark.slow
@pytest.mark.skipif(not HER2ST.exists(), reason="real her2st data not beside the repository")
def test_her2st_init_pretrain_pretrains_each_fold_on_its_training_sections(tmp_path, monkeypatch):
    import rankbygene.experiments.her2st as her2st

    seen = []

    def comparison_stub(data, train_ids, test_ids, variants, *, init_weights, **kw):
        seen.append((list(train_ids), list(test_ids), init_weights))
        row = {"summary": {m: {"mean": 0.0} for m in ("pcc", "mse", "mae")}, "genes": ["G"]}
        return {"top250": {"frozen": row}}

    monkeypatch.setattr(her2st, "run_comparison", comparison_stub)
    config = her2st.Her2stExperimentConfig(
        root=HER2ST, sections=["C2", "C3", "C4"], out=tmp_path / "h", patch_px=32,
        init="pretrain", pretrain_method="simclr", pretrain_epochs=1, folds=1, ablation=False,
    )  # fmt: skip
    her2st.run_her2st_experiment(config)
    assert [(tr, te) for tr, te, _ in seen] == [(["C3", "C4"], ["C2"])]
    for train_ids, test_ids, init in seen:
        run = tmp_path / "h" / keys.EXPERIMENT_FOLDS / test_ids[0] / keys.COMPARISON_PRETRAIN
        assert sorted(read_tile_counts(run)) == train_ids  # the held-out section never seen
        assert init == run / keys.RUN_ENCODER_DIR / keys.ENCODER_WEIGHTS


@pytest.mark.slow
def test_simclr_runs_on_two_cpu_processes(tiny_dataset, tmp_path):
    config = PretrainConfig(
        images=str(tiny_dataset), out=str(tmp_path / "ddp"), method="simclr", epochs=1,
        devices=2, strategy="ddp_spawn", samples=["SYN00"], **(SMALL | {"batch_size": 8}),
    )  # fmt: skip
    metrics = pd.read_csv(pretrain(config) / keys.RUN_METRICS)
    # 16 tiles, 8 per process and step: one step sees both processes' tiles
    assert metrics["step"].tolist() == [1] and np.isfinite(metrics["train_loss"]).all()
