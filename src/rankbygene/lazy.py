"""Package exports imported on first use (PEP 562), so light modules stay light.

A package ``__init__`` that re-exports names from heavy modules (torch, Lightning)
declares them here instead of importing them; ``import rankbygene.training.config``
then does not load torch, which keeps the command line quick to start.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for a package.

    Args:
        package: the package's ``__name__`` (for error messages).
        exports: exported name → module that defines it.

    Example:
        ``__getattr__, __dir__, __all__ = lazy_exports(__name__, {"train": "pkg.run"})``
    """
    names = sorted(exports)

    def getattr_(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    def dir_() -> list[str]:
        return names

    return getattr_, dir_, names
