"""``train(config)``: one training run from a dataset directory to a run directory.

Run directory (``keys.RUN_*``): ``config.yaml`` (resolved), ``genes.txt`` (panel),
``checkpoints/`` (every N epochs and ``last.ckpt``), ``metrics.csv`` (per epoch),
``encoder/`` (downstream backbone as safetensors + card) and ``heads.safetensors``
(image head + gene encoder, for retrieval-based prediction).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from safetensors.torch import load_file, save_file

from rankbygene import keys
from rankbygene.data import STDataset, read_dataset
from rankbygene.fileio import atomic_path, write_text_atomic
from rankbygene.methods import get_method
from rankbygene.models import MLPHead, load_encoder, save_encoder
from rankbygene.training.callbacks import EpochMetricsCSV
from rankbygene.training.config import TrainConfig
from rankbygene.training.data import (
    SpotDataModule,
    SpotTensorDataset,
    build_spot_table,
    choose_validation,
    select_training_panel,
)
from rankbygene.training.module import AlignmentModule

logger = logging.getLogger(__name__)


class _DropLightningAdverts(logging.Filter):
    """Drop Lightning's product tips ("💡 Tip: ...") from every run's console output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("💡")


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropLightningAdverts())

HEADS_FILE = "heads.safetensors"
HEADS_CARD = "heads.json"
_IMAGE_HEAD, _GENE_ENCODER = "image_head.", "gene_encoder."  # tensor name prefixes


def resolve_config(config: TrainConfig) -> TrainConfig:
    """Apply the method's defaults to unset fields and validate the rest."""
    method = get_method(config.method)
    values = {k: v for k, v in method.defaults.items() if getattr(config, k) is None}
    config = config.updated(**values)
    if not config.data:
        raise ValueError("No dataset given: pass --data DIR (a HEST-layout directory).")
    if not config.out:
        raise ValueError("No run directory given: pass --out RUN.")
    if config.epochs < 1:
        raise ValueError(f"epochs must be ≥ 1, got {config.epochs}.")
    if config.batch_size < 3:
        raise ValueError(
            f"batch_size must be ≥ 3 (a triplet needs 3 spots), got {config.batch_size}."
        )
    return config


def _check_resume_panel(out: Path, genes: list[str]) -> None:
    saved = (out / keys.RUN_GENES).read_text().split()
    if saved != genes:
        raise ValueError(
            f"{out / keys.RUN_GENES}: the run was trained on {len(saved)} genes but the data now "
            f"gives a panel of {len(genes)} ({len(set(saved) ^ set(genes))} differ). Resume with "
            "the same --data, --train-samples and --panel, or start a new --out."
        )


def _cache_features(module: AlignmentModule, ds: SpotTensorDataset, batch: int) -> torch.Tensor:
    """Backbone features of every spot, once (frozen backbone). Shape: (N, embed_dim)."""
    feats = []
    module.backbone.eval()
    with torch.inference_mode():
        for start in range(0, len(ds), batch):
            idx = list(range(start, min(start + batch, len(ds))))
            images = ds.__getitems__(idx)["image"]
            feats.append(module.backbone_features(module.backbone, images))
    return torch.cat(feats).clone()


def _build_spot_training(
    config: TrainConfig,
    dataset: STDataset,
    fit_ids: list[str],
    val_ids: list[str],
    genes: list[str],
) -> tuple[AlignmentModule, SpotDataModule, int]:
    """Module, spot-batch data module and number of training spots of an encoder run."""
    common = {"target_sum": config.target_sum, "smooth": config.smooth, "preload": config.preload}
    train_table = build_spot_table(dataset, fit_ids, genes, **common)
    if len(train_table) < config.batch_size:
        raise ValueError(
            f"batch size {config.batch_size} is larger than the {len(train_table)} training "
            f"spots of {fit_ids}; pass --batch-size {len(train_table)} or fewer."
        )
    val_table = build_spot_table(dataset, val_ids, genes, **common) if val_ids else None
    module = AlignmentModule(config, n_genes=len(genes))
    train_ds = SpotTensorDataset(train_table, dataset)
    val_ds = SpotTensorDataset(val_table, dataset) if val_table is not None else None
    if config.freeze_backbone and config.cache_frozen_features:
        # Frozen backbone: its features never change, so compute them once.
        train_ds = SpotTensorDataset(train_table, features=_cache_features(module, train_ds, 128))
        if val_ds is not None and val_table is not None:
            val_ds = SpotTensorDataset(val_table, features=_cache_features(module, val_ds, 128))
    datamodule = SpotDataModule(
        train_ds, val_ds, config.batch_size, config.num_workers, config.seed
    )
    return module, datamodule, len(train_table)


def train(config: TrainConfig, callbacks: list[L.Callback] | None = None) -> Path:
    """Train one method and export its encoder. Returns the run directory.

    Args:
        config: The run's settings; method defaults fill unset fields.
        callbacks: Extra Lightning callbacks (early stopping, loggers' hooks...).

    Raises:
        ValueError: empty training split, batch larger than the data, a panel that
            differs from the run being resumed, unknown samples.
    """
    config = resolve_config(config)
    L.seed_everything(config.seed, workers=True, verbose=False)
    out = Path(config.out)
    dataset: STDataset = read_dataset(config.data)
    train_ids = list(config.train_samples or dataset.ids)
    unknown = sorted(set(train_ids) - set(dataset.ids))
    if unknown:
        raise ValueError(
            f"Training sample(s) {unknown} are not in {config.data}; known: {dataset.ids}."
        )
    fit_ids, val_ids = choose_validation(
        dataset, train_ids, config.val_samples, config.val_split, config.seed
    )
    if not fit_ids:
        raise ValueError(
            "The training split is empty after holding out validation samples "
            f"{val_ids}; pass more --train-samples or --val-split none."
        )
    genes = select_training_panel(
        dataset, fit_ids, config.panel, config.gene_list, target_sum=config.target_sum
    )
    if config.resume:
        if not (out / keys.RUN_CHECKPOINTS / keys.RUN_LAST_CKPT).exists():
            raise ValueError(f"--resume: no {keys.RUN_CHECKPOINTS}/{keys.RUN_LAST_CKPT} in {out}.")
        _check_resume_panel(out, genes)
    elif (out / keys.RUN_CONFIG).exists():
        raise ValueError(f"{out} already holds a run; pass --resume or choose another --out.")

    whole_section = get_method(config.method).whole_section
    if whole_section:
        from rankbygene.methods.histogene import build_section_training

        module, datamodule, n_train = build_section_training(
            config, dataset, fit_ids, val_ids, genes
        )
    else:
        module, datamodule, n_train = _build_spot_training(config, dataset, fit_ids, val_ids, genes)

    out.mkdir(parents=True, exist_ok=True)
    config_with_split = config.updated(train_samples=fit_ids, val_samples=val_ids)
    if not config.resume:
        write_text_atomic(out / keys.RUN_GENES, "\n".join(genes) + "\n")
        with atomic_path(out / keys.RUN_CONFIG) as tmp:
            config_with_split.to_yaml(tmp)
    logger.info(
        "Training %s with %s on %d spots (%s), validating on %s, %d genes.",
        config.method,
        "its own network" if whole_section else config.encoder,
        n_train,
        ",".join(fit_ids),
        ",".join(val_ids) or "nothing",
        len(genes),
    )
    checkpoint = ModelCheckpoint(
        dirpath=out / keys.RUN_CHECKPOINTS,
        filename="epoch{epoch:03d}",
        auto_insert_metric_name=False,
        every_n_epochs=config.checkpoint_every,
        save_top_k=-1,
        save_last=True,
    )
    trainer = L.Trainer(
        max_epochs=config.epochs,
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        precision=config.precision,
        callbacks=[checkpoint, EpochMetricsCSV(out / keys.RUN_METRICS), *(callbacks or [])],
        logger=False,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if val_ids else 0,
        enable_model_summary=False,
        log_every_n_steps=1,
        default_root_dir=out,
    )
    ckpt_path = out / keys.RUN_CHECKPOINTS / keys.RUN_LAST_CKPT if config.resume else None
    with warnings.catch_warnings():
        # The EMA teacher is kept in eval mode by design (BN statistics come from the EMA).
        warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")
        # Lightning's own pytree helper trips a torch deprecation; nothing a user can act on.
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
        if config.resume:  # resuming writes into the existing checkpoint directory on purpose
            warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* not empty.*")
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    if trainer.is_global_zero:
        if isinstance(module, AlignmentModule):
            export_run(module, out, genes)
        else:
            module.export(out, genes)
    logger.info("Run written to %s", out)
    return out


def export_run(module: AlignmentModule, out: Path, genes: list[str]) -> None:
    """Write the downstream encoder (teacher backbone when there is one) and the heads."""
    config = module.config
    save_encoder(
        module.downstream_backbone(),
        out / keys.RUN_ENCODER_DIR,
        source_run=str(out.resolve()),
        method=config.method,
        n_genes=len(genes),
    )
    card = {
        "embed_dim": module.backbone.embed_dim,
        "proj_dim": config.proj_dim,
        "n_genes": len(genes),
        "method": config.method,
        "predicts_expression": module.method.predicts_expression,
    }
    write_heads(out, (module.teacher or module.student).head, module.gene_encoder, card)


def write_heads(
    out: Path, image_head: torch.nn.Module, gene_encoder: torch.nn.Module, card: dict[str, Any]
) -> None:
    """Write ``heads.safetensors`` (``image_head.*``, ``gene_encoder.*``) and its card."""
    tensors = {f"{_IMAGE_HEAD}{k}": v for k, v in image_head.state_dict().items()}
    tensors |= {f"{_GENE_ENCODER}{k}": v for k, v in gene_encoder.state_dict().items()}
    with atomic_path(out / HEADS_FILE) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
    write_text_atomic(out / HEADS_CARD, json.dumps(card, indent=2))


def _read_heads(run_dir: Path) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]]]:
    """The heads card and the state dicts under ``image_head`` and ``gene_encoder``."""
    card_path = run_dir / HEADS_CARD
    if not card_path.is_file():
        raise FileNotFoundError(
            f"{card_path} not found: run `rankbygene train ... --out {run_dir}` to completion."
        )
    tensors = load_file(str(run_dir / HEADS_FILE))
    states = {
        prefix: {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        for prefix in (_IMAGE_HEAD, _GENE_ENCODER)
    }
    return json.loads(card_path.read_text()), states


def load_run_encoder(run_dir: str | Path) -> torch.nn.Module:
    """The downstream encoder of a finished run (one call)."""
    path = Path(run_dir) / keys.RUN_ENCODER_DIR
    from rankbygene.methods.histogene import is_histogene_run

    if not path.exists() and is_histogene_run(run_dir):
        raise ValueError(
            f"{run_dir} is a HisToGene run: it has no per-spot image encoder. Its spot features "
            "depend on the whole section: use `rankbygene extract --run RUN` (which computes "
            "them) or methods.histogene.extract_histogene_features."
        )
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: the run has not finished. Run `rankbygene train ... --out "
            f"{run_dir}` (or --resume) first."
        )
    return load_encoder(path)


def load_run_expression_head(run_dir: str | Path) -> tuple[torch.nn.Linear, list[str]]:
    """The expression head (features → G genes) and panel genes of an ST-Net-style run."""
    run_dir = Path(run_dir)
    card, states = _read_heads(run_dir)
    if not card.get("predicts_expression"):
        raise ValueError(
            f"{run_dir} is a {card['method']} run: its head projects into an embedding "
            "space and does not predict expression. Use --probe mlp|ridge (or retrieval)."
        )
    head = torch.nn.Linear(card["embed_dim"], card["n_genes"])
    head.load_state_dict(states[_IMAGE_HEAD])
    genes = (run_dir / keys.RUN_GENES).read_text().split()
    return head.eval(), genes


def load_run_heads(run_dir: str | Path) -> tuple[torch.nn.Module, torch.nn.Module, list[str]]:
    """Image projection head, gene encoder and panel genes of a finished run."""
    run_dir = Path(run_dir)
    card, states = _read_heads(run_dir)
    if card.get("predicts_expression"):
        raise ValueError(
            f"{run_dir} is a {card['method']} run: its image head predicts expression and it "
            "has no gene encoder, so there is nothing to retrieve with. Evaluate its features "
            "with a probe (--probe mlp|ridge) instead."
        )
    head = MLPHead(card["embed_dim"], card["proj_dim"])
    gene_encoder = MLPHead(card["n_genes"], card["proj_dim"])
    head.load_state_dict(states[_IMAGE_HEAD])
    gene_encoder.load_state_dict(states[_GENE_ENCODER])
    genes = (run_dir / keys.RUN_GENES).read_text().split()
    return head.eval(), gene_encoder.eval(), genes
