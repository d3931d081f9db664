from __future__ import annotations

import json
from pathlib import Path

import pytest

from dal_backdoor.io import (
    atomic_open,
    atomic_write_json,
    atomic_write_text,
    remove_stale_temp_files,
)


def test_atomic_write_replaces_content(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.json"
    atomic_write_json(target, {"b": 1, "a": [1, 2]})
    assert json.loads(target.read_text()) == {"a": [1, 2], "b": 1}
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.json"]


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(target, "w") as fh:
        fh.write("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_remove_stale_temp_files(tmp_path: Path) -> None:
    (tmp_path / ".ckpt.pt.abc.tmp").write_text("x")
    (tmp_path / "keep.txt").write_text("y")
    assert remove_stale_temp_files(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    assert remove_stale_temp_files(tmp_path / "missing") == 0
