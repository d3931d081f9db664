"""Kill a running sweep at the worst moments, restart it, and check that nothing was lost.

A small sweep (synthetic data, CPU) runs in a subprocess. It is SIGKILLed (the whole process
group, as a batch scheduler does) during a checkpoint/model write, during an SQLite write, and at
random moments, then restarted until it completes. Every run's final metrics and weights must
equal those of an uninterrupted sweep; the store must pass ``PRAGMA integrity_check``; no temp
file, checkpoint or partial file may be left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dal_backdoor.store import ResultsStore
from tests.helpers import cli_env

pytestmark = pytest.mark.slow  # sweeps killed and restarted in subprocesses

DRIVER = """
import sys
from dal_backdoor.experiments import expand, parse_only
from dal_backdoor.sweep import run_sweep

overrides = {"dataset": "synthetic", "dataset_params": {"num_samples": 300, "image_size": 16},
             "train_subset": None, "test_subset": None, "epochs": 3, "width": 4,
             "batch_size": 64, "num_poison": 20}
if __name__ == "__main__":  # spawned workers import this file too
    specs = expand("table6", "ci", device="cpu",
                   only=parse_only("loss=ce|dal,trigger=local,seed=0"), overrides=overrides).specs
    summary = run_sweep(specs, sys.argv[1], sys.argv[2], jobs=1)
    sys.exit(0 if len(summary.finished) + summary.already_finished == summary.total else 3)
"""
TIMING = {"train_seconds", "epoch_seconds", "total_train_seconds", "total_seconds"}


def run_driver(tmp: Path, db: Path, runs: Path, crash_at: str | None = None,
               kill_after: float | None = None) -> int | None:
    env = cli_env(DAL_BACKDOOR_CRASH_AT=crash_at) if crash_at else cli_env()
    proc = subprocess.Popen([sys.executable, str(tmp / "driver.py"), str(db), str(runs)],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        if kill_after is not None:
            try:
                proc.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=300)
    finally:
        # whatever happened, no orphaned worker of this attempt may outlive it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.2)
    return proc.returncode


def results(db: Path, runs: Path) -> dict[str, tuple[dict, dict[str, torch.Tensor]]]:
    out = {}
    with ResultsStore(db, readonly=True) as store:
        for record in store.list_runs():
            assert record.status == "finished", (record.run_id, record.error)
            final = {k: v for k, v in record.final_metrics.items() if k not in TIMING}
            weights = torch.load(runs / record.run_id / "model.pt", weights_only=True)
            on_disk = json.loads((runs / record.run_id / "metrics.json").read_text())["final"]
            assert {k: v for k, v in on_disk.items() if k not in TIMING} == final
            out[record.run_id] = (final, weights)
    return out


def test_sweep_survives_sigkill_at_any_moment(tmp_path: Path) -> None:
    (tmp_path / "driver.py").write_text(DRIVER)
    ref_db, ref_runs = tmp_path / "ref.db", tmp_path / "ref_runs"
    assert run_driver(tmp_path, ref_db, ref_runs) == 0
    reference = results(ref_db, ref_runs)
    assert len(reference) == 2

    db, runs = tmp_path / "r.db", tmp_path / "runs"
    rng = random.Random(1234)
    attempts = [
        {"crash_at": "atomic-write:4"},   # mid checkpoint write (after config + manifest)
        {"crash_at": "store-write:6"},    # inside an uncommitted SQLite transaction
        {"crash_at": "atomic-write:3"},   # the next run's first checkpoint
        {"kill_after": rng.uniform(2.0, 6.0)},
        {"kill_after": rng.uniform(2.0, 6.0)},
    ]
    codes = [run_driver(tmp_path, db, runs, **a) for a in attempts]
    assert sum(c != 0 for c in codes) >= 3, f"too few attempts were interrupted: {codes}"
    for _ in range(4):  # then let it finish (failed runs are retried by the next sweep)
        if run_driver(tmp_path, db, runs) == 0:
            break
    else:
        raise AssertionError("the sweep never completed after the faults")

    got = results(db, runs)
    assert sorted(got) == sorted(reference)
    for run_id, (final, weights) in reference.items():
        assert got[run_id][0] == final
        assert all(torch.equal(weights[k], got[run_id][1][k]) for k in weights)
    with ResultsStore(db) as store:
        assert store.integrity_check() == "ok"
        for run_id in reference:
            assert [e["epoch"] for e in store.epochs(run_id)] == [1, 2, 3]
    leftovers = [p.name for p in tmp_path.rglob("*")
                 if p.name.endswith(".tmp") or p.name == "checkpoint.pt"
                 or p.name.endswith("-journal")]
    assert leftovers == []
    for run_id in reference:
        assert sorted(p.name for p in (runs / run_id).iterdir()) == [
            "config.json", "manifest.json", "metrics.json", "model.pt"]


def _session_members(sid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    members.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return members


def test_workers_exit_when_the_driver_is_killed(tmp_path: Path) -> None:
    """Only the driver gets SIGKILL (not its process group): its orphaned workers must stop by
    themselves, so that a restarted sweep never trains a run twice at the same time."""
    (tmp_path / "driver.py").write_text(DRIVER)
    proc = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "r.db"),
                             str(tmp_path / "runs")], env=cli_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not list((tmp_path / "runs").glob("*/config.json")):  # a worker is training
            assert time.monotonic() < deadline, "the sweep never started a run"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 15
        while _session_members(proc.pid):
            assert time.monotonic() < deadline, "orphaned workers kept running"
            time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
