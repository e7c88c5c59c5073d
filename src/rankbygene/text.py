"""Text shared by the CLI, the results files and the report: comma lists, ``mean ± std``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["format_mean_std", "parse_floats", "parse_ids"]


def parse_ids(value: str | Sequence[str] | None) -> list[str]:
    """A comma list (``"A, B,C"``) or a sequence of ids as a list, blanks dropped.

    ``None`` and ``""`` give ``[]``.
    """
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    return [s for s in (str(x).strip() for x in items) if s]


def parse_floats(value: str | None, n: int, what: str) -> list[float] | None:
    """A comma list of exactly ``n`` numbers (``"0.2,0.2,0.2,0.1"``); None gives None.

    Raises:
        ValueError: another count, or an item that is not a number, naming ``what``.
    """
    if value is None:
        return None
    items = parse_ids(value)
    try:
        numbers = [float(x) for x in items]
    except ValueError:
        numbers = []
    if len(numbers) != n or len(items) != n:
        raise ValueError(f"{what} takes {n} comma-separated numbers; got {value!r}.")
    return numbers


def format_mean_std(stat: Mapping[str, Any] | float | None, digits: int = 3) -> str:
    """``"0.123 ± 0.004"`` from ``{"mean", "std"}``; a bare number alone; ``"n/a"`` when undefined.

    An undefined value is None or NaN (e.g. the PCC of constant predictions); a
    missing std is shown as the mean alone.
    """
    if isinstance(stat, Mapping):
        mean, std = stat.get("mean"), stat.get("std")
    else:
        mean, std = stat, None
    if mean is None or mean != mean:  # None or NaN
        return "n/a"
    text = f"{float(mean):.{digits}f}"
    if std is not None and std == std:
        text += f" ± {float(std):.{digits}f}"
    return text
