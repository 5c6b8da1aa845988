"""Atomic writes: a failure leaves neither the output nor a temporary file behind."""

from __future__ import annotations

import json

import pytest

from medgen.atomic import atomic_path, write_json


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
    assert target.stat().st_mode & 0o044  # group/other can read what the lab shares
