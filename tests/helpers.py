"""Helpers shared by the CLI tests (fixtures built on them live in ``tests/conftest.py``).

- running ``dal-backdoor`` in-process (:func:`invoke`) or in a subprocess (:func:`cli_env`);
- reading its output: :func:`output_lines`, :func:`one_error_line`, :func:`assert_cli_error`;
- what a command must leave alone: :func:`snapshot` of a folder, :func:`make_node`;
- stores: :func:`make_table_store` (valid, no training), :func:`execute_sql`,
  :func:`write_garbage_db`, :func:`write_foreign_db`;
- the smallest synthetic training run's arguments: :data:`TINY_DATA`, :data:`TINY_TRAIN`;
- the real-data reproductions' guard: :func:`require_fashion_mnist`.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dal_backdoor.cli import cli
from dal_backdoor.store import ResultsStore

REPO = Path(__file__).resolve().parents[1]

# 200 synthetic 16x16 images: the smallest data a training command accepts quickly
TINY_DATA = ["--dataset", "synthetic", "--dataset-param", "num_samples=200",
             "--dataset-param", "image_size=16"]
# one epoch of a width-4 ResNet18 on TINY_DATA; add --out and --db
TINY_TRAIN = ["train", *TINY_DATA, "--width", "4", "--epochs", "1", "--device", "cpu"]

# the one finished run that make_table_store records
TABLE_CELL = {"dataset": "cifar10", "loss": "ce", "trigger": "local", "seed": 0}


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """``dal-backdoor ARGS`` in-process, through click's test runner."""
    return CliRunner().invoke(cli, list(args), env=env)


def output_lines(output: str) -> list[str]:
    """The output's non-blank lines."""
    return [line for line in output.splitlines() if line.strip()]


def one_error_line(output: str) -> str:
    """The only non-blank line of ``output``, which must hold no traceback."""
    lines = output_lines(output)
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def assert_cli_error(result: Result, exit_code: int = 2) -> str:
    """Check that a command failed the way every bad input must (``exit_code``, one line
    starting with ``Error:``, no traceback) and return that line."""
    assert result.exit_code == exit_code, result.output
    line = one_error_line(result.output)
    assert line.startswith("Error:"), result.output
    return line


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for ``python -m dal_backdoor`` in a subprocess: this checkout first on
    PYTHONPATH, no crash injection left over from the caller, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "DAL_BACKDOOR_CRASH_AT"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every entry's mode and, for regular files, content hash (nodes are never opened)."""
    out = {}
    for p in sorted(root.rglob("*")):
        mode = os.lstat(p).st_mode
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if stat.S_ISREG(mode) else ""
        out[str(p.relative_to(root))] = (mode, digest)
    return out


def make_node(path: Path) -> str:
    """A character device (a copy of /dev/null's numbers) when root, else a FIFO."""
    if os.geteuid() == 0:
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
            return "character device"
        except OSError:
            pass
    try:
        os.mkfifo(path)
    except (OSError, AttributeError):
        pytest.skip("cannot make a device node or a FIFO here")
    return "FIFO"


def make_table_store(path: Path) -> Path:
    """A valid store holding one finished, tagged table6/ci run (no training needed)."""
    with ResultsStore(path) as store:
        store.tag_run("r0", "table6", "ci", TABLE_CELL)
        store.start_run("r0", {"dataset": "fashion-mnist", "loss": "ce", "trigger": "local",
                               "seed": 0, "epochs": 1}, {})
        store.record_epoch("r0", 1, {"clean_acc": 0.5, "asr": 0.25})
        store.finish_run("r0", {"clean_acc": 0.5, "asr": 0.25})
    return path


def execute_sql(path: Path, *statements: str) -> Path:
    """Run ``statements`` on the SQLite file at ``path`` (created if missing) and commit."""
    conn = sqlite3.connect(path)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()
    return path


def write_garbage_db(path: Path, data: bytes = b"this is not an sqlite file at all") -> Path:
    """A file that is not an SQLite database at all."""
    path.write_bytes(data * 100)
    return path


def write_foreign_db(path: Path, table: str = "people (name TEXT)") -> Path:
    """An SQLite database of another application (one unrelated table)."""
    return execute_sql(path, f"CREATE TABLE {table}")


def require_fashion_mnist(root: Path) -> None:
    """Skip the test when Fashion-MNIST is not installed, unless DAL_BACKDOOR_REQUIRE_DATA=1
    (``.ci/run`` sets it once the Debian package is installed): then its absence fails."""
    from dal_backdoor.data import create_dataset
    from dal_backdoor.errors import DataNotFoundError

    try:
        create_dataset("fashion-mnist", root, train=False)
    except DataNotFoundError as exc:
        if os.environ.get("DAL_BACKDOOR_REQUIRE_DATA") == "1":
            raise
        pytest.skip(f"Fashion-MNIST is not installed ({exc})")
