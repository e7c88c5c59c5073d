"""Lightning training of gene-guided image encoders (METHOD.md §2–4)."""

from rankbygene.training.config import TrainConfig
from rankbygene.training.run import load_run_encoder, load_run_heads, resolve_config, train

__all__ = ["TrainConfig", "load_run_encoder", "load_run_heads", "resolve_config", "train"]
