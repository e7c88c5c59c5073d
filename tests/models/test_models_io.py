"""Weights: save/load round trip, local files, prefixes, strict mismatch errors."""

from __future__ import annotations

import json
import re

import pytest
import timm
import torch
from safetensors.torch import save_file

from rankbygene.keys import ENCODER_CARD, ENCODER_WEIGHTS
from rankbygene.models import (
    create_encoder,
    load_encoder,
    read_state_dict,
    save_encoder,
    weights_sha256,
)


@pytest.fixture(autouse=True)
def _one_thread():
    # see test_models_encoders: avoid OpenMP contention on a shared machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    enc = create_encoder("tiny")
    # move BN statistics off their defaults so buffers are part of the round trip
    enc.train()
    enc(torch.randn(4, 3, 16, 16))
    return enc.eval()


def test_save_load_round_trip_same_outputs(tmp_path, tiny):
    x = torch.randn(2, 3, 64, 64)
    out_dir = save_encoder(tiny, tmp_path / "enc", run="r1", epoch=3)
    assert (out_dir / ENCODER_WEIGHTS).is_file()
    card = json.loads((out_dir / ENCODER_CARD).read_text())
    assert card["backbone"] == "tiny"
    assert card["embed_dim"] == 128
    assert card["transform"] == tiny.transform.to_dict()
    assert card["extra"] == {"run": "r1", "epoch": 3}
    loaded = load_encoder(out_dir).eval()
    assert loaded.name == "tiny" and loaded.transform == tiny.transform
    torch.testing.assert_close(loaded(x), tiny(x), rtol=0, atol=0)


def test_round_trip_keeps_build_kwargs_and_custom_transform(tmp_path):
    enc = create_encoder("timm/vit_tiny_patch16_224", img_size=32)
    assert enc.transform.input_size == 32
    enc.transform = type(enc.transform)(32, (0.1, 0.2, 0.3), (0.5, 0.5, 0.5))
    loaded = load_encoder(save_encoder(enc, tmp_path))
    assert loaded.build_kwargs == {"img_size": 32}
    assert loaded.transform == enc.transform
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(loaded.eval()(x), enc.eval()(x))


def test_load_encoder_errors(tmp_path, tiny):
    with pytest.raises(FileNotFoundError, match="not a saved encoder directory"):
        load_encoder(tmp_path)
    save_encoder(tiny, tmp_path)
    (tmp_path / ENCODER_CARD).write_text(json.dumps({"backbone": "tiny"}))
    with pytest.raises(ValueError, match="lacks field"):
        load_encoder(tmp_path)
    with pytest.raises(ValueError, match="JSON-serialisable"):
        save_encoder(tiny, tmp_path / "x", bad=object())


def test_local_weights_with_prefixes_and_torch_files(tmp_path, tiny):
    x = torch.randn(1, 3, 64, 64)
    state = tiny.backbone.state_dict()
    # DDP + Lightning-style wrapper names, nested under "state_dict", in a torch file
    wrapped = {"state_dict": {f"module.backbone.{k}": v for k, v in state.items()}, "epoch": 1}
    torch.save(wrapped, tmp_path / "ckpt.pt")
    enc = create_encoder("tiny", weights=tmp_path / "ckpt.pt").eval()
    torch.testing.assert_close(enc(x), tiny(x), rtol=0, atol=0)
    save_file({f"model.{k}": v.contiguous() for k, v in state.items()}, tmp_path / "w.safetensors")
    enc2 = create_encoder("tiny", weights=tmp_path / "w.safetensors").eval()
    torch.testing.assert_close(enc2(x), tiny(x), rtol=0, atol=0)
    # an Encoder's own state dict (prefix "backbone.") loads too
    torch.save(tiny.state_dict(), tmp_path / "enc.pth")
    assert set(read_state_dict(tmp_path / "enc.pth")) == {f"backbone.{k}" for k in state}
    create_encoder("tiny", weights=tmp_path / "enc.pth")


def test_mismatched_architecture_is_a_clear_error(tmp_path, tiny):
    save_encoder(tiny, tmp_path)
    with pytest.raises(ValueError, match=r"does not match the architecture 'resnet50-trunc'"):
        create_encoder("resnet50-trunc", weights=tmp_path / ENCODER_WEIGHTS)
    state = dict(tiny.backbone.state_dict())
    state.pop("blocks.0.0.weight")
    state["extra.weight"] = torch.zeros(1)
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match=r"1 missing key\(s\): blocks.0.0.weight.*extra.weight"):
        create_encoder("tiny", weights=tmp_path / "bad.safetensors")
    narrow = create_encoder("tiny")
    narrow_state = dict(narrow.backbone.state_dict())
    narrow_state["blocks.0.1.weight"] = torch.ones(3)
    torch.save(narrow_state, tmp_path / "shape.pt")
    with pytest.raises(ValueError, match="shape mismatch"):
        create_encoder("tiny", weights=tmp_path / "shape.pt")


def test_non_state_dict_files_are_rejected(tmp_path):
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "meta.pt")
    with pytest.raises(ValueError, match="holds no state dict"):
        read_state_dict(tmp_path / "meta.pt")


def test_full_resnet50_checkpoint_loads_into_truncated_encoder(tmp_path):
    torch.manual_seed(0)
    full = timm.create_model("resnet50", pretrained=False)  # with layer4 and fc
    torch.save(full.state_dict(), tmp_path / "r50.pth")
    enc = create_encoder("resnet50-trunc", weights=tmp_path / "r50.pth")
    torch.testing.assert_close(
        enc.backbone.layer3[0].conv1.weight, full.layer3[0].conv1.weight, rtol=0, atol=0
    )
    # a densenet classifier is dropped as well (built with num_classes=0)
    dense = timm.create_model("densenet121", pretrained=False)
    torch.save(dense.state_dict(), tmp_path / "d.pth")
    create_encoder("densenet121", weights=tmp_path / "d.pth")


def test_ctranspath_original_layout_checkpoint_is_converted(tmp_path):
    torch.manual_seed(0)
    ref = create_encoder("ctranspath", random_init=True)

    # rebuild the published (pre-timm-0.6 Swin) layout: downsample at the end of the
    # previous stage, stored relative-position indices, a 1000-class "head"
    def to_old(key: str) -> str:
        return re.sub(r"layers\.(\d+)\.down", lambda m: f"layers.{int(m[1]) - 1}.down", key)

    old = {to_old(k): v for k, v in ref.backbone.state_dict().items()}
    old["layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(49, 49, dtype=torch.long)
    old["head.weight"] = torch.zeros(1000, 768)
    old["head.bias"] = torch.zeros(1000)
    assert "layers.0.downsample.reduction.weight" in old
    torch.save({"model": old}, tmp_path / "ctranspath.pth")
    enc = create_encoder("ctranspath", weights=tmp_path / "ctranspath.pth")
    got = enc.backbone.state_dict()
    assert all(torch.equal(got[k], v) for k, v in ref.backbone.state_dict().items())


def test_weights_digest_depends_on_the_weights_only(tmp_path, tiny):
    digest = weights_sha256(tiny)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    # the same weights through a file and a fresh module: the same digest
    loaded = load_encoder(save_encoder(tiny, tmp_path / "enc"))
    assert weights_sha256(loaded) == digest
    # registration order does not matter: the keys are hashed sorted
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(2, 1)
    first = torch.nn.ModuleDict({"a": a, "b": b})
    second = torch.nn.ModuleDict({"b": b, "a": a})
    assert weights_sha256(first) == weights_sha256(second)
    # one changed number, or one changed buffer, changes it
    with torch.no_grad():
        next(loaded.parameters()).view(-1)[0] += 1e-6
    assert weights_sha256(loaded) != digest
    buffers = load_encoder(tmp_path / "enc")
    bn = next(m for m in buffers.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_mean[0] += 1.0
    assert weights_sha256(buffers) != digest
