"""Atomic file writes and strict JSON: a reader sees the old file or the whole new one.

Every writer of results, configs, cards and weights goes through these helpers:
write to a hidden temporary file in the same directory (same filesystem), then
``os.replace`` it onto the target. JSON goes through :func:`write_json`, which turns
NaN/inf into ``null`` (strict parsers reject ``NaN``) and numpy values into Python ones.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atomic_path", "json_safe", "write_json", "write_text_atomic"]


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``.

    The temporary file is removed if the block raises, so a crash leaves the old
    file (or nothing) behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def json_safe(obj: Any) -> Any:
    """A copy of ``obj`` that strict JSON can hold.

    NaN and ±inf become None; numpy scalars and arrays become Python numbers and
    lists; tuples become lists; mapping keys become strings; paths become strings.
    """
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | Path, obj: Any, *, sort_keys: bool = False) -> Path:
    """Write ``obj`` as strict JSON (indented, trailing newline), atomically.

    Raises:
        TypeError: a value JSON cannot represent (after :func:`json_safe`).
    """
    text = json.dumps(json_safe(obj), indent=2, allow_nan=False, sort_keys=sort_keys) + "\n"
    return write_text_atomic(path, text)
