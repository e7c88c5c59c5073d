"""Typed settings from YAML and command-line flags, one way for every config dataclass.

The library takes dataclasses, never argparse; the command line builds them with
:func:`load_config`: a YAML file (optional) whose keys must be fields, then the flags
the user gave (None = not given, so the dataclass default, defined once, applies).
Nested settings are addressed with ``__`` (``mlp__epochs=3``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

__all__ = ["check_choices", "config_from_mapping", "load_config", "override"]

C = TypeVar("C")


def _nested_type(cls: type, name: str) -> type | None:
    """The dataclass type of field ``name`` of ``cls`` when its default is a dataclass."""
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name == name and f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
            if dataclasses.is_dataclass(value):
                return type(value)
    return None


def _choices(annotation: Any) -> tuple[Any, ...] | None:
    """The values a ``Literal[...]`` (or ``Literal[...] | None``) annotation allows."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if typing.get_origin(arg) is Literal:
                return typing.get_args(arg)
    return None


def check_choices(config: Any) -> None:
    """Refuse a field typed ``Literal[...]`` whose value is not one of the choices.

    A dataclass does not check its annotations; a typo in a choice (``val_split:
    random``) would otherwise pass silently. ``None`` is left to ``| None`` fields.

    Raises:
        ValueError: ``"field: 'value' is not one of a, b, c."``
    """
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        allowed = _choices(hints.get(f.name))
        value = getattr(config, f.name)
        if allowed is not None and value is not None and value not in allowed:
            raise ValueError(
                f"{f.name}: {value!r} is not one of {', '.join(str(a) for a in allowed)}."
            )


def config_from_mapping(cls: type[C], values: Mapping[str, Any], source: str = "config") -> C:
    """Build ``cls`` from a mapping, refusing unknown keys (nested dataclasses too).

    Raises:
        ValueError: naming the unknown key(s), where they came from, and the valid keys.
    """
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {unknown}; valid keys are {sorted(known)}.")
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        nested = _nested_type(cls, name)
        if nested is not None and isinstance(value, Mapping):
            value = config_from_mapping(nested, value, f"{source}: {name}")
        kwargs[name] = value
    return cls(**kwargs)


def override(config: C, **flags: Any) -> C:
    """A copy of ``config`` with the given fields replaced; None values are ignored.

    ``name__field`` replaces ``field`` of the nested settings ``name``.
    """
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in flags.items():
        if value is None:
            continue
        if "__" in key:
            outer, inner = key.split("__", 1)
            nested.setdefault(outer, {})[inner] = value
        else:
            top[key] = value
    for outer, inner in nested.items():
        top[outer] = dataclasses.replace(getattr(config, outer), **inner)
    return dataclasses.replace(config, **top)  # type: ignore[type-var]


def load_config(cls: type[C], path: str | Path | None = None, **flags: Any) -> C:
    """``cls`` from a YAML file (or its defaults), then the flags that were given.

    Raises:
        ValueError: a file that is not a YAML mapping, or unknown keys.
        FileNotFoundError: a missing file.
    """
    values: Any = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No config file {path}.")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: not valid YAML ({err}).") from err
        if not isinstance(values, Mapping):
            raise ValueError(f"{path}: a config must be a YAML mapping of setting: value.")
    return override(config_from_mapping(cls, values, str(path or cls.__name__)), **flags)
