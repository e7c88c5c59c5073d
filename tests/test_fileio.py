"""Atomic writes: the target is either the old file or the complete new one."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess

import pytest

from rankbygene.fileio import (
    HDF5_UNREADABLE,
    atomic_path,
    open_hdf5,
    read_json,
    remove_stale_temps,
    write_bytes_atomic,
    write_text_atomic,
)


def test_write_text_atomic_creates_parents_and_replaces(tmp_path):
    target = tmp_path / "a" / "b.txt"
    write_text_atomic(target, "one")
    write_text_atomic(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["b.txt"]  # no temp left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_an_os_error_while_writing_names_the_target_not_the_temporary(tmp_path):
    target = tmp_path / "features.h5"
    with pytest.raises(OSError) as info, atomic_path(target):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a write() that failed
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(target))
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    child = subprocess.Popen(["sleep", "30"])
    try:
        gone = tmp_path / f".a.h5.tmp-{_exited_pid()}"
        live = tmp_path / f".b.h5.tmp-{child.pid}"
        kept = tmp_path / "c.h5.tmp-1"  # not hidden: not one of atomic_path's names
        for path in (gone, live, kept):
            path.write_text("partial")
        assert remove_stale_temps(tmp_path) == [gone]
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, kept.name])
    finally:
        child.kill()
        child.wait()


def _exited_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_write_bytes_atomic_replaces_whole(tmp_path):
    target = tmp_path / "last.ckpt"
    write_bytes_atomic(target, b"old")
    write_bytes_atomic(target, memoryview(b"new bytes"))
    assert target.read_bytes() == b"new bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_read_json_names_the_file_the_problem_and_the_fix(tmp_path):
    path = tmp_path / "card.json"
    path.write_text('{"backbone": "tiny", "emb')
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: not valid JSON .*; redo it$"):
        read_json(path, fix="redo it")
    path.write_text(json.dumps({"backbone": "tiny"}))
    with pytest.raises(ValueError, match=r"card.json: lacks field\(s\) \['embed_dim'\]$"):
        read_json(path, required=("backbone", "embed_dim"))
    assert read_json(path, required=("backbone",)) == {"backbone": "tiny"}


def test_open_hdf5_names_a_truncated_file(tmp_path):
    import h5py

    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f["a"] = list(range(1000))
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(OSError, match=rf"^{re.escape(str(path))}: {HDF5_UNREADABLE} \(.*\); fix$"):
        open_hdf5(path, fix="fix")
    with pytest.raises(FileNotFoundError, match="no such file"):
        open_hdf5(tmp_path / "missing.h5")


def test_atomic_files_get_the_umask_mode_whatever_their_writer_chose(tmp_path):
    """safetensors creates its file 0600: the result must be as readable as any file."""
    mask = os.umask(0o022)
    os.umask(mask)
    target = tmp_path / "model.safetensors"
    with atomic_path(target) as tmp:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600))
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
