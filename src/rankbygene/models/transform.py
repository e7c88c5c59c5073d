"""The evaluation transform an encoder expects: input size and normalisation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torchvision.transforms.v2 import functional as TF


@dataclass(frozen=True)
class EncoderTransform:
    """Input size and per-channel normalisation of an encoder (its eval transform).

    Attributes:
        input_size: Square side S in pixels the encoder was trained at.
        mean: Per-channel mean of [0, 1] RGB inputs.
        std: Per-channel standard deviation of [0, 1] RGB inputs.
    """

    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        # normalise list inputs (e.g. from JSON) so equality and hashing work
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        if int(self.input_size) != self.input_size or self.input_size < 1:
            raise ValueError(f"input_size must be a positive integer, got {self.input_size}.")
        object.__setattr__(self, "input_size", int(self.input_size))
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(f"mean and std need 3 values (RGB), got {self.mean}, {self.std}.")
        if min(self.std) <= 0:
            raise ValueError(f"std values must be > 0, got {self.std}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"input_size", "mean", "std"}``."""
        return {"input_size": self.input_size, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EncoderTransform:
        """Inverse of :meth:`to_dict`; raises ValueError naming missing fields."""
        missing = {"input_size", "mean", "std"} - set(data)
        if missing:
            raise ValueError(
                f"encoder transform is missing field(s) {sorted(missing)}; expected "
                "{'input_size': int, 'mean': [r, g, b], 'std': [r, g, b]}."
            )
        return cls(int(data["input_size"]), tuple(data["mean"]), tuple(data["std"]))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Turn a uint8 RGB batch into the encoder's float input.

        Scales to [0, 1], resizes to ``input_size`` when needed (bilinear with
        antialiasing, so downsampling does not alias), then normalises.

        Args:
            x: RGB images, uint8.

        Shape:
            x: (B, 3, H, W); output: (B, 3, S, S) float32 with S = ``input_size``.
        """
        if x.dtype != torch.uint8:
            raise ValueError(
                f"normalize expects uint8 images, got {x.dtype}; pass the raw patches "
                "(as stored in patches/*.h5), not already scaled floats."
            )
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"normalize expects (B, 3, H, W) RGB images, got {tuple(x.shape)}.")
        out = TF.to_dtype(x, torch.float32, scale=True)
        if tuple(out.shape[-2:]) != (self.input_size, self.input_size):
            out = TF.resize(
                out,
                [self.input_size, self.input_size],
                interpolation=TF.InterpolationMode.BILINEAR,
                antialias=True,
            )
        return TF.normalize(out, list(self.mean), list(self.std))
