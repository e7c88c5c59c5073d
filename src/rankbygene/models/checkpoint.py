"""Reading weight files and loading them strictly into a backbone.

Weights are never unpickled beyond plain tensors and containers: torch files are read
with ``weights_only=True``, so a file whose loading would run code is refused. Every
read error starts with the file's path (truncated, not that format, unsafe).
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

logger = logging.getLogger(__name__)

# wrappers that training frameworks put in front of parameter names
STRIP_PREFIXES: tuple[str, ...] = ("module.", "model.", "backbone.", "_orig_mod.")
# keys under which full training checkpoints nest the weights
NESTED_KEYS: tuple[str, ...] = ("state_dict", "model", "module")
_N_EXAMPLES = 5

StateFilter = Callable[[dict[str, torch.Tensor], nn.Module], Mapping[str, torch.Tensor]]


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (CPU); a damaged file is named.

    Raises:
        FileNotFoundError: no such file.
        OSError: ``"{path}: truncated or not a safetensors file (...)"``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        return load_file(path, device="cpu")
    except SafetensorError as err:
        raise OSError(
            f"{path}: truncated or not a safetensors file ({err}); restore or re-create it"
        ) from err


def load_torch_file(path: str | Path, *, mmap: bool = False) -> object:
    """``torch.load`` restricted to tensors and plain containers (``weights_only=True``).

    Args:
        path: a file written by ``torch.save`` (a state dict, a Lightning checkpoint).
        mmap: map the tensors instead of reading them (a cheap check of a large file:
            the whole pickle is still parsed and checked).

    Raises:
        ValueError: the file would run code when loaded (refused, never run).
        OSError: a truncated file or not a torch file.
    """
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path}: holds objects other than tensors, and loading it would run code from "
            "the file (unsafe unpickling, refused). If you trust its source, load it in a "
            "session of your own and save model.state_dict() or convert it to safetensors."
        ) from err
    # torch reports a damaged zip container or a pickle cut short with these
    except (RuntimeError, EOFError) as err:
        raise OSError(
            f"{path}: truncated or not a file written by torch.save ({err}); restore or "
            "re-create it"
        ) from err


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from safetensors or a torch file (``weights_only=True``).

    A training checkpoint that nests the weights under ``state_dict``/``model``/
    ``module`` is unwrapped.

    Args:
        path: A ``.safetensors`` file or a file written by ``torch.save``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file holds no tensor mapping, or needs unsafe unpickling.
        OSError: a truncated file, or not of its format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file {path} does not exist; download the weights and pass the local "
            "file path (safetensors or a torch state dict)."
        )
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    return _unwrap(load_torch_file(path), path)


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """Find the tensor mapping inside a loaded checkpoint object."""
    if isinstance(obj, Mapping):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        for key in NESTED_KEYS:
            if isinstance(obj.get(key), Mapping):
                return _unwrap(obj[key], path)
    raise ValueError(
        f"{path} holds no state dict (a mapping of parameter names to tensors, possibly "
        f"under one of {NESTED_KEYS}); save model.state_dict() instead."
    )


def strip_prefixes(
    state: Mapping[str, torch.Tensor], prefixes: Iterable[str] = STRIP_PREFIXES
) -> dict[str, torch.Tensor]:
    """Remove wrapper prefixes shared by every key (repeatedly, e.g. ``module.model.``)."""
    out = dict(state)
    prefixes = tuple(prefixes)
    changed = True
    while changed and out:
        changed = False
        for prefix in prefixes:
            if all(k.startswith(prefix) for k in out):
                out = {k[len(prefix) :]: v for k, v in out.items()}
                changed = True
    return out


def _drop(
    state: dict[str, torch.Tensor], prefixes: Iterable[str], own: set[str], why: str
) -> dict[str, torch.Tensor]:
    """Drop checkpoint keys under ``prefixes`` that the model does not have."""
    prefixes = tuple(p if p.endswith(".") else p + "." for p in prefixes if p)
    dropped = [k for k in state if k.startswith(prefixes) and k not in own]
    if dropped:
        logger.info("ignoring %d checkpoint key(s) of %s, e.g. %s", len(dropped), why, dropped[:3])
    return {k: v for k, v in state.items() if k not in set(dropped)}


def _examples(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - _N_EXAMPLES} more" if len(keys) > _N_EXAMPLES else ""
    return ", ".join(keys[:_N_EXAMPLES]) + more


def load_weights(
    module: nn.Module,
    path: str | Path,
    arch_name: str,
    ignore_prefixes: Iterable[str] = (),
    state_filter: StateFilter | None = None,
) -> None:
    """Load a weights file into ``module`` strictly.

    Wrapper prefixes are stripped; keys under ``ignore_prefixes`` (parts the
    architecture removes, e.g. layer4 of a truncated ResNet) and the classifier of a
    timm model built without one are dropped. Anything else missing, unexpected or
    of the wrong shape is an error: no partial loading.

    Args:
        module: The freshly built backbone.
        path: Weights file (see :func:`read_state_dict`).
        arch_name: Registry name, for the error message.
        ignore_prefixes: Checkpoint key prefixes to drop.
        state_filter: ``(state, module) -> state`` converting a known older layout
            (e.g. timm's Swin converter for original-format checkpoints), applied
            after prefix stripping.

    Raises:
        FileNotFoundError: missing file.
        ValueError: the checkpoint does not match the architecture.
    """
    state = strip_prefixes(read_state_dict(path))
    if state_filter is not None:
        state = dict(state_filter(state, module))
    own = module.state_dict()
    state = _drop(state, ignore_prefixes, set(own), "removed layers")
    classifier = getattr(module, "pretrained_cfg", {}).get("classifier")
    if isinstance(classifier, str) and getattr(module, "num_classes", None) == 0:
        state = _drop(state, [classifier], set(own), "the classifier head")
    missing = set(own) - set(state)
    unexpected = set(state) - set(own)
    wrong_shape = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if state[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_examples(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_examples(unexpected)}")
        if wrong_shape:
            parts.append(f"{len(wrong_shape)} shape mismatch(es): {_examples(wrong_shape)}")
        raise ValueError(
            f"checkpoint {path} does not match the architecture {arch_name!r} ("
            + "; ".join(parts)
            + "). Pass weights trained for this encoder, or pick the encoder name that "
            "matches the checkpoint."
        )
    module.load_state_dict(state, strict=True)
    logger.info("loaded %d tensors from %s into %s", len(state), path, arch_name)
