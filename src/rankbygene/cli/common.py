"""Helpers shared by the CLI modules."""

from __future__ import annotations


def parse_ids(value: str | None) -> list[str] | None:
    """``"A, B,C"`` -> ``["A", "B", "C"]``; empty or None -> None."""
    if not value:
        return None
    ids = [s.strip() for s in value.split(",") if s.strip()]
    return ids or None
