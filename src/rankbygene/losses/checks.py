"""Shared input checks for the paired-feature losses."""

from __future__ import annotations

import torch


def check_pair(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str], min_n: int = 1) -> None:
    """Check two feature batches are 2-D, paired row by row and large enough.

    Args:
        a: First feature batch.
        b: Second feature batch.
        names: Argument names used in the error message.
        min_n: Smallest batch size the loss is defined for.

    Shape:
        a: (N, D_a); b: (N, D_b).

    Raises:
        ValueError: naming the offending argument and its shape.
    """
    for name, x in zip(names, (a, b), strict=True):
        if x.ndim != 2:
            raise ValueError(f"{name} must be a (N, D) matrix, got shape {tuple(x.shape)}.")
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{names[0]} and {names[1]} must hold the same spots row by row, got "
            f"{a.shape[0]} and {b.shape[0]} rows."
        )
    if a.shape[0] < min_n:
        raise ValueError(
            f"this loss needs a batch of at least {min_n} spots, got {a.shape[0]}; "
            "increase the batch size."
        )


def check_temperature(temperature: float) -> None:
    """Raise ValueError unless ``temperature`` is a positive number."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
