"""Encoders (registry, weights, save/load), heads, teacher-student EMA, augmentations."""

from rankbygene.models.augment import (
    PAPER_COLOUR,
    ColourAugment,
    color_jitter,
    strong_augment,
    weak_augment,
)
from rankbygene.models.checkpoint import load_weights, read_state_dict
from rankbygene.models.ctranspath import ConvStem
from rankbygene.models.encoders import Encoder
from rankbygene.models.freeze import backbone_blocks, freeze_backbone, unfreeze_last_blocks
from rankbygene.models.heads import MLPHead
from rankbygene.models.io import load_encoder, read_card, save_encoder, weights_sha256
from rankbygene.models.registry import (
    EncoderSpec,
    check_weights_given,
    create_encoder,
    get_encoder_spec,
    list_encoders,
    register_encoder,
)
from rankbygene.models.teacher import (
    BackboneWithHead,
    TeacherStudent,
    cosine_momentum,
    update_momentum,
)
from rankbygene.models.tiny import TinyCNN
from rankbygene.models.transform import EncoderTransform

__all__ = [
    "PAPER_COLOUR",
    "BackboneWithHead",
    "ColourAugment",
    "ConvStem",
    "Encoder",
    "EncoderSpec",
    "EncoderTransform",
    "MLPHead",
    "TeacherStudent",
    "TinyCNN",
    "backbone_blocks",
    "check_weights_given",
    "color_jitter",
    "cosine_momentum",
    "create_encoder",
    "freeze_backbone",
    "get_encoder_spec",
    "list_encoders",
    "load_encoder",
    "load_weights",
    "read_card",
    "read_state_dict",
    "register_encoder",
    "save_encoder",
    "strong_augment",
    "unfreeze_last_blocks",
    "update_momentum",
    "weak_augment",
    "weights_sha256",
]
