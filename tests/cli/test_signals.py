"""Signals, read-only media and the CLI's error translation.

SIGTERM stops a run the way SIGINT does (exit 143 vs 130, one line saying how to resume, the
checkpoint kept); a valid store on read-only media is readable by ``runs`` and ``table``, and
reading never creates files beside it; known failures are one line, unknown ones say how to see
the traceback.
"""

from __future__ import annotations

import errno
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dal_backdoor.checkpoint import load_checkpoint
from dal_backdoor.cli import translate_error
from dal_backdoor.errors import ConfigError
from dal_backdoor.store import ResultsStore
from tests.helpers import (
    TINY_DATA,
    TINY_TRAIN,
    assert_cli_error,
    cli_env,
    execute_sql,
    invoke,
    make_table_store,
    snapshot,
)

TRAIN = ["train", *TINY_DATA, "--width", "4", "--epochs", "5000", "--no-augment",
         "--device", "cpu"]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_training(tmp: Path, signum: int) -> subprocess.CompletedProcess[str]:
    env = cli_env(OMP_NUM_THREADS="1")
    # SIGINT at its default in the child, even when the test runner was started with SIGINT
    # ignored (a background job of a non-interactive shell, e.g. under nohup).
    proc = subprocess.Popen([sys.executable, "-m", "dal_backdoor", *TRAIN, "--out",
                             str(tmp / "run"), "--db", str(tmp / "r.db")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    deadline = time.monotonic() + 240
    while not (tmp / "run" / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint within 240 s"
        time.sleep(0.1)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.slow  # trains in a subprocess until the signal
@pytest.mark.parametrize(("signum", "name", "code"), [(signal.SIGTERM, "SIGTERM", 143),
                                                      (signal.SIGINT, "SIGINT", 130)])
def test_train_stops_on_a_signal_and_says_how_to_resume(tmp_path: Path, signum: int,
                                                        name: str, code: int) -> None:
    done = _interrupt_training(tmp_path, signum)
    assert done.returncode == code, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"Error: interrupted by {name};")
    assert "--resume" in lines[0]
    assert str(tmp_path / "run") in lines[0]
    assert "Traceback" not in done.stderr
    with ResultsStore(tmp_path / "r.db", readonly=True) as store:
        (record,) = store.list_runs()
        state = load_checkpoint(tmp_path / "run" / "checkpoint.pt",
                                expected_run_id=record.run_id)
        assert record.status == "running"  # resumable, like a killed run
        assert [e["epoch"] for e in store.epochs(record.run_id)] == list(
            range(1, state["epoch"] + 1))
    assert not list((tmp_path / "run").glob(".*.tmp"))


# -- read-only stores ---------------------------------------------------------------------------

def _read_commands(db: Path) -> list[list[str]]:
    return [["runs", "--db", str(db)], ["runs", "--db", str(db), "--run", "r0"],
            ["table", "table6", "--preset", "ci", "--db", str(db), "--format", "md"]]


def test_reading_a_store_creates_nothing_beside_it(tmp_path: Path, table_store: Path) -> None:
    db = table_store
    before = snapshot(tmp_path)
    for args in _read_commands(db):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert snapshot(tmp_path) == before, args  # no -wal, no -shm


def test_reading_a_store_while_a_writer_holds_it_open(table_store: Path) -> None:
    db = table_store
    with ResultsStore(db) as writer:  # a sweep in progress: WAL has uncommitted-to-main data
        writer.record_epoch("r0", 2, {"clean_acc": 0.75})
        assert Path(f"{db}-wal").exists()
        result = invoke("runs", "--db", str(db), "--run", "r0")
        assert result.exit_code == 0, result.output
        assert "75.00%" in result.output  # the WAL's content is read too


@pytest.fixture
def readonly_dir(tmp_path: Path):
    """A folder on a read-only file system (a read-only bind mount when root, else a folder
    without write permission)."""
    src, ro = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    ro.mkdir()
    if os.geteuid() == 0:
        mount = subprocess.run(["mount", "--bind", str(src), str(ro)], capture_output=True)
        remount = subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)],
                                 capture_output=True) if mount.returncode == 0 else mount
        if remount.returncode != 0:
            if mount.returncode == 0:
                subprocess.run(["umount", str(ro)], check=True)
            pytest.skip("cannot make a read-only mount here")
        try:
            yield src, ro
        finally:
            subprocess.run(["umount", str(ro)], check=True)
        return
    yield src, src
    src.chmod(0o755)


def _make_readonly(src: Path) -> None:
    if os.geteuid() != 0:
        src.chmod(0o555)


@pytest.mark.parametrize("with_wal", [False, True], ids=["checkpointed", "leftover-wal"])
def test_store_on_read_only_media_is_readable(readonly_dir: tuple[Path, Path],
                                              with_wal: bool) -> None:
    src, ro = readonly_dir
    db = make_table_store(src / "r.db")
    if with_wal:  # a writer that was killed leaves its -wal and -shm files
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("UPDATE runs SET error = 'x'")
        conn.commit()
        wal = {p.name: p.read_bytes() for p in src.iterdir()}  # while the writer is open
        assert {"r.db-wal", "r.db-shm"} <= set(wal)
        conn.close()
        for name, data in wal.items():
            (src / name).write_bytes(data)
    _make_readonly(src)
    before = snapshot(ro)
    for args in _read_commands(ro / "r.db"):
        result = invoke(*args)
        assert result.exit_code == 0, (args, result.output)
        assert "Error" not in result.output
    assert snapshot(ro) == before


def test_writing_to_a_store_on_read_only_media_is_one_line(
        readonly_dir: tuple[Path, Path]) -> None:
    src, ro = readonly_dir
    make_table_store(src / "r.db")
    _make_readonly(src)
    before = snapshot(ro)
    result = invoke(*TINY_TRAIN, "--out", str(ro / "run"), "--db", str(ro / "r.db"))
    assert_cli_error(result)
    assert snapshot(ro) == before


# -- error translation --------------------------------------------------------------------------

@pytest.mark.parametrize(("exc", "code", "text"), [
    (ConfigError("lr=-1 is not in (0, inf)"), 2, "lr=-1 is not in (0, inf)"),
    (OSError(errno.ENOSPC, "No space left on device", "run/model.pt"), 2,
     "no space left on device while writing run/model.pt"),
    (OSError(errno.EROFS, "Read-only file system", "r.db"), 2, "read-only file system"),
    (sqlite3.DatabaseError("database disk image is malformed"), 2,
     "results store error: database disk image is malformed"),
    (MemoryError(), 2, "out of memory"),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate "
                  "memory: you tried to allocate 1099511627776 bytes"), 2, "out of memory"),
    (TypeError("unsupported operand"), 1, "unexpected TypeError: unsupported operand (a bug; "
     "run with -v for the traceback)"),
])
def test_translate_error(exc: Exception, code: int, text: str) -> None:
    message, got = translate_error(exc)
    assert got == code
    assert text in message


def test_unexpected_errors_are_one_line_and_verbose_shows_the_traceback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise TypeError("a bug")

    monkeypatch.delenv("DAL_BACKDOOR_DEBUG", raising=False)
    monkeypatch.setattr("dal_backdoor.store.ResultsStore", broken)
    monkeypatch.setenv("DAL_BACKDOOR_DB", __file__)  # exists, so the command opens it
    result = invoke("runs")
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: unexpected TypeError: a bug (a bug; run with -v "
                                     "for the traceback)")
    result = invoke("-v", "runs")
    assert isinstance(result.exception, TypeError)  # the real exception, with its traceback


def test_corrupt_store_rows_are_one_line_naming_the_store(table_store: Path) -> None:
    db = execute_sql(table_store, "UPDATE runs SET config = '{not json'")
    for args in _read_commands(db):
        line = assert_cli_error(invoke(*args))
        assert f"results store {db} holds invalid JSON" in line
