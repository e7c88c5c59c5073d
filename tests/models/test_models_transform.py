"""EncoderTransform: dict round trip and normalisation values."""

from __future__ import annotations

import pytest
import torch

from rankbygene.models import EncoderTransform


def test_round_trip_and_validation():
    t = EncoderTransform(224, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    assert EncoderTransform.from_dict(t.to_dict()) == t
    assert EncoderTransform.from_dict({"input_size": 8, "mean": [0, 0, 0], "std": [1, 1, 1]}) == (
        EncoderTransform(8, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    )
    with pytest.raises(ValueError, match=r"missing field\(s\) \['std'\]"):
        EncoderTransform.from_dict({"input_size": 8, "mean": [0, 0, 0]})
    with pytest.raises(ValueError, match="std values must be > 0"):
        EncoderTransform(8, (0, 0, 0), (1, 0, 1))


def test_normalize_values_without_resize():
    t = EncoderTransform(2, (0.5, 0.5, 0.5), (0.5, 0.25, 1.0))
    x = torch.tensor([0, 255, 51, 204], dtype=torch.uint8).reshape(1, 1, 2, 2).repeat(1, 3, 1, 1)
    out = t.normalize(x)
    v = x[0, 0].float() / 255
    assert out.dtype == torch.float32 and out.shape == (1, 3, 2, 2)
    torch.testing.assert_close(out[0, 0], (v - 0.5) / 0.5)
    torch.testing.assert_close(out[0, 1], (v - 0.5) / 0.25)
    torch.testing.assert_close(out[0, 2], v - 0.5)


def test_normalize_resizes_with_antialias():
    t = EncoderTransform(4, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    # a 1-px checkerboard averages to mid-gray when downsampled 4x with antialiasing
    board = ((torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 * 255).to(torch.uint8)
    out = t.normalize(board.expand(2, 3, 16, 16))
    assert out.shape == (2, 3, 4, 4)
    assert out.mean().item() == pytest.approx(0.5, abs=0.02)
    assert out.std().item() < 0.05


def test_normalize_rejects_floats():
    t = EncoderTransform(4, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="expects uint8"):
        t.normalize(torch.rand(1, 3, 4, 4))
