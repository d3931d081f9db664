"""Atomic file writes: a temp file in the same directory, fsync, then ``os.replace``.

A reader (or a run killed mid-write) sees either the old file or the new one, never half of one.
A target that exists and is not a regular file (a device node, a FIFO, a socket, a directory) is
never replaced: ``os.replace`` would silently swap it for a regular file, so every writer refuses
it with a ``ConfigError``. ``check_output_file`` / ``check_output_dir`` make the same checks up
front, so a command can refuse a bad output path before it writes anything.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from dal_backdoor.errors import ConfigError
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
    refuse_non_regular(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, _default_mode())  # mkstemp creates 0600 files
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        crash_point("atomic-write")
        refuse_non_regular(path)  # may have appeared while the temp file was written
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


# -- output paths -------------------------------------------------------------------------------

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"))


def file_kind(mode: int) -> str:
    """What an ``st_mode`` is, in words ("a regular file", "a character device", ...)."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((word for test, word in _KINDS if test(mode)), "not a regular file")


def _stat(path: Path) -> os.stat_result | None:
    """``os.stat`` (symlinks followed) or None when nothing is there."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def refuse_non_regular(path: str | os.PathLike[str], what: str = "output file") -> None:
    """ConfigError when ``path`` exists and is not a regular file (never replace one)."""
    st = _stat(Path(path))
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{what} {path} exists and is {file_kind(st.st_mode)}, not a regular "
                          "file; refusing to replace it (choose another path)")


def _check_creatable(path: Path, what: str) -> None:
    """The first existing ancestor of ``path`` must be a writable directory."""
    probe = path.parent
    while _stat(probe) is None and probe.parent != probe:
        probe = probe.parent
    st = _stat(probe)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        kind = "" if stat.S_ISREG(st.st_mode) else f"{file_kind(st.st_mode)}, "
        raise ConfigError(f"{what} {path} cannot be created: {probe} is {kind}not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path} cannot be written: the directory {probe} is not "
                          "writable")


def check_output_file(path: str | os.PathLike[str], what: str = "output file") -> Path:
    """``path`` as a Path if a file can be (re)written there atomically, else ConfigError.

    Refused: an empty path, an existing path that is not a regular file (directory, device,
    FIFO, socket), a parent that is not a directory, a directory that is not writable.
    """
    if os.fspath(path) == "":
        raise ConfigError(f"{what}: an empty path is not allowed; allowed: a file path")
    path = Path(path)
    refuse_non_regular(path, what)
    _check_creatable(path, what)
    return path


def check_output_dir(path: str | os.PathLike[str], what: str = "output directory",
                     entries: Iterable[str] = ()) -> Path:
    """``path`` as a Path if it is (or can be created as) a writable directory, else ConfigError.

    ``entries`` are names or glob patterns (e.g. ``"*.png"``, ``"*"``) of what will be written
    inside: an existing entry that matches one and is not a regular file is refused too.
    """
    if os.fspath(path) == "":
        raise ConfigError(f"{what}: an empty path is not allowed; allowed: a directory path")
    path = Path(path)
    st = _stat(path)
    if st is None:
        _check_creatable(path, what)
        return path
    if stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{what} {path} is a file, not a directory")
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{what} {path} exists and is {file_kind(st.st_mode)}, not a "
                          "directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path} is not writable")
    _check_entries(path, list(entries), what)
    return path


def _check_entries(path: Path, patterns: list[str], what: str) -> None:
    """Entries named in ``patterns`` must be regular files; entries matched by a wildcard may
    also be directories (e.g. a run folder's sub-folders), never devices, FIFOs or sockets."""
    if not patterns:
        return
    for entry in sorted(os.listdir(path)):
        if entry in patterns:
            refuse_non_regular(path / entry, f"{what} entry")
        elif any(fnmatch.fnmatchcase(entry, p) for p in patterns):
            st = _stat(path / entry)
            if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                refuse_non_regular(path / entry, f"{what} entry")
