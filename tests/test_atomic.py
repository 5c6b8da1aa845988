"""Atomic writes: a failure leaves neither the output nor a temporary file behind."""

from __future__ import annotations

import json
import os
import stat

import pytest

from medgen.atomic import atomic_dir, atomic_path, write_json


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out" / "table.tsv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_write_json_is_deterministic_and_readable(tmp_path):
    target = tmp_path / "m.json"
    write_json(target, {"b": 1, "a": [1.5, 2]})
    first = target.read_bytes()
    write_json(target, {"a": [1.5, 2], "b": 1})
    assert target.read_bytes() == first
    assert json.loads(first) == {"a": [1.5, 2], "b": 1}


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_file_mode_follows_umask(tmp_path, umask):
    """mkstemp makes 0600; the output must get the mode a plain open() gives (0666 & ~umask),
    so under the usual 022 group/other can read what the lab shares."""
    target = tmp_path / "m.json"
    plain = tmp_path / "plain.txt"
    previous = os.umask(umask)
    try:
        write_json(target, {"a": 1})
        with open(plain, "w") as handle:
            handle.write("x")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE(target.stat().st_mode)
    assert mode == 0o666 & ~umask
    assert mode == stat.S_IMODE(plain.stat().st_mode)
    if umask == 0o022:
        assert mode == 0o644


def test_atomic_dir_replaces_on_success_and_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "prepared"
    out.mkdir()
    (out / "old.npz").write_text("stale")
    with atomic_dir(out) as tmp:
        assert tmp.parent == tmp_path and not list(tmp.iterdir())
        (tmp / "new.npz").write_text("fresh")
    assert sorted(p.name for p in out.iterdir()) == ["new.npz"]
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "half.npz").write_text("x")
            raise RuntimeError("killed")
    assert sorted(p.name for p in out.iterdir()) == ["new.npz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prepared"]
