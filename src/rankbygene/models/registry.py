"""Encoder registry: ``create_encoder(name, weights=None)`` and ``list_encoders()``.

Registered names carry their architecture, default eval transform and hub id. Any
other name that timm knows (``"timm/<name>"`` or a plain timm name) is built by timm
with its classifier removed and timm's own data config as transform.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import nn

from rankbygene.models.checkpoint import StateFilter, load_weights
from rankbygene.models.ctranspath import build_ctranspath, ctranspath_state_filter
from rankbygene.models.encoders import (
    RESNET50_TRUNC_DIM,
    Encoder,
    build_densenet121,
    build_resnet50_trunc,
    build_timm,
    build_tiny,
    build_uni,
)
from rankbygene.models.transform import EncoderTransform

logger = logging.getLogger(__name__)

TIMM_PREFIX = "timm/"
HUB_WEIGHTS = "hub"
IMAGENET_224 = EncoderTransform(224, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)


@dataclass(frozen=True)
class EncoderSpec:
    """How to build one registered encoder.

    Attributes:
        name: Registry name.
        build: ``build(pretrained_id, **kwargs) -> backbone`` (pooled (B, D) output).
        transform: Default eval transform.
        embed_dim: Pooled feature width, or None to read ``backbone.num_features``.
        hub_id: timm/hub id of the pretrained weights (``weights="hub"``), if any.
        ignore_prefixes: Checkpoint key prefixes the architecture drops on purpose.
        state_filter: Converter applied to local checkpoints before strict loading.
        description: One line for listings.
        needs_weights: The encoder is worth its pretraining (a foundation model):
            building it without weights is refused unless ``random_init`` is asked
            for explicitly (:func:`check_weights_given`).
    """

    name: str
    build: Callable[..., nn.Module]
    transform: EncoderTransform
    embed_dim: int | None = None
    hub_id: str | None = None
    ignore_prefixes: tuple[str, ...] = ()
    state_filter: StateFilter | None = None
    description: str = ""
    needs_weights: bool = False


_REGISTRY: dict[str, EncoderSpec] = {}


def register_encoder(spec: EncoderSpec) -> None:
    """Add an encoder to the registry (replacing one of the same name)."""
    _REGISTRY[spec.name] = spec


for _spec in (
    EncoderSpec(
        "uni",
        build_uni,
        # UNI's model card: resize 224, ImageNet normalisation
        IMAGENET_224,
        embed_dim=1024,
        hub_id="hf-hub:MahmoodLab/UNI",
        description="UNI ViT-L/16 (Chen et al. 2024), the paper's backbone; gated on the hub",
        needs_weights=True,
    ),
    EncoderSpec(
        "ctranspath",
        build_ctranspath,
        IMAGENET_224,
        embed_dim=768,
        state_filter=ctranspath_state_filter,
        description="CTransPath Swin-T with conv stem (Wang et al. 2022); local weights only",
        needs_weights=True,
    ),
    EncoderSpec(
        "resnet50-trunc",
        build_resnet50_trunc,
        IMAGENET_224,
        embed_dim=RESNET50_TRUNC_DIM,
        hub_id="resnet50.tv_in1k",
        # a full ResNet-50 checkpoint loads: the dropped stage and classifier are ignored
        ignore_prefixes=("layer4", "fc"),
        description="ImageNet ResNet-50 up to layer3, 1024-d (CLAM/HEST convention)",
    ),
    EncoderSpec(
        "densenet121",
        build_densenet121,
        IMAGENET_224,
        embed_dim=1024,
        hub_id="densenet121.tv_in1k",
        description="ImageNet DenseNet-121 (ST-Net backbone)",
    ),
    EncoderSpec(
        "tiny",
        build_tiny,
        EncoderTransform(64, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD),
        embed_dim=128,
        description="4-block CNN, 128-d, for tests and CPU runs (any input size)",
    ),
):
    register_encoder(_spec)


def list_encoders() -> list[str]:
    """Names of the registered encoders (any timm name works too)."""
    return sorted(_REGISTRY)


def get_encoder_spec(name: str) -> EncoderSpec:
    """The spec of a registered name, or a generic timm spec for a timm model name.

    Raises:
        ValueError: unknown name, listing the registered ones.
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    arch = name.removeprefix(TIMM_PREFIX)
    if timm.is_model(arch):

        def build(pretrained_id: str | None = None, **kwargs: Any) -> nn.Module:
            return build_timm(arch, pretrained_id, **kwargs)

        # the transform comes from timm's data config once the model exists
        return EncoderSpec(name, build, IMAGENET_224, hub_id=arch, ignore_prefixes=())
    raise ValueError(
        f"unknown encoder {name!r}; use one of {list_encoders()} or a timm model name "
        "('timm/<name>', see timm.list_models())."
    )


def _timm_transform(backbone: nn.Module) -> EncoderTransform:
    """Eval transform from timm's data config of ``backbone``."""
    cfg = timm.data.resolve_model_data_config(backbone)
    return EncoderTransform(int(cfg["input_size"][-1]), cfg["mean"], cfg["std"])


class HubDownloadError(OSError, RuntimeError):
    """Pretrained weights could not be fetched (offline, not authorised, no such file).

    An ``OSError``, as any failed read, so the command line reports it as a user error;
    also a ``RuntimeError``, what this error was before.
    """


def _build_from_hub(spec: EncoderSpec, kwargs: dict[str, Any]) -> nn.Module:
    """Build with pretrained hub weights, failing loudly instead of random init."""
    if spec.hub_id is None:
        raise ValueError(
            f"encoder {spec.name!r} has no hub id; download its weights and pass the local "
            "file as weights=PATH."
        )
    try:
        return spec.build(spec.hub_id, **kwargs)
    # downloads fail with many exception types (network, auth, hub client errors)
    except Exception as err:
        raise HubDownloadError(
            f"could not fetch the weights of {spec.name!r} from the hub ({spec.hub_id}): {err}. "
            "Download the weights (log in and accept the model's terms if it is gated) and "
            "pass the local file as weights=PATH."
        ) from err


def check_weights_given(name: str, weights: str | Path | None, random_init: bool) -> None:
    """Refuse to build a foundation-model encoder at random unless asked for explicitly.

    Cheap (no model is built), so callers run it before any other work: a random
    ViT-L is also the largest thing the package builds.

    Raises:
        ValueError: ``name`` needs weights, none are given and ``random_init`` is off;
            also an unknown name.
    """
    if weights is None and not random_init and get_encoder_spec(name).needs_weights:
        raise ValueError(
            f"encoder {name!r} is worth only its pretrained weights and none were given: pass "
            f"--weights PATH (or --weights {HUB_WEIGHTS}), or --random-init to start it from a "
            "random initialisation on purpose."
        )


def create_encoder(
    name: str, weights: str | Path | None = None, *, random_init: bool = False, **kwargs: Any
) -> Encoder:
    """Build an encoder by name, with random, local or hub weights.

    Args:
        name: A registered name (:func:`list_encoders`) or a timm model name,
            optionally prefixed ``"timm/"``.
        weights: None (random init: tests, training from scratch), a local weights
            file (safetensors or a torch state dict, loaded strictly), or ``"hub"``
            (download through timm; needs network and, for gated models, a login).
        random_init: Allow a random initialisation of an encoder that declares
            ``needs_weights`` (uni, ctranspath); without it, no weights is an error.
        **kwargs: Extra architecture arguments passed to the builder
            (``timm.create_model`` keywords, e.g. ``img_size``).

    Returns:
        The :class:`Encoder`; its forward maps (B, 3, H, W) normalised images to
        (B, embed_dim).

    Raises:
        ValueError: unknown name, no hub id, weights that do not fit, or no weights
            for an encoder that needs them (without ``random_init``).
        FileNotFoundError: the weights file does not exist.
        HubDownloadError: hub download failed (never falls back to random weights).
    """
    check_weights_given(name, weights, random_init)
    spec = get_encoder_spec(name)
    if weights is not None and str(weights) == HUB_WEIGHTS:
        backbone = _build_from_hub(spec, kwargs)
    else:
        if weights is not None and not Path(weights).is_file():
            raise FileNotFoundError(
                f"weights file {weights} for encoder {name!r} does not exist; pass an "
                f"existing local file, or weights={HUB_WEIGHTS!r} to download."
            )
        backbone = spec.build(None, **kwargs)
        if weights is not None:
            load_weights(backbone, weights, name, spec.ignore_prefixes, spec.state_filter)
    transform = spec.transform if name in _REGISTRY else _timm_transform(backbone)
    if isinstance(kwargs.get("img_size"), int):
        transform = EncoderTransform(kwargs["img_size"], transform.mean, transform.std)
    embed_dim = spec.embed_dim if spec.embed_dim is not None else backbone.num_features
    logger.debug("built encoder %s (%d-d, weights=%s)", name, embed_dim, weights)
    return Encoder(backbone, name, embed_dim, transform, build_kwargs=kwargs, hub_id=spec.hub_id)
