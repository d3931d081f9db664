"""Run every missing run of a grid: local worker processes (several per GPU) or Ray tasks.

Finished runs (by run id, in the results store) are skipped; interrupted ones resume from their
checkpoints under ``runs_dir/<run_id>/``; a failed run is recorded as failed with its error and
does not stop the sweep (the next sweep retries it). Progress is reported through a
``SweepReporter`` (the CLI draws it); this module never prints.

Backends:
- ``local``: a spawn-context process pool. On CPU, ``jobs`` workers each with
  ``cpu_count // jobs`` threads. With CUDA, ``runs_per_gpu`` workers per visible GPU (small models
  leave a big GPU idle; several concurrent runs are how a grid gets fast). Workers write into the
  one SQLite store (WAL mode, short transactions).
- ``ray``: the same runs as Ray tasks with fractional GPUs on an existing cluster (``address``) or a
  local instance; each task records into a private store and returns its records, which the driver
  writes into the sweep's store. Checkpoints live under ``runs_dir``, so resuming across machines
  needs ``runs_dir`` on a shared file system.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue as queue_mod
import tempfile
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing.managers import SyncManager
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from dal_backdoor.config import RunConfig
from dal_backdoor.errors import ConfigError
from dal_backdoor.experiments import RunSpec
from dal_backdoor.provenance import provenance
from dal_backdoor.recorder import RunRecorder
from dal_backdoor.store import ResultsStore
from dal_backdoor.train import Callbacks
from dal_backdoor.validation import check_choice, check_number

log = logging.getLogger(__name__)

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class SweepEvent:
    kind: str  # "start" | "epoch" | "end"
    run_id: str
    data: dict[str, Any] = field(default_factory=dict)


class SweepReporter(Protocol):
    def on_sweep_start(self, specs: list[RunSpec], pending: list[RunSpec]) -> None: ...

    def on_event(self, event: SweepEvent) -> None: ...


@dataclass
class SweepSummary:
    total: int
    already_finished: int
    finished: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


# -- one run, in whatever process executes it -------------------------------------------------

class EventQueue(Protocol):
    """The part of a (manager) queue the sweep uses for progress events."""

    def put_nowait(self, item: SweepEvent) -> None: ...

    def get_nowait(self) -> SweepEvent: ...


class SlotQueue(Protocol):
    """The queue of worker slots: a GPU index, or None on the CPU."""

    def get(self) -> int | None: ...


_EVENTS: EventQueue | None = None  # the worker's event queue (set by the pool initializer)


def _emit(kind: str, run_id: str, **data: Any) -> None:
    if _EVENTS is not None:
        try:
            _EVENTS.put_nowait(SweepEvent(kind, run_id, data))
        except Exception:  # progress is best effort, never fails a run
            log.debug("could not report progress", exc_info=True)


def _callbacks(cfg: RunConfig) -> Callbacks:
    run_id = cfg.run_id
    return Callbacks(
        on_start=lambda c, first: _emit("start", run_id, first_epoch=first, epochs=c.epochs),
        on_epoch_end=lambda m: _emit("epoch", run_id, epoch=m["epoch"], epochs=cfg.epochs,
                                     clean_acc=m.get("clean_acc"), asr=m.get("asr")),
    )


def execute_run(config: dict[str, Any], store_path: str, runs_dir: str,
                track: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run (or resume) one config into ``store_path``; never raises for a failed run. ``track``
    names the trackers (``dal_backdoor.tracking``) that also log the run."""
    from dal_backdoor.tracking import create_trackers
    from dal_backdoor.train import fit

    cfg = RunConfig.from_dict(config)
    run_id = cfg.run_id
    trackers = create_trackers(track, Path(runs_dir) / run_id)
    with RunRecorder(store_path, cfg, observers=trackers) as recorder:  # one store connection
        try:
            result = fit(cfg, recorder, Path(runs_dir) / run_id, resume=True,
                         callbacks=_callbacks(cfg))
        except Exception as exc:  # a failed run is data, not a crash of the sweep
            error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            log.debug("run %s failed\n%s", run_id, traceback.format_exc())
            recorder.fail(error)
            _emit("end", run_id, status="failed", error=error)
            return {"run_id": run_id, "status": "failed", "error": error}
    _emit("end", run_id, status="finished", clean_acc=result.final_metrics.get("clean_acc"),
          asr=result.final_metrics.get("asr"))
    return {"run_id": run_id, "status": "finished", "final": result.final_metrics}


def record_failure(store: str | ResultsStore, cfg: RunConfig, error: str) -> None:
    """The driver's record of a run that failed outside ``fit`` (a worker died, a Ray task was
    lost): the run's device is named, not probed (the driver never ran it)."""
    prov = provenance(cfg.device, probe=False)
    with RunRecorder(store, cfg, prov=prov) as recorder:
        recorder.fail(error)


def _exit_with_parent(parent: int, interval_s: float = 1.0) -> None:
    """Worker watchdog: if the sweep's driver dies (e.g. SIGKILL), end this worker too, so a
    restarted sweep never runs the same run alongside an orphan."""
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _init_worker(slots: SlotQueue, threads: int, events: EventQueue,
                 parent: int | None = None) -> None:
    """Process-pool initializer: take a GPU slot (or none), set threads, remember the queue."""
    global _EVENTS
    _EVENTS = events
    if parent is not None:
        _exit_with_parent(parent)
    import torch

    slot = slots.get()
    if slot is not None:
        torch.cuda.set_device(int(slot))
    torch.set_num_threads(threads)


# -- the driver --------------------------------------------------------------------------------

def pending_specs(specs: list[RunSpec], store: ResultsStore) -> list[RunSpec]:
    """Specs whose run is not finished in the store (missing, running or failed)."""
    return [s for s in specs if not store.is_finished(s.run_id)]


def preflight(specs: list[RunSpec]) -> None:
    """Load each distinct data set once, so a missing one is one clear error before any run."""
    from dal_backdoor.data import create_dataset

    seen = set()
    for spec in specs:
        cfg = spec.config
        key = (cfg.dataset, cfg.data_root, tuple(sorted(cfg.dataset_params.items())))
        if key not in seen:
            seen.add(key)
            create_dataset(cfg.dataset, cfg.data_root, train=False, **cfg.dataset_params)


def run_sweep(
    specs: list[RunSpec],
    store_path: str | Path,
    runs_dir: str | Path,
    *,
    jobs: int = 1,
    runs_per_gpu: int = 1,
    backend: str = "local",
    address: str | None = None,
    reporter: SweepReporter | None = None,
    track: tuple[str, ...] = (),
) -> SweepSummary:
    """Run the pending ``specs`` (see the module docstring); ``track`` names trackers
    (``dal_backdoor.tracking``) that also log every run, checked before any run starts."""
    from dal_backdoor.tracking import check_available

    track = check_available(track)
    check_choice("backend", backend, BACKENDS)
    check_number("jobs", jobs, low=1, integer=True)
    check_number("runs_per_gpu", runs_per_gpu, low=1, integer=True)
    if address is not None and backend != "ray":
        raise ConfigError("--address is only used with --backend ray")
    preflight(specs)
    store_path, runs_dir = str(store_path), str(runs_dir)
    Path(runs_dir).mkdir(parents=True, exist_ok=True)
    with ResultsStore(store_path) as store:
        for spec in specs:
            store.tag_run(spec.run_id, spec.grid, spec.preset, spec.cell)
        pending = pending_specs(specs, store)
    summary = SweepSummary(total=len(specs), already_finished=len(specs) - len(pending))
    if reporter is not None:
        reporter.on_sweep_start(specs, pending)
    if not pending:
        return summary
    if backend == "ray":
        results = _run_ray(pending, store_path, runs_dir, runs_per_gpu, address, reporter, track)
    else:
        results = _run_local(pending, store_path, runs_dir, jobs, runs_per_gpu, reporter, track)
    for res in results:
        if res["status"] == "finished":
            summary.finished.append(res["run_id"])
        else:
            summary.failed[res["run_id"]] = res["error"]
    return summary


def _slots(jobs: int, runs_per_gpu: int) -> tuple[list[int | None], int]:
    """Worker slots (GPU index or None) and threads per worker."""
    import torch

    if torch.cuda.is_available():
        gpus = torch.cuda.device_count()
        return [g for g in range(gpus) for _ in range(runs_per_gpu)], max(
            1, (os.cpu_count() or 1) // (gpus * runs_per_gpu))
    return [None] * jobs, max(1, (os.cpu_count() or 1) // jobs)


def _run_local(pending: list[RunSpec], store_path: str, runs_dir: str, jobs: int,
               runs_per_gpu: int, reporter: SweepReporter | None,
               track: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    slots, threads = _slots(jobs, runs_per_gpu)
    ctx = mp.get_context("spawn")
    manager = SyncManager(ctx=ctx)  # queues for GPU slots and progress events
    manager.start(initializer=_exit_with_parent, initargs=(os.getpid(),))
    try:
        slot_queue, events = manager.Queue(), manager.Queue()
        for slot in slots:
            slot_queue.put(slot)
        results: list[dict[str, Any]] = []
        with ProcessPoolExecutor(max_workers=len(slots), mp_context=ctx, initializer=_init_worker,
                                 initargs=(slot_queue, threads, events, os.getpid())) as pool:
            futures: dict[Future, RunSpec] = {
                pool.submit(execute_run, spec.config.to_dict(), store_path, runs_dir,
                            track): spec
                for spec in pending
            }
            remaining = set(futures)
            while remaining:
                done, remaining = wait(remaining, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(events, reporter)
                for fut in done:
                    results.append(_result_of(fut, futures[fut], store_path))
            _drain(events, reporter)
        return results
    finally:
        manager.shutdown()


def _result_of(fut: Future, spec: RunSpec, store_path: str) -> dict[str, Any]:
    """A worker that died (OOM, SIGKILL) must not stop the sweep: record it as failed."""
    try:
        return fut.result()
    except Exception as exc:
        error = f"worker died: {type(exc).__name__}: {exc}"
        record_failure(store_path, spec.config, error)
        return {"run_id": spec.run_id, "status": "failed", "error": error}


def _drain(events: EventQueue, reporter: SweepReporter | None) -> None:
    while True:
        try:
            event = events.get_nowait()
        except queue_mod.Empty:
            return
        except (EOFError, BrokenPipeError):  # manager gone at shutdown
            return
        if reporter is not None:
            reporter.on_event(event)


# -- Ray ---------------------------------------------------------------------------------------

def ray_execute(config: dict[str, Any], runs_dir: str,
                track: tuple[str, ...] = ()) -> dict[str, Any]:
    """A Ray task: run into a private temporary store and return its records for the driver."""
    with tempfile.TemporaryDirectory(prefix="dal-backdoor-ray-") as tmp:
        path = os.path.join(tmp, "run.db")
        outcome = execute_run(config, path, runs_dir, track)
        with ResultsStore(path) as store:
            outcome["record"] = store.export_run(outcome["run_id"])
    return outcome


def _run_ray(pending: list[RunSpec], store_path: str, runs_dir: str, runs_per_gpu: int,
             address: str | None, reporter: SweepReporter | None,
             track: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray backend needs Ray: pip install 'dal-backdoor[ray]'") from None

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        options = {"num_cpus": 1, "num_gpus": (1.0 / runs_per_gpu) if gpus else 0}
        task = ray.remote(**options)(ray_execute)
        refs = {}
        for spec in pending:
            refs[task.remote(spec.config.to_dict(), runs_dir, track)] = spec
            if reporter is not None:
                reporter.on_event(SweepEvent("start", spec.run_id, {"epochs": spec.config.epochs,
                                                                    "first_epoch": 1}))
        with ResultsStore(store_path) as store:  # one driver connection for the whole sweep
            return [_collect_ray(ray, refs, store, reporter) for _ in range(len(refs))]
    finally:
        if started_here:
            ray.shutdown()


def _collect_ray(ray: ModuleType, refs: dict[Any, RunSpec], store: ResultsStore,
                 reporter: SweepReporter | None) -> dict[str, Any]:
    """Wait for the next finished Ray task and write its records (or its failure) to the store."""
    ready, _ = ray.wait(list(refs), num_returns=1)
    spec = refs.pop(ready[0])
    try:
        outcome = ray.get(ready[0])
    except Exception as exc:  # a lost task is a failed run
        outcome = {"run_id": spec.run_id, "status": "failed",
                   "error": f"ray task failed: {type(exc).__name__}: {exc}"}
    if outcome.get("record"):
        store.import_run(outcome.pop("record"))
    else:
        record_failure(store, spec.config, outcome["error"])
    if reporter is not None:
        final = outcome.get("final") or {}
        reporter.on_event(SweepEvent("end", spec.run_id, {
            "status": outcome["status"], "error": outcome.get("error"),
            "clean_acc": final.get("clean_acc"), "asr": final.get("asr")}))
    return outcome
