"""The results store: one SQLite file holding every run's config, provenance and metrics.

Several processes may write to one store at once (the sweep's workers): the file is in WAL mode,
each connection waits up to ``BUSY_TIMEOUT_S`` for a lock, and every write is one short
``BEGIN IMMEDIATE`` transaction. A ``ResultsStore`` owns one connection and only uses it in the
process that opened it (after a fork it opens a new one; pickling it sends only the path).

Tables (schema version ``SCHEMA_VERSION`` in ``PRAGMA user_version``; the file is marked as ours
by ``PRAGMA application_id = APPLICATION_ID``):

- ``runs``: ``run_id`` (the caller's hash of the resolved config), ``config`` JSON, ``status``
  (running, finished, failed), ``created_at``/``updated_at``/``finished_at`` (UTC ISO 8601),
  ``attempts`` (how often the run was started), provenance (``git_commit``, ``versions`` JSON,
  ``device_name``, ``host``) of the latest attempt, ``final_metrics`` JSON, ``error`` text,
  ``pid`` of the process running the latest attempt (its heartbeat is ``updated_at``, set at
  every epoch; see :func:`run_state`). ``pid`` is an additive, nullable column: a store
  written before it existed gets it on its first writable open (schema version unchanged, as
  older versions of dal-backdoor read such a store unchanged) and is read as "pid unknown".
- ``epochs``: one metrics JSON per (run, epoch).
- ``manifests``: one JSON per run (e.g. which training images were poisoned).
- ``tags``: which sweep grid / preset / table cell a run id stands for (tags may exist before the
  run is started).

JSON is strict: keys sorted, NaN and infinities stored as null, numpy / torch scalars stored as
Python numbers (and arrays as lists).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import platform
import sqlite3
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from dal_backdoor.errors import StoreError
from dal_backdoor.faults import crash_point
from dal_backdoor.validation import check_choice, check_number

log = logging.getLogger(__name__)

APPLICATION_ID = 0x44414C42  # "DALB"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 60.0
STATUSES = ("running", "finished", "failed")
#: A running run whose heartbeat (``updated_at``) is older than this, and whose process cannot
#: be checked (another host, or no pid recorded), is taken as interrupted.
HEARTBEAT_TIMEOUT_S = 24 * 3600.0
EXPORT_FORMAT = "dal-backdoor-run"

_SCHEMA = (
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        finished_at TEXT,
        attempts INTEGER NOT NULL DEFAULT 1,
        git_commit TEXT,
        versions TEXT NOT NULL DEFAULT '{}',
        device_name TEXT,
        host TEXT,
        final_metrics TEXT,
        error TEXT,
        pid INTEGER
    )""",
    """CREATE TABLE epochs (
        run_id TEXT NOT NULL REFERENCES runs(run_id),
        epoch INTEGER NOT NULL,
        metrics TEXT NOT NULL,
        PRIMARY KEY (run_id, epoch)
    )""",
    """CREATE TABLE manifests (
        run_id TEXT PRIMARY KEY REFERENCES runs(run_id),
        manifest TEXT NOT NULL
    )""",
    """CREATE TABLE tags (
        run_id TEXT NOT NULL,
        grid TEXT NOT NULL,
        preset TEXT NOT NULL,
        cell TEXT NOT NULL,
        PRIMARY KEY (run_id, grid, preset)
    )""",
    "CREATE INDEX runs_by_status ON runs (status, created_at)",
)
_TABLES = frozenset({"runs", "epochs", "manifests", "tags"})
_RUN_COLUMNS = ("run_id", "config", "status", "created_at", "updated_at", "finished_at",
                "attempts", "git_commit", "versions", "device_name", "host", "final_metrics",
                "error")
_JSON_COLUMNS = frozenset({"config", "versions", "final_metrics"})


# -- strict JSON ------------------------------------------------------------------------------

def to_jsonable(obj: Any) -> Any:
    """``obj`` with NaN/inf floats -> None, numpy/torch scalars -> Python numbers, arrays and
    tensors -> lists, tuples -> lists; dict keys must be str (ints are converted)."""
    if obj is None or isinstance(obj, (bool, str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(f"JSON object keys must be str, got {key!r}")
            out[str(key)] = to_jsonable(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "dtype") and hasattr(obj, "tolist"):  # numpy / torch, without importing them
        return to_jsonable(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item):
        return to_jsonable(obj.item())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot store {type(obj).__name__} {obj!r} as JSON")


def dumps(obj: Any) -> str:
    """Strict, canonical JSON text (sorted keys, no NaN)."""
    return json.dumps(to_jsonable(obj), sort_keys=True, allow_nan=False, separators=(",", ":"))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def utc_now() -> str:
    """The current time, UTC, ISO 8601 with microseconds (e.g. 2024-05-01T12:00:00.123456+00:00)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


# -- records ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunRecord:
    """One row of ``runs`` with its JSON fields parsed."""

    run_id: str
    config: dict[str, Any]
    status: str
    created_at: str
    updated_at: str
    finished_at: str | None
    attempts: int
    git_commit: str | None
    versions: dict[str, Any] = field(default_factory=dict)
    device_name: str | None = None
    host: str | None = None
    final_metrics: dict[str, Any] | None = None
    error: str | None = None
    pid: int | None = None  # not exported: it only means something on its host, while running

    @property
    def provenance(self) -> dict[str, Any]:
        return {"git_commit": self.git_commit, "versions": dict(self.versions),
                "device_name": self.device_name, "host": self.host}

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _RUN_COLUMNS}


def _record(row: sqlite3.Row) -> RunRecord:
    values = {k: (_loads(row[k]) if k in _JSON_COLUMNS else row[k]) for k in _RUN_COLUMNS}
    values["versions"] = values["versions"] or {}
    # a store from before pid (``in row`` would search the values of a sqlite3.Row)
    values["pid"] = row["pid"] if "pid" in row.keys() else None  # noqa: SIM118
    return RunRecord(**values)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):
        return False
    return True


def run_state(record: RunRecord, *, host: str | None = None,
              now: datetime | None = None) -> str:
    """The run's status, with ``running`` told apart from ``interrupted`` (killed, e.g. by
    SIGKILL or a power loss, so nothing could mark it failed): on the host that runs it
    (``host``, default this one) a running run is interrupted when its recorded pid is not
    alive; elsewhere, or without a pid, when its heartbeat is older than
    ``HEARTBEAT_TIMEOUT_S``."""
    if record.status != "running":
        return record.status
    if record.pid is not None and record.host == (host or platform.node()):
        return "running" if pid_alive(record.pid) else "interrupted"
    try:
        beat = datetime.fromisoformat(record.updated_at)
    except (TypeError, ValueError):
        return "running"
    age = ((now or datetime.now(timezone.utc)) - beat).total_seconds()
    return "interrupted" if age > HEARTBEAT_TIMEOUT_S else "running"


def store_error(path: Path, exc: Exception) -> StoreError:
    """A StoreError naming the store file for an SQLite or JSON error met while using it."""
    text = " ".join(str(exc).split())
    if isinstance(exc, sqlite3.OperationalError) and "full" in text:
        return StoreError(f"cannot write results store {path}: {text} (free some space)")
    if isinstance(exc, ValueError):  # json.JSONDecodeError
        return StoreError(f"results store {path} holds invalid JSON ({text}); it was edited "
                          "or is corrupt")
    return StoreError(f"results store {path} cannot be used: {text}")


_R = TypeVar("_R")


def _reading(method: Callable[..., _R]) -> Callable[..., _R]:
    """Reads that decode stored JSON: a corrupt row is a StoreError naming the file."""

    @functools.wraps(method)
    def wrapper(self: ResultsStore, *args: Any, **kwargs: Any) -> _R:
        try:
            return method(self, *args, **kwargs)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise store_error(self.path, exc) from exc

    return wrapper


# -- the store --------------------------------------------------------------------------------

class ResultsStore:
    """A results store in the SQLite file ``path`` (see the module docstring).

    ``create=False`` refuses a missing file; ``readonly=True`` never creates or modifies the
    file (a missing file is an error, and write methods raise ``StoreError``; SQLite may leave its
    ``-wal``/``-shm`` side files beside it, which the next writer cleans up). A file that is not
    SQLite, is another application's database, or has a newer schema raises ``StoreError``.
    A new or empty file is initialised (safe when several processes do it at once).
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True,
                 readonly: bool = False) -> None:
        self.path = Path(path)
        self.create = create
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._inherited: list[sqlite3.Connection] = []
        self._connect()

    # -- connection ---------------------------------------------------------------------------
    def _connect(self) -> None:
        self._check_path()
        exists = self.path.exists()
        if not exists and (self.readonly or not self.create):
            raise StoreError(f"no results store at {self.path}")
        if not exists:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if self.readonly:
                conn = self._open_readonly()
            else:
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open results store {self.path}: {exc}") from None
        conn.row_factory = sqlite3.Row
        self._conn = conn
        self._pid = os.getpid()
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._check_or_initialise()
            if not self.readonly:
                conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            self._conn = None
            conn.close()
            raise

    def _check_path(self) -> None:
        """Refuse a path that is not a regular file (a directory, device, FIFO, socket)."""
        from dal_backdoor.io import file_kind

        try:
            mode = os.stat(self.path).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return
        if not stat.S_ISREG(mode):
            raise StoreError(f"{self.path} is {file_kind(mode)}, not a results store")

    def _open_readonly(self) -> sqlite3.Connection:
        """A read-only connection that creates nothing beside the file.

        With a ``-wal`` file present (a writer is active or was killed) SQLite needs its
        ``-shm`` index: ``mode=ro`` reads the WAL too. Without one every committed row is in the
        main file (the last writer checkpointed it), so ``immutable=1`` reads it without the
        ``-wal``/``-shm`` files SQLite would otherwise create, which also works on read-only
        media. If ``mode=ro`` cannot open the file (e.g. a ``-wal`` on a read-only medium) the
        file is read immutable, without the un-checkpointed WAL content.
        """
        base = self.path.resolve().as_uri()
        wal = Path(f"{self.path}-wal").exists()
        if wal:
            conn = sqlite3.connect(base + "?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S,
                                   isolation_level=None)
            try:
                conn.execute("PRAGMA schema_version").fetchone()
                return conn
            except sqlite3.OperationalError:  # cannot open the WAL index: read-only medium
                conn.close()
                log.warning("reading %s without its -wal file (read-only medium?)", self.path)
            except sqlite3.DatabaseError:  # not SQLite at all: _identity says so
                return conn
        return sqlite3.connect(base + "?mode=ro&immutable=1", uri=True,
                               timeout=BUSY_TIMEOUT_S, isolation_level=None)

    def _identity(self) -> tuple[int, int, set[str]]:
        conn = self._require()
        own = not conn.in_transaction  # one snapshot for all three reads (another process may
        try:                            # be initialising the file between them)
            if own:
                conn.execute("BEGIN")
            try:
                app_id = conn.execute("PRAGMA application_id").fetchone()[0]
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                tables = {r[0] for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'")}
            finally:
                if own and conn.in_transaction:
                    conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # locked beyond the timeout, unreadable, ...
            raise StoreError(f"cannot read results store {self.path}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a results store (not an SQLite database: "
                             f"{exc})") from None
        return app_id, version, tables

    def _check_identity(self, app_id: int, version: int, tables: set[str]) -> bool:
        """True when the file is a store of a usable schema; False when it is empty (new)."""
        if app_id == 0 and not tables and version == 0:
            return False
        if app_id != APPLICATION_ID:
            what = f"application_id {app_id:#x}" if app_id else "tables " + ", ".join(
                sorted(tables))
            raise StoreError(f"{self.path} is an SQLite database of another application "
                             f"({what}), not a dal-backdoor results store")
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has results store schema version {version}, newer "
                             f"than this dal-backdoor supports ({SCHEMA_VERSION}); upgrade "
                             "dal-backdoor")
        foreign = tables - _TABLES
        if foreign or version < 1 or not tables.issuperset(_TABLES):
            raise StoreError(f"{self.path} is not a valid results store (schema version "
                             f"{version}, tables {', '.join(sorted(tables)) or 'none'})")
        return True

    def _check_or_initialise(self) -> None:
        if self._check_identity(*self._identity()):
            if not self.readonly:
                self._set_wal()
                self._add_pid_column()
            return
        if self.readonly:
            raise StoreError(f"{self.path} is an empty file, not a results store")
        self._set_wal()
        with self._write() as conn:  # re-check under the write lock: another process may race
            if self._check_identity(*self._identity()):
                return
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        log.info("initialised results store %s", self.path)

    def _add_pid_column(self) -> None:
        """Migrate a store from before the ``pid`` column (additive; see the module doc)."""
        def has_pid(conn: sqlite3.Connection) -> bool:
            return any(r[1] == "pid" for r in conn.execute("PRAGMA table_info(runs)"))

        if has_pid(self._require()):
            return
        with self._write() as conn:  # re-checked under the write lock: another may race
            if not has_pid(conn):
                conn.execute("ALTER TABLE runs ADD COLUMN pid INTEGER")
                log.info("results store %s: added the runs.pid column", self.path)

    def _set_wal(self) -> None:
        conn = self._require()
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:  # another process holds the lock
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise StoreError(f"cannot open results store {self.path}: {exc}") from None
                time.sleep(0.05)
        if str(mode).lower() != "wal":
            log.warning("results store %s is in journal mode %s, not WAL", self.path, mode)
        conn.execute("PRAGMA synchronous = NORMAL")

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"results store {self.path} is closed")
        if self._pid != os.getpid():  # forked: never use the parent's connection
            self._inherited.append(self._conn)
            self._conn = None
            self._connect()
            assert self._conn is not None
        return self._conn

    class _Transaction:
        def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
            self.conn, self.path = conn, path

        def __enter__(self) -> sqlite3.Connection:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as exc:
                raise store_error(self.path, exc) from exc
            return self.conn

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            try:
                if exc_type is None:
                    crash_point("store-write")
                    self.conn.execute("COMMIT")
                elif self.conn.in_transaction:  # some errors have rolled back already
                    self.conn.execute("ROLLBACK")
            except sqlite3.DatabaseError as err:
                raise store_error(self.path, err) from err
            if isinstance(exc, sqlite3.DatabaseError):
                raise store_error(self.path, exc) from exc

    def _write(self) -> ResultsStore._Transaction:
        if self.readonly:
            raise StoreError(f"results store {self.path} is opened read-only")
        return ResultsStore._Transaction(self._require(), self.path)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": str(self.path), "create": self.create, "readonly": self.readonly}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], create=state["create"], readonly=state["readonly"])

    def __repr__(self) -> str:
        mode = "readonly" if self.readonly else "rw"
        return f"ResultsStore({str(self.path)!r}, {mode})"

    # -- helpers ------------------------------------------------------------------------------
    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            return self._require().execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise store_error(self.path, exc) from exc

    def _require_run(self, conn: sqlite3.Connection, run_id: str) -> None:
        if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
            raise StoreError(f"no run {run_id!r} in results store {self.path}")

    @staticmethod
    def _check_run_id(run_id: str) -> str:
        if not isinstance(run_id, str) or not run_id:
            raise StoreError(f"run_id={run_id!r} is not allowed; allowed: a non-empty string")
        return run_id

    # -- writes -------------------------------------------------------------------------------
    def start_run(self, run_id: str, config: Mapping[str, Any],
                  provenance: Mapping[str, Any], pid: int | None = None) -> RunRecord:
        """Record that ``run_id`` starts (attempt 1) or starts again (attempts + 1, status
        running, final metrics and error cleared, recorded epochs and manifest kept). The config
        and provenance are those of the latest attempt; ``pid`` is the process that runs it
        (on ``provenance['host']``), for :func:`run_state`."""
        self._check_run_id(run_id)
        now = utc_now()
        values = (dumps(config), provenance.get("git_commit"),
                  dumps(provenance.get("versions") or {}), provenance.get("device_name"),
                  provenance.get("host"))
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs (run_id, config, status, created_at, updated_at, attempts, "
                "git_commit, versions, device_name, host, pid) "
                "VALUES (?, ?, 'running', ?, ?, 1, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id) DO UPDATE SET status = 'running', "
                "attempts = attempts + 1, updated_at = excluded.updated_at, "
                "finished_at = NULL, final_metrics = NULL, error = NULL, "
                "config = excluded.config, git_commit = excluded.git_commit, "
                "versions = excluded.versions, device_name = excluded.device_name, "
                "host = excluded.host, pid = excluded.pid",
                (run_id, values[0], now, now, *values[1:], pid),
            )
        record = self.get_run(run_id)
        assert record is not None
        return record

    def record_epoch(self, run_id: str, epoch: int, metrics: Mapping[str, Any]) -> None:
        """Insert or replace the metrics of ``epoch``; the stored dict always has ``epoch``."""
        epoch = check_number("epoch", epoch, low=0, integer=True)
        if "epoch" in metrics and metrics["epoch"] != epoch:
            raise ValueError(f"metrics['epoch']={metrics['epoch']!r} but epoch={epoch}")
        text = dumps({**metrics, "epoch": epoch})
        with self._write() as conn:
            self._require_run(conn, run_id)
            conn.execute(
                "INSERT INTO epochs (run_id, epoch, metrics) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id, epoch) DO UPDATE SET metrics = excluded.metrics",
                (run_id, epoch, text),
            )
            conn.execute("UPDATE runs SET updated_at = ? WHERE run_id = ?", (utc_now(), run_id))

    def truncate_epochs(self, run_id: str, after_epoch: int) -> int:
        """Delete the epochs after ``after_epoch`` (a resume from an older checkpoint); returns
        how many rows were deleted."""
        after_epoch = check_number("after_epoch", after_epoch, integer=True)
        with self._write() as conn:
            cur = conn.execute("DELETE FROM epochs WHERE run_id = ? AND epoch > ?",
                               (run_id, after_epoch))
            return cur.rowcount

    def save_manifest(self, run_id: str, manifest: Mapping[str, Any]) -> None:
        text = dumps(manifest)
        with self._write() as conn:
            self._require_run(conn, run_id)
            conn.execute(
                "INSERT INTO manifests (run_id, manifest) VALUES (?, ?) "
                "ON CONFLICT (run_id) DO UPDATE SET manifest = excluded.manifest",
                (run_id, text),
            )

    def finish_run(self, run_id: str, final_metrics: Mapping[str, Any]) -> None:
        now = utc_now()
        self._set_status(run_id, "UPDATE runs SET status = 'finished', final_metrics = ?, "
                         "error = NULL, finished_at = ?, updated_at = ? WHERE run_id = ?",
                         (dumps(final_metrics), now, now, run_id))

    def fail_run(self, run_id: str, error: str) -> None:
        self._set_status(run_id, "UPDATE runs SET status = 'failed', error = ?, "
                         "updated_at = ? WHERE run_id = ?", (str(error), utc_now(), run_id))

    def _set_status(self, run_id: str, sql: str, params: tuple[Any, ...]) -> None:
        with self._write() as conn:
            if conn.execute(sql, params).rowcount == 0:
                raise StoreError(f"no run {run_id!r} in results store {self.path}")

    def tag_run(self, run_id: str, grid: str, preset: str, cell: Mapping[str, Any]) -> None:
        """Remember that ``run_id`` is the ``cell`` of ``grid`` under ``preset`` (idempotent)."""
        self._check_run_id(run_id)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO tags (run_id, grid, preset, cell) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (run_id, grid, preset) DO UPDATE SET cell = excluded.cell",
                (run_id, grid, preset, dumps(cell)),
            )

    # -- reads --------------------------------------------------------------------------------
    @_reading
    def get_run(self, run_id: str) -> RunRecord | None:
        rows = self._query("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        return _record(rows[0]) if rows else None

    @_reading
    def list_runs(self, status: str | None = None) -> list[RunRecord]:
        """All runs (or those with ``status``), oldest first."""
        if status is None:
            rows = self._query("SELECT * FROM runs ORDER BY created_at, run_id")
        else:
            check_choice("status", status, STATUSES)
            rows = self._query("SELECT * FROM runs WHERE status = ? ORDER BY created_at, run_id",
                               (status,))
        return [_record(r) for r in rows]

    @_reading
    def epochs(self, run_id: str) -> list[dict[str, Any]]:
        """The recorded per-epoch metrics of ``run_id``, ordered by epoch."""
        rows = self._query("SELECT metrics FROM epochs WHERE run_id = ? ORDER BY epoch",
                           (run_id,))
        return [json.loads(r[0]) for r in rows]

    def last_epochs(self) -> dict[str, int]:
        """The highest recorded epoch of every run that has one."""
        rows = self._query("SELECT run_id, MAX(epoch) FROM epochs GROUP BY run_id")
        return {r[0]: r[1] for r in rows}

    @_reading
    def manifest(self, run_id: str) -> dict[str, Any] | None:
        rows = self._query("SELECT manifest FROM manifests WHERE run_id = ?", (run_id,))
        return json.loads(rows[0][0]) if rows else None

    def is_finished(self, run_id: str) -> bool:
        rows = self._query("SELECT status FROM runs WHERE run_id = ?", (run_id,))
        return bool(rows) and rows[0][0] == "finished"

    @_reading
    def tagged_runs(self, grid: str, preset: str) -> list[tuple[str, dict[str, Any]]]:
        """``(run_id, cell)`` of every run tagged with ``grid`` and ``preset``, in tag order."""
        rows = self._query("SELECT run_id, cell FROM tags WHERE grid = ? AND preset = ? "
                           "ORDER BY rowid", (grid, preset))
        return [(r[0], json.loads(r[1])) for r in rows]

    @_reading
    def tagged_grids(self) -> list[tuple[str, str]]:
        """The distinct ``(grid, preset)`` pairs of the tags, sorted."""
        rows = self._query("SELECT DISTINCT grid, preset FROM tags ORDER BY grid, preset")
        return [(r[0], r[1]) for r in rows]

    @_reading
    def tags(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._query("SELECT grid, preset, cell FROM tags WHERE run_id = ? ORDER BY rowid",
                           (run_id,))
        return [{"grid": r[0], "preset": r[1], "cell": json.loads(r[2])} for r in rows]

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` result ("ok" when the file is sound)."""
        return "\n".join(str(r[0]) for r in self._query("PRAGMA integrity_check"))

    # -- export / import ----------------------------------------------------------------------
    @_reading
    def export_run(self, run_id: str) -> dict[str, Any]:
        """Everything recorded about one run as one JSON-ready dict (for ``import_run``)."""
        record = self.get_run(run_id)
        if record is None:
            raise StoreError(f"no run {run_id!r} in results store {self.path}")
        return {
            "format": EXPORT_FORMAT,
            "schema_version": SCHEMA_VERSION,
            "run": record.to_dict(),
            "epochs": self.epochs(run_id),
            "manifest": self.manifest(run_id),
            "tags": self.tags(run_id),
        }

    def import_run(self, data: Mapping[str, Any]) -> RunRecord:
        """Write an ``export_run`` dict: the run row is replaced exactly (status, timestamps,
        attempts, provenance), its epochs and manifest replaced by the exported ones, its tags
        added. Importing the same export twice leaves the store as after the first time."""
        run = _check_export(data, self.path)
        run_id = self._check_run_id(run["run_id"])
        row = tuple(dumps(run[k]) if k in _JSON_COLUMNS and run[k] is not None else run[k]
                    for k in _RUN_COLUMNS)
        with self._write() as conn:
            conn.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM manifests WHERE run_id = ?", (run_id,))
            conn.execute(f"INSERT OR REPLACE INTO runs ({', '.join(_RUN_COLUMNS)}) "
                         f"VALUES ({', '.join('?' * len(_RUN_COLUMNS))})", row)
            conn.executemany("INSERT INTO epochs (run_id, epoch, metrics) VALUES (?, ?, ?)",
                             [(run_id, int(m["epoch"]), dumps(m)) for m in data["epochs"]])
            if data.get("manifest") is not None:
                conn.execute("INSERT INTO manifests (run_id, manifest) VALUES (?, ?)",
                             (run_id, dumps(data["manifest"])))
            for tag in data.get("tags") or []:
                conn.execute(
                    "INSERT INTO tags (run_id, grid, preset, cell) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (run_id, grid, preset) DO UPDATE SET cell = excluded.cell",
                    (run_id, tag["grid"], tag["preset"], dumps(tag["cell"])),
                )
        record = self.get_run(run_id)
        assert record is not None
        return record


def check_store(path: str | os.PathLike[str]) -> None:
    """Refuse an existing file that is not a sound results store (not SQLite, foreign, newer
    schema, corrupt pages) with a StoreError, reading it without creating or changing anything.
    Commands that write call it before their first write; a missing file is fine (it will be
    created)."""
    if not Path(path).exists():
        return
    with ResultsStore(path, readonly=True) as store:
        rows = store._query("PRAGMA quick_check")
    result = "; ".join(str(r[0]) for r in rows[:3])
    if result != "ok":
        raise StoreError(f"results store {path} is corrupt ({result}); restore it from a "
                         "backup or use another --db")


def _check_export(data: Mapping[str, Any], path: Path) -> dict[str, Any]:
    if not isinstance(data, Mapping) or data.get("format") != EXPORT_FORMAT:
        raise StoreError(f"cannot import into {path}: not an export_run record")
    if data.get("schema_version", 0) > SCHEMA_VERSION:
        raise StoreError(f"cannot import into {path}: record schema version "
                         f"{data.get('schema_version')} is newer than {SCHEMA_VERSION}")
    run = data.get("run")
    if not isinstance(run, Mapping) or set(run) != set(_RUN_COLUMNS):
        raise StoreError(f"cannot import into {path}: the record's run has fields "
                         f"{sorted(run) if isinstance(run, Mapping) else run!r}, expected "
                         f"{', '.join(_RUN_COLUMNS)}")
    check_choice("status", run["status"], STATUSES)
    if not isinstance(data.get("epochs"), list) or not all(
            isinstance(m, Mapping) and "epoch" in m for m in data["epochs"]):
        raise StoreError(f"cannot import into {path}: epochs must be a list of metric dicts "
                         "with an 'epoch' key")
    return dict(run)
