"""Atomic file writes: a temp file in the same directory, fsync, then ``os.replace``.

A reader (or a run killed mid-write) sees either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from dal_backdoor.faults import crash_point

TMP_SUFFIX = ".tmp"


def _default_mode() -> int:
    """Permissions a plain ``open()`` would give a new file (0666 minus the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temp file beside ``path``; on success fsync and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, _default_mode())  # mkstemp creates 0600 files
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        crash_point("atomic-write")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_write_with(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], None]) -> None:
    """Let ``writer`` fill a binary file handle (e.g. ``torch.save``, ``PIL.Image.save``)."""
    with atomic_open(path, "wb") as fh:
        writer(fh)


def remove_stale_temp_files(directory: str | os.PathLike[str]) -> int:
    """Delete temp files left by writes that were killed; returns how many were removed."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    removed = 0
    for p in directory.glob(f".*{TMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed += 1
    return removed
