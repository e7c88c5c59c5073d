"""Saving an encoder as ``model.safetensors`` + ``card.json``, loading it back, and the
fingerprint of a network's weights (:func:`weights_sha256`)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from rankbygene import __version__
from rankbygene.fileio import atomic_path, read_json, write_text_atomic
from rankbygene.keys import ENCODER_CARD, ENCODER_WEIGHTS
from rankbygene.models.encoders import Encoder
from rankbygene.models.registry import create_encoder
from rankbygene.models.transform import EncoderTransform

logger = logging.getLogger(__name__)

# card.json fields
CARD_BACKBONE = "backbone"
CARD_EMBED_DIM = "embed_dim"
CARD_TRANSFORM = "transform"
CARD_BUILD_KWARGS = "build_kwargs"
CARD_HUB_ID = "hub_id"
CARD_VERSION = "rankbygene_version"
CARD_EXTRA = "extra"


def weights_sha256(module: nn.Module) -> str:
    """SHA-256 of a network's state-dict tensors, in a canonical order (hex digest).

    Every entry (parameters and buffers) is hashed in sorted key order as its key, dtype,
    shape and raw bytes, so the digest depends on the weights alone: not on the file
    they came from, the device, or the order modules were registered in. Two networks
    with the same digest compute the same features; features record it (extraction)
    and a saved predictor checks it (``rankbygene predict``).
    """
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{key}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def save_encoder(encoder: Encoder, directory: str | Path, **card_extra: Any) -> Path:
    """Write the backbone weights and a JSON card describing how to rebuild it.

    Args:
        encoder: The encoder to save (its backbone's state dict is stored, without
            the wrapper prefix, so other tools can load the file too).
        directory: Output directory (created).
        **card_extra: JSON-serialisable facts stored under ``"extra"`` in the card
            (e.g. the source run, the training method).

    Returns:
        The directory.

    Raises:
        ValueError: ``card_extra`` is not JSON-serialisable.
    """
    directory = Path(directory)
    card = {
        CARD_BACKBONE: encoder.name,
        CARD_EMBED_DIM: encoder.embed_dim,
        CARD_TRANSFORM: encoder.transform.to_dict(),
        CARD_BUILD_KWARGS: encoder.build_kwargs,
        CARD_HUB_ID: encoder.hub_id,
        CARD_VERSION: __version__,
        CARD_EXTRA: card_extra,
    }
    try:
        text = json.dumps(card, indent=2)
    except TypeError as err:
        raise ValueError(
            f"encoder card fields must be JSON-serialisable (str, numbers, lists, dicts): {err}"
        ) from err
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in encoder.backbone.state_dict().items()}
    with atomic_path(directory / ENCODER_WEIGHTS) as tmp:
        save_file(tensors, tmp, metadata={CARD_BACKBONE: encoder.name})
    write_text_atomic(directory / ENCODER_CARD, text + "\n")  # the card last: a complete save
    logger.info("saved encoder %s to %s", encoder.name, directory)
    return directory


def read_card(directory: str | Path) -> dict[str, Any]:
    """Read and check ``card.json`` of a saved encoder directory.

    Raises:
        FileNotFoundError: no card (not a saved encoder directory).
        ValueError: the card lacks a required field.
    """
    path = Path(directory) / ENCODER_CARD
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {directory} is not a saved encoder directory (it needs "
            f"{ENCODER_CARD} and {ENCODER_WEIGHTS}, as written by save_encoder or training)."
        )
    return read_json(
        path,
        required=(CARD_BACKBONE, CARD_EMBED_DIM, CARD_TRANSFORM),
        fix="re-save the encoder with save_encoder (training writes it when a run finishes)",
    )


def load_encoder(directory: str | Path) -> Encoder:
    """Rebuild an encoder saved by :func:`save_encoder`.

    Args:
        directory: Directory holding ``card.json`` and ``model.safetensors``.

    Returns:
        The encoder with the saved weights and the card's transform.
    """
    directory = Path(directory)
    card = read_card(directory)
    encoder = create_encoder(
        card[CARD_BACKBONE],
        weights=directory / ENCODER_WEIGHTS,
        **card.get(CARD_BUILD_KWARGS, {}),
    )
    if encoder.embed_dim != card[CARD_EMBED_DIM]:
        raise ValueError(
            f"{directory / ENCODER_CARD} says embed_dim={card[CARD_EMBED_DIM]} but "
            f"{card[CARD_BACKBONE]!r} gives {encoder.embed_dim}; the card does not match."
        )
    encoder.transform = EncoderTransform.from_dict(card[CARD_TRANSFORM])
    return encoder
