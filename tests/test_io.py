from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from dal_backdoor.errors import ConfigError
from dal_backdoor.io import (
    atomic_open,
    atomic_write_json,
    atomic_write_text,
    check_output_dir,
    check_output_file,
    file_kind,
    remove_stale_temp_files,
)


def _write_then(target: Path, text: str, then: Callable[[], object]) -> None:
    """Write ``text`` through ``atomic_open`` and call ``then`` before the file is committed."""
    with atomic_open(target, "w") as fh:
        fh.write(text)
        then()


def _killed() -> None:
    raise RuntimeError("killed")


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
    with pytest.raises(RuntimeError, match="killed"):
        _write_then(target, "half", _killed)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_remove_stale_temp_files(tmp_path: Path) -> None:
    (tmp_path / ".ckpt.pt.abc.tmp").write_text("x")
    (tmp_path / "keep.txt").write_text("y")
    assert remove_stale_temp_files(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    assert remove_stale_temp_files(tmp_path / "missing") == 0


def _fifo(path: Path) -> Path:
    try:
        os.mkfifo(path)
    except (OSError, AttributeError):
        pytest.skip("FIFOs are not supported here")
    return path


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a character device needs root")
def test_atomic_write_refuses_a_device_node(tmp_path: Path) -> None:
    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    with pytest.raises(ConfigError, match=r"null exists and is a character device, not a "
                                          r"regular file; refusing to replace it"):
        atomic_write_text(node, "x")
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["null"]  # no temp file left


def test_atomic_write_refuses_a_fifo_a_directory_and_a_link_to_them(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(fifo)
    for target, kind in ((fifo, "a FIFO"), (tmp_path / "dir", "a directory"),
                         (tmp_path / "link", "a FIFO")):
        with pytest.raises(ConfigError, match=f"is {kind}, not a regular file"):
            atomic_write_json(target, {"a": 1})
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert (tmp_path / "link").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "fifo", "link"]


def test_atomic_write_refuses_a_node_that_appears_during_the_write(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    with pytest.raises(ConfigError, match="FIFO"):
        _write_then(target, "x", lambda: _fifo(target))
    assert stat.S_ISFIFO(os.lstat(target).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_check_output_file(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x")
    assert check_output_file(tmp_path / "old.txt") == tmp_path / "old.txt"
    assert check_output_file(tmp_path / "new" / "deeper.txt") == tmp_path / "new" / "deeper.txt"
    with pytest.raises(ConfigError, match="empty path"):
        check_output_file("", "--out")
    with pytest.raises(ConfigError, match=r"--out .*old.txt/x cannot be created: .*old.txt is "
                                          "not a directory"):
        check_output_file(tmp_path / "old.txt" / "x", "--out")
    with pytest.raises(ConfigError, match="is a FIFO, not a regular file"):
        check_output_file(_fifo(tmp_path / "fifo"))


def test_check_output_dir(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert check_output_dir(run, "--out", ("*",)) == run  # absent: creatable
    run.mkdir()
    (run / "sub").mkdir()
    (run / "model.pt").write_bytes(b"x")
    assert check_output_dir(run, "--out", ("*",)) == run  # files and folders are fine
    with pytest.raises(ConfigError, match=r"--out .*model.pt is a file, not a directory"):
        check_output_dir(run / "model.pt", "--out")
    (run / "manifest.json").mkdir()
    with pytest.raises(ConfigError, match="manifest.json exists and is a directory"):
        check_output_dir(run, "--out", ("manifest.json",))
    _fifo(run / "checkpoint.pt")
    with pytest.raises(ConfigError, match="checkpoint.pt exists and is a FIFO"):
        check_output_dir(run, "--out", ("*",))
    assert check_output_dir(run, "--out", ("*.png",)) == run  # only what will be written


def test_file_kind() -> None:
    assert file_kind(stat.S_IFREG | 0o644) == "a regular file"
    assert file_kind(stat.S_IFDIR | 0o755) == "a directory"
    assert file_kind(stat.S_IFCHR) == "a character device"
    assert file_kind(stat.S_IFBLK) == "a block device"
    assert file_kind(stat.S_IFSOCK) == "a socket"
