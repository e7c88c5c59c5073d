"""Atomic file writes, strict JSON, and reads whose errors name the file.

Every writer of results, configs, cards and weights goes through these helpers:
write to a hidden temporary file in the same directory (same filesystem), then
``os.replace`` it onto the target. JSON goes through :func:`write_json`, which turns
NaN/inf into ``null`` (strict parsers reject ``NaN``) and numpy values into Python ones.

A process killed mid-write leaves its hidden temporary file (``.NAME.tmp-PID``), which
no reader lists; :func:`remove_stale_temps` deletes those of dead processes before a
command writes into a directory again. Readers open JSON (:func:`read_json`) and HDF5
(:func:`open_hdf5`) through helpers whose errors start with the file's path and say
what to do, so a truncated or hand-edited file is an error a user can act on.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import h5py

__all__ = [
    "HDF5_UNREADABLE",
    "atomic_path",
    "json_safe",
    "open_hdf5",
    "read_json",
    "remove_stale_temps",
    "write_bytes_atomic",
    "write_json",
    "write_text_atomic",
]

#: What :func:`open_hdf5` says of a file HDF5 cannot open (cut short, or another format).
HDF5_UNREADABLE = "truncated or not an HDF5 file"
_TEMP = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)$")


def _temp_path(path: Path) -> Path:
    """The hidden temporary file of ``path`` for this process."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (a pid reused by another counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temps(directory: str | Path) -> list[Path]:
    """Delete the temporary files that killed writers left in ``directory`` (not below).

    Only files named like :func:`atomic_path`'s temporaries whose process is no longer
    running are removed; a live writer's file is kept.

    Returns:
        The files removed.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for path in directory.iterdir():
        match = _TEMP.match(path.name)
        if match and path.is_file() and not _alive(int(match["pid"])):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _umask() -> int:
    """The process umask (read without changing it where /proc says it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: the only portable read is set-and-restore
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``.

    The temporary file is removed if the block raises, so a crash leaves the old
    file (or nothing) behind. The file gets the mode the umask gives new files,
    whatever mode its writer created it with. An ``OSError`` on the temporary file (a full disk, a
    read-only directory) is raised again naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    try:
        yield tmp
        # Some writers (safetensors) create their file 0600; give it the mode any
        # new file gets, so weights are as readable as the rest of the output.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as err:
        # A failed write of the temporary file (a full disk, a read-only directory) says
        # the temporary's name, or no name at all: name the file being written instead.
        about_tmp = err.filename is None or Path(err.filename) == tmp
        if err.strerror and about_tmp:
            raise type(err)(err.errno, err.strerror, str(path)) from err
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes_atomic(path: str | Path, data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path.

    A full disk or a read-only directory raises :class:`OSError` from the write, and
    the temporary file is removed.
    """
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _then(fix: str) -> str:
    return f"; {fix}" if fix else ""


def read_json(path: str | Path, *, required: Sequence[str] = (), fix: str = "") -> Any:
    """Read a JSON file; errors start with the path and end with ``fix``.

    Args:
        path: the file.
        required: keys the file's object must hold.
        fix: what the user should do about a bad file (e.g. the command that re-creates it).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not valid JSON (e.g. cut short), not an object, or lacking a key.
    """
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}){_then(fix)}") from err
    if required:
        if not isinstance(value, dict):
            raise ValueError(f"{path}: must hold a JSON object{_then(fix)}")
        missing = [k for k in required if k not in value]
        if missing:
            raise ValueError(f"{path}: lacks field(s) {missing}{_then(fix)}")
    return value


def open_hdf5(path: str | Path, mode: str = "r", *, fix: str = "") -> h5py.File:
    """``h5py.File(path, mode)``; a file HDF5 cannot open is named, with ``fix``.

    HDF5 checks the file's recorded size when it opens it, so a file cut short (an
    interrupted copy) fails here rather than halfway through a read.

    Raises:
        FileNotFoundError: no such file.
        OSError: ``"{path}: truncated or not an HDF5 file (...); {fix}"``.
    """
    import h5py  # light modules import fileio; only HDF5 readers need h5py

    if "r" in mode and not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such file{_then(fix)}")
    try:
        return h5py.File(path, mode)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise OSError(f"{path}: {HDF5_UNREADABLE} ({err}){_then(fix)}") from err


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
