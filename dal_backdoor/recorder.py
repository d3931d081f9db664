"""The run recorder: one run's rows in the results store, over one connection.

``fit`` reports through a ``RunRecorder`` (start, each epoch, the poison manifest, finish); the
sweep also records failures through it. The CLI, the local sweep's workers and each Ray task
build one per run. The store is opened lazily, at the first call that needs it, so everything
that can reject the input (data, config, checkpoint) is checked before the store file is created
(``open`` is where a corrupt or foreign store is refused). A start records this process's
pid and every epoch refreshes the row's ``updated_at``: the heartbeat by which ``runs`` tells
a killed run (interrupted) from a running one (``dal_backdoor.store.run_state``). Provenance
is that of the process that trains (the device it trains on); a run folder reused as finished
keeps the provenance its config.json recorded. Observers (``dal_backdoor.tracking``: TensorBoard,
MLflow) hear of the start, each epoch and the end after the store has recorded them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dal_backdoor.config import RunConfig
from dal_backdoor.provenance import Provenance, provenance
from dal_backdoor.store import ResultsStore
from dal_backdoor.tracking import Observers, RunObserver


class RunRecorder:
    """Records the run ``cfg`` into ``store`` (a path, opened on first use and closed by
    ``close``, or an open ``ResultsStore`` the caller owns). ``prov`` overrides the provenance
    otherwise taken from this process on ``cfg.device``. ``observers`` (trackers) are told
    what the store records, best effort (``dal_backdoor.tracking.Observers``)."""

    def __init__(self, store: str | Path | ResultsStore, cfg: RunConfig, *,
                 prov: Provenance | None = None, observers: Sequence[RunObserver] = ()) -> None:
        self.cfg = cfg
        self.run_id = cfg.run_id
        self._owned = not isinstance(store, ResultsStore)
        self._store: ResultsStore | None = None if self._owned else store
        self._path = store.path if isinstance(store, ResultsStore) else Path(store)
        self._prov = prov
        self._observers = Observers(observers)

    def __repr__(self) -> str:
        return f"RunRecorder({str(self._path)!r}, run {self.run_id})"

    # -- connection ----------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self._path

    def open(self) -> ResultsStore:
        """The store, opened (and checked) on first use."""
        if self._store is None:
            self._store = ResultsStore(self._path)
        return self._store

    def close(self) -> None:
        self._observers.close()
        if self._owned and self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> RunRecorder:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if isinstance(exc, Exception):  # the run failed (the caller may record it as failed)
            self._observers.fail(f"{type(exc).__name__}: {exc}")
        self.close()

    @property
    def provenance(self) -> Provenance:
        if self._prov is None:
            self._prov = provenance(self.cfg.device)
        return self._prov

    # -- the run's life ------------------------------------------------------------------------
    def is_finished(self) -> bool:
        return self.open().is_finished(self.run_id)

    def start(self, done_epochs: int, history: list[dict[str, Any]],
              manifest: Mapping[str, Any] | None) -> None:
        """A (re)start after ``done_epochs`` epochs: the run row (attempt + 1), epochs beyond the
        checkpoint dropped, the checkpoint's rows re-synced (the store may have lost some), and
        the poison manifest."""
        store = self.open()
        store.start_run(self.run_id, self.cfg.to_dict(), self.provenance, pid=os.getpid())
        store.truncate_epochs(self.run_id, done_epochs)
        for row in history:
            store.record_epoch(self.run_id, row["epoch"], row)
        if manifest is not None:
            store.save_manifest(self.run_id, manifest)
        self._observers.start(self.run_id, self.cfg.to_dict(), history)

    def epoch(self, row: Mapping[str, Any]) -> None:
        self.open().record_epoch(self.run_id, row["epoch"], row)
        self._observers.epoch(row)

    def finish(self, final: Mapping[str, Any], history: list[dict[str, Any]],
               prov: Provenance | None = None) -> None:
        """Mark the run finished; a run this store has never seen (a finished run folder brought
        to a new store) is first created with its history and ``prov`` (the provenance the run
        folder recorded; default: this recorder's)."""
        store = self.open()
        if store.get_run(self.run_id) is None:
            store.start_run(self.run_id, self.cfg.to_dict(), prov or self.provenance)
            for row in history:
                store.record_epoch(self.run_id, row["epoch"], row)
        store.finish_run(self.run_id, final)
        self._observers.finish(final)

    def fail(self, error: str) -> None:
        """Mark the run failed, creating its row when it failed before it could start."""
        store = self.open()
        record = store.get_run(self.run_id)
        if record is None:
            store.start_run(self.run_id, self.cfg.to_dict(), self.provenance)
        if record is None or record.status != "failed":
            store.fail_run(self.run_id, error)
        self._observers.fail(error)
