"""Encoder registry contract: every registered name builds, runs and trains."""

from __future__ import annotations

import dataclasses

import pytest
import timm
import torch

from rankbygene.models import (
    ConvStem,
    Encoder,
    EncoderTransform,
    create_encoder,
    get_encoder_spec,
    list_encoders,
    register_encoder,
)

# per-name test input: small where the architecture allows it
INPUT_PX = {"tiny": 64, "resnet50-trunc": 32, "densenet121": 32, "ctranspath": 224, "uni": 32}
EMBED_DIM = {"tiny": 128, "resnet50-trunc": 1024, "densenet121": 1024, "ctranspath": 768}
FAST = [n for n in list_encoders() if n != "uni"]


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny inputs gain nothing from intra-op threads, and on a shared 2-core machine
    # OpenMP thread contention made these tests 10x slower; restore afterwards
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _check_contract(enc: Encoder, px: int, batch: int) -> None:
    torch.manual_seed(0)
    # timm zero-inits the last BN scale of each ResNet block (identity at init), which
    # makes that branch's gradients exactly 0; give them a unit scale so "every
    # parameter gets a non-zero gradient" is a meaningful check for all families
    with torch.no_grad():
        for m in enc.modules():
            if isinstance(m, torch.nn.BatchNorm2d) and not m.weight.abs().sum() > 0:
                m.weight.fill_(1.0)
    enc.train()
    x = torch.randn(batch, 3, px, px)
    out = enc(x)
    assert out.shape == (batch, enc.embed_dim)
    assert torch.isfinite(out).all()
    # a random projection, not a plain sum: BN makes some sums constant
    (out * torch.randn_like(out)).sum().backward()
    params = [(n, p) for n, p in enc.named_parameters() if p.requires_grad]
    assert params
    no_grad = [n for n, p in params if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad, f"no gradient reaches {no_grad[:5]}"
    assert all(torch.isfinite(p.grad).all() for _, p in params)


def test_registry_lists_the_paper_encoders():
    assert {"uni", "ctranspath", "resnet50-trunc", "densenet121", "tiny"} <= set(list_encoders())
    assert FAST  # the fast contract below covers something


@pytest.mark.parametrize("name", FAST)
def test_encoder_contract(name: str):
    enc = create_encoder(name, random_init=True)
    assert enc.name == name
    assert enc.embed_dim == EMBED_DIM[name]
    assert isinstance(enc.transform, EncoderTransform)
    _check_contract(enc, INPUT_PX[name], batch=2)


@pytest.mark.slow
def test_uni_contract_at_reduced_input():
    enc = create_encoder("uni", random_init=True)
    assert enc.embed_dim == 1024
    assert enc.hub_id == "hf-hub:MahmoodLab/UNI"
    assert enc.transform.input_size == 224
    assert sum(p.numel() for p in enc.parameters()) > 300e6  # ViT-L
    # dynamic_img_size lets the 224-px model run on a 32-px image (2x2 patches)
    _check_contract(enc, INPUT_PX["uni"], batch=1)


def test_timm_names_work_and_take_timm_transform():
    enc = create_encoder("timm/resnet18")
    assert enc.embed_dim == 512
    assert enc.transform.input_size == 224
    assert enc.transform.mean == pytest.approx((0.485, 0.456, 0.406))
    assert create_encoder("resnet18").embed_dim == 512
    _check_contract(enc, 32, batch=2)


def test_tiny_accepts_any_size_and_build_kwargs_reach_the_builder():
    enc = create_encoder("tiny")
    assert enc(torch.randn(1, 3, 37, 50)).shape == (1, 128)
    assert enc.transform.input_size == 64
    swin = create_encoder("ctranspath", random_init=True, img_size=112, window_size=7)
    assert swin.transform.input_size == 112
    assert swin.build_kwargs == {"img_size": 112, "window_size": 7}


def test_resnet50_trunc_is_resnet50_up_to_layer3():
    enc = create_encoder("resnet50-trunc")
    names = {n.split(".")[0] for n, _ in enc.backbone.named_parameters()}
    assert names == {"conv1", "bn1", "layer1", "layer2", "layer3"}
    full = timm.create_model("resnet50", pretrained=False, num_classes=0)
    trunc_keys = set(enc.backbone.state_dict())
    assert trunc_keys == {k for k in full.state_dict() if not k.startswith("layer4.")}


def test_ctranspath_stem_matches_timm_patch_embed_contract():
    stem = ConvStem(img_size=224, embed_dim=96, norm_layer=torch.nn.LayerNorm, output_fmt="NHWC")
    ref = timm.layers.PatchEmbed(img_size=224, patch_size=4, embed_dim=96, output_fmt="NHWC")
    x = torch.randn(1, 3, 224, 224)
    assert stem(x).shape == ref(x).shape == (1, 56, 56, 96)
    assert stem.grid_size == ref.grid_size and stem.num_patches == ref.num_patches
    convs = [m for m in stem.proj if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride) for c in convs] == [
        (3, 12, (2, 2)),
        (12, 24, (2, 2)),
        (24, 96, (1, 1)),
    ]
    assert ConvStem(img_size=64, embed_dim=96, output_fmt="NLC")(
        torch.randn(1, 3, 64, 64)
    ).shape == (1, 256, 96)
    with pytest.raises(ValueError, match="does not match the model's"):
        stem(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="fixed stride of 4"):
        ConvStem(patch_size=16)
    enc = create_encoder("ctranspath", random_init=True)
    assert isinstance(enc.backbone.patch_embed, ConvStem)


def test_unknown_name_lists_registered_ones():
    with pytest.raises(ValueError, match=r"unknown encoder 'nope'.*'tiny'"):
        create_encoder("nope")


def test_hub_without_id_and_hub_failure(monkeypatch):
    with pytest.raises(ValueError, match="has no hub id"):
        create_encoder("tiny", weights="hub")

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    # never touch the network in tests: the download itself is replaced by a failure
    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(RuntimeError, match=r"could not fetch.*resnet50.tv_in1k.*weights=PATH"):
        create_encoder("resnet50-trunc", weights="hub")
    assert get_encoder_spec("uni").hub_id == "hf-hub:MahmoodLab/UNI"


def test_missing_weights_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_encoder("tiny", weights=tmp_path / "missing.safetensors")


@pytest.mark.parametrize("name", ["uni", "ctranspath"])
def test_foundation_encoders_refuse_a_random_initialisation_unless_asked(name: str):
    """No weights for an encoder worth its pretraining is an error naming the way out,
    raised before the network is built (a random ViT-L alone can exhaust the memory)."""
    spec = get_encoder_spec(name)
    assert spec.needs_weights

    def must_not_build(*args, **kwargs):
        raise AssertionError(f"{name} was built before the weights were checked")

    register_encoder(dataclasses.replace(spec, build=must_not_build))
    try:
        with pytest.raises(ValueError, match=rf"'{name}'.*--weights.*--random-init"):
            create_encoder(name)
        with pytest.raises(AssertionError, match="was built"):  # asked for: it is built
            create_encoder(name, random_init=True)
    finally:
        register_encoder(spec)
    assert not get_encoder_spec("tiny").needs_weights
    assert create_encoder("tiny").embed_dim == 128  # a CPU test encoder needs no weights
