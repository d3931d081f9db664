from __future__ import annotations

import hashlib
import multiprocessing as mp
import pickle
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dal_backdoor.errors import ConfigError, StoreError
from dal_backdoor.store import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    ResultsStore,
    RunRecord,
    dumps,
    to_jsonable,
)

PROV = {"git_commit": "abc123", "versions": {"torch": "2.3.0", "cuda": "none"},
        "device_name": "cpu (x86_64, 2 threads)", "host": "node1"}
CONFIG = {"dataset": "cifar10", "loss": "dal", "noise_kind": "none", "noise_rate": 0.0,
          "trigger": "local", "num_poison": 100, "target_class": 7, "seed": 0, "epochs": 3}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store(tmp_path: Path):
    with ResultsStore(tmp_path / "sub" / "results.db") as s:
        yield s


def test_new_file_is_marked_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "r.db"
    ResultsStore(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 1
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"runs", "epochs", "manifests", "tags"}
    conn.close()
    ResultsStore(path).close()  # reopening our own file works


def test_start_and_get_run(store: ResultsStore) -> None:
    assert store.get_run("r1") is None
    record = store.start_run("r1", CONFIG, PROV)
    assert isinstance(record, RunRecord)
    got = store.get_run("r1")
    assert got == record
    assert got.config == CONFIG
    assert (got.status, got.attempts, got.finished_at, got.error) == ("running", 1, None, None)
    assert got.final_metrics is None
    assert got.provenance == PROV
    assert (got.git_commit, got.versions, got.device_name, got.host) == (
        "abc123", {"torch": "2.3.0", "cuda": "none"}, "cpu (x86_64, 2 threads)", "node1")
    created = datetime.fromisoformat(got.created_at)
    assert created.utcoffset() == timedelta(0)
    assert got.updated_at == got.created_at


def test_epochs_upsert_order_and_truncate(store: ResultsStore) -> None:
    store.start_run("r1", CONFIG, PROV)
    for epoch in (3, 1, 2):
        store.record_epoch("r1", epoch, {"train_loss": epoch / 10, "clean_acc": 0.5})
    store.record_epoch("r1", 2, {"epoch": 2, "train_loss": 9.0, "clean_acc": None})
    assert store.epochs("r1") == [
        {"epoch": 1, "train_loss": 0.1, "clean_acc": 0.5},
        {"epoch": 2, "train_loss": 9.0, "clean_acc": None},
        {"epoch": 3, "train_loss": 0.3, "clean_acc": 0.5},
    ]
    assert store.last_epochs() == {"r1": 3}
    assert store.truncate_epochs("r1", 1) == 2
    assert [m["epoch"] for m in store.epochs("r1")] == [1]
    assert store.truncate_epochs("r1", 5) == 0
    assert store.epochs("missing") == []
    with pytest.raises(ValueError, match=r"metrics\['epoch'\]=4 but epoch=5"):
        store.record_epoch("r1", 5, {"epoch": 4})
    with pytest.raises(ConfigError, match=r"epoch=-1 is not in \[0, inf\)"):
        store.record_epoch("r1", -1, {})
    with pytest.raises(StoreError, match="no run 'nope'"):
        store.record_epoch("nope", 1, {})


def test_manifest_finish_and_fail(store: ResultsStore) -> None:
    store.start_run("r1", CONFIG, PROV)
    store.start_run("r2", CONFIG, PROV)
    assert store.manifest("r1") is None
    store.save_manifest("r1", {"poison_indices": [5, 3, 9], "trigger": "local"})
    store.save_manifest("r1", {"poison_indices": [1, 2], "trigger": "local"})
    assert store.manifest("r1") == {"poison_indices": [1, 2], "trigger": "local"}
    final = {"clean_acc": 0.91, "asr": 0.0, "asr_true": None, "robust_acc": 0.88}
    store.finish_run("r1", final)
    store.fail_run("r2", "RuntimeError: CUDA out of memory")
    r1, r2 = store.get_run("r1"), store.get_run("r2")
    assert (r1.status, r1.final_metrics, r1.error) == ("finished", final, None)
    assert r1.finished_at is not None
    assert r1.finished_at >= r1.created_at
    assert (r2.status, r2.error, r2.finished_at) == ("failed", "RuntimeError: CUDA out of memory",
                                                     None)
    assert store.is_finished("r1")
    assert not store.is_finished("r2")
    assert not store.is_finished("missing")
    assert [r.run_id for r in store.list_runs()] == ["r1", "r2"]
    assert [r.run_id for r in store.list_runs("finished")] == ["r1"]
    assert [r.run_id for r in store.list_runs("failed")] == ["r2"]
    assert store.list_runs("running") == []
    with pytest.raises(ConfigError, match="unknown status 'done'; allowed: running, finished"):
        store.list_runs("done")
    for call in (lambda: store.finish_run("x", {}), lambda: store.fail_run("x", "e"),
                 lambda: store.save_manifest("x", {})):
        with pytest.raises(StoreError, match="no run 'x' in results store"):
            call()


def test_restart_counts_attempts_and_keeps_history(store: ResultsStore) -> None:
    first = store.start_run("r1", CONFIG, PROV)
    store.record_epoch("r1", 1, {"train_loss": 1.0})
    store.save_manifest("r1", {"n": 1})
    store.fail_run("r1", "killed")
    prov2 = {**PROV, "host": "node2", "git_commit": "def456"}
    second = store.start_run("r1", CONFIG, prov2)
    assert second.attempts == 2
    assert (second.status, second.error, second.final_metrics) == ("running", None, None)
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert (second.host, second.git_commit) == ("node2", "def456")
    assert store.epochs("r1") == [{"epoch": 1, "train_loss": 1.0}]
    assert store.manifest("r1") == {"n": 1}
    store.finish_run("r1", {"clean_acc": 0.5})
    third = store.start_run("r1", CONFIG, PROV)
    assert (third.attempts, third.status, third.finished_at, third.final_metrics) == (
        3, "running", None, None)


def test_tags(store: ResultsStore) -> None:
    store.tag_run("b", "table6", "small", {"loss": "ce", "seed": 1})
    store.tag_run("a", "table6", "small", {"loss": "dal", "seed": 0})
    store.tag_run("a", "table6", "paper", {"loss": "dal", "seed": 0})
    store.tag_run("b", "table6", "small", {"loss": "ce", "seed": 2})  # update keeps the order
    assert store.tagged_runs("table6", "small") == [("b", {"loss": "ce", "seed": 2}),
                                                    ("a", {"loss": "dal", "seed": 0})]
    assert store.tagged_runs("table6", "ci") == []
    assert store.tags("a") == [{"grid": "table6", "preset": "small",
                                "cell": {"loss": "dal", "seed": 0}},
                               {"grid": "table6", "preset": "paper",
                                "cell": {"loss": "dal", "seed": 0}}]
    assert store.get_run("a") is None  # tags do not create runs


def test_json_is_strict_and_canonical(store: ResultsStore, tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    metrics = {"b": float("nan"), "a": float("inf"), "c": np.float32(0.5), "d": np.int64(3),
               "e": torch.tensor(0.25), "f": (1, float("-inf")), "g": np.array([1.5, 2.0]),
               "h": torch.tensor([1, 2]), "i": np.bool_(True), 5: "int key"}
    store.start_run("r1", {"z": 1, "y": [np.float64(0.1)]}, PROV)
    store.record_epoch("r1", 1, metrics)
    expected = {"5": "int key", "a": None, "b": None, "c": 0.5, "d": 3, "e": 0.25,
                "f": [1, None], "g": [1.5, 2.0], "h": [1, 2], "i": True, "epoch": 1}
    assert store.epochs("r1") == [expected]
    raw = sqlite3.connect(store.path)
    text = raw.execute("SELECT metrics FROM epochs").fetchone()[0]
    config_text = raw.execute("SELECT config FROM runs").fetchone()[0]
    raw.close()
    assert "NaN" not in text
    assert "Infinity" not in text
    assert text == dumps(expected)
    assert text.index('"5"') < text.index('"a"') < text.index('"epoch"') < text.index('"i"')
    assert config_text == '{"y":[0.1],"z":1}'
    assert to_jsonable({"p": tmp_path}) == {"p": str(tmp_path)}
    with pytest.raises(TypeError, match="cannot store object"):
        store.record_epoch("r1", 2, {"x": object()})
    with pytest.raises(TypeError, match="keys must be str"):
        dumps({(1, 2): 3})
    assert len(store.epochs("r1")) == 1  # the failed writes left nothing behind


def test_export_import_round_trip(store: ResultsStore, tmp_path: Path) -> None:
    store.tag_run("r1", "table6", "ci", {"loss": "dal", "seed": 0})
    store.start_run("r1", CONFIG, PROV)
    store.start_run("r1", CONFIG, PROV)
    for epoch in (1, 2):
        store.record_epoch("r1", epoch, {"train_loss": 1 / epoch, "asr": None})
    store.save_manifest("r1", {"poison_indices": [4, 8]})
    store.finish_run("r1", {"clean_acc": 0.8, "asr": 0.01})
    exported = store.export_run("r1")
    assert exported["run"]["attempts"] == 2
    assert exported["epochs"] == store.epochs("r1")
    assert exported["manifest"] == {"poison_indices": [4, 8]}
    assert exported["tags"] == [{"grid": "table6", "preset": "ci",
                                 "cell": {"loss": "dal", "seed": 0}}]
    shipped = pickle.loads(pickle.dumps(exported))
    with ResultsStore(tmp_path / "driver.db") as driver:
        # the driver has a stale copy with an extra epoch: import replaces it exactly
        driver.start_run("r1", CONFIG, PROV)
        driver.record_epoch("r1", 9, {"train_loss": 0.0})
        assert driver.import_run(shipped) == store.get_run("r1")
        assert driver.export_run("r1") == exported
        driver.import_run(shipped)  # idempotent
        assert driver.export_run("r1") == exported
        assert driver.tagged_runs("table6", "ci") == [("r1", {"loss": "dal", "seed": 0})]
        with pytest.raises(StoreError, match="not an export_run record"):
            driver.import_run({"run": {}})
        with pytest.raises(StoreError, match="expected run_id"):
            driver.import_run({**exported, "run": {"run_id": "r1"}})
    with pytest.raises(StoreError, match="no run 'zz'"):
        store.export_run("zz")


def test_readonly(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(StoreError, match=f"no results store at {missing}"):
        ResultsStore(missing, readonly=True)
    assert not missing.exists()
    with pytest.raises(StoreError, match="no results store at"):
        ResultsStore(missing, create=False)
    assert not missing.exists()

    path = tmp_path / "r.db"
    with ResultsStore(path) as s:
        s.start_run("r1", CONFIG, PROV)
        s.record_epoch("r1", 1, {"train_loss": 0.5})
    before, mtime = digest(path), path.stat().st_mtime_ns
    with ResultsStore(path, readonly=True) as ro:
        assert ro.get_run("r1").config == CONFIG
        assert ro.epochs("r1") == [{"epoch": 1, "train_loss": 0.5}]
        for call in (lambda: ro.start_run("r2", CONFIG, PROV), lambda: ro.finish_run("r1", {}),
                     lambda: ro.record_epoch("r1", 2, {}), lambda: ro.tag_run("r1", "g", "p", {}),
                     lambda: ro.truncate_epochs("r1", 0)):
            with pytest.raises(StoreError, match="opened read-only"):
                call()
    assert digest(path) == before
    assert path.stat().st_mtime_ns == mtime
    # a writer and a reader at the same time
    with ResultsStore(path) as rw, ResultsStore(path, readonly=True) as ro:
        rw.record_epoch("r1", 2, {"train_loss": 0.25})
        assert [m["epoch"] for m in ro.epochs("r1")] == [1, 2]

    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(StoreError, match="is an empty file, not a results store"):
        ResultsStore(empty, readonly=True)
    assert empty.stat().st_size == 0


def test_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "noise.db"
    path.write_bytes(bytes(range(256)) * 16)
    before = digest(path)
    for readonly in (False, True):
        with pytest.raises(StoreError) as info:
            ResultsStore(path, readonly=readonly)
        message = str(info.value)
        assert message.startswith(f"{path} is not a results store (not an SQLite database")
        assert "\n" not in message
    assert digest(path) == before


def test_foreign_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER)")
    conn.commit()
    conn.close()
    before = digest(path)
    with pytest.raises(StoreError, match=f"{path} is an SQLite database of another application "
                                         r"\(tables users\), not a dal-backdoor results store"):
        ResultsStore(path)
    assert digest(path) == before

    other_app = tmp_path / "app.db"
    conn = sqlite3.connect(other_app)
    conn.execute("PRAGMA application_id = 1234")
    conn.execute("CREATE TABLE runs (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"another application \(application_id 0x4d2\)"):
        ResultsStore(other_app, readonly=True)

    extra = tmp_path / "extra.db"
    ResultsStore(extra).close()
    conn = sqlite3.connect(extra)
    conn.execute("CREATE TABLE mine (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="is not a valid results store"):
        ResultsStore(extra)


def test_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with ResultsStore(path) as s:
        s.start_run("r1", CONFIG, PROV)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    for readonly in (False, True):
        with pytest.raises(StoreError, match=f"{path} has results store schema version 2, newer "
                                             r"than this dal-backdoor supports \(1\)"):
            ResultsStore(path, readonly=readonly)


def test_directory_and_closed(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        ResultsStore(tmp_path)
    s = ResultsStore(tmp_path / "r.db")
    s.close()
    s.close()
    with pytest.raises(StoreError, match="is closed"):
        s.get_run("x")


def test_pickle_and_pid_guard(store: ResultsStore) -> None:
    store.start_run("r1", CONFIG, PROV)
    clone = pickle.loads(pickle.dumps(store))
    assert clone.get_run("r1").config == CONFIG
    clone.close()
    old = store._conn
    store._pid = -1  # as if this object had been inherited through fork()
    store.record_epoch("r1", 1, {"train_loss": 1.0})
    assert store._conn is not old  # a fresh connection for the new process
    assert store.epochs("r1") == [{"epoch": 1, "train_loss": 1.0}]
    old.close()


EPOCHS_PER_WORKER = 50


def _writer(path: str, worker: int, barrier: object) -> None:
    """One concurrent writer (spawn context): its own run, 50 epochs, a manifest, finish."""
    barrier.wait(timeout=60)  # all four open the (not yet existing) file at the same moment
    with ResultsStore(path) as s:
        run_id = f"run-{worker}"
        s.tag_run(run_id, "grid", "ci", {"worker": worker})
        s.start_run(run_id, {"worker": worker}, PROV)
        for epoch in range(1, EPOCHS_PER_WORKER + 1):
            s.record_epoch(run_id, epoch, {"train_loss": 1.0 / epoch, "worker": worker})
        s.save_manifest(run_id, {"worker": worker})
        s.finish_run(run_id, {"clean_acc": worker / 10})


def test_concurrent_writers(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")  # created by the racing workers themselves
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_writer, args=(path, w, barrier)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with ResultsStore(path, readonly=True) as s:
        assert s.integrity_check() == "ok"
        runs = s.list_runs("finished")
        assert sorted(r.run_id for r in runs) == [f"run-{w}" for w in range(4)]
        for w in range(4):
            epochs = s.epochs(f"run-{w}")
            assert [m["epoch"] for m in epochs] == list(range(1, EPOCHS_PER_WORKER + 1))
            assert {m["worker"] for m in epochs} == {w}
            assert s.manifest(f"run-{w}") == {"worker": w}
            assert s.get_run(f"run-{w}").final_metrics == {"clean_acc": w / 10}
        assert sorted(run_id for run_id, _ in s.tagged_runs("grid", "ci")) == [
            f"run-{w}" for w in range(4)]


# -- interrupted runs: pid + heartbeat --------------------------------------------------------

def dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: the pid names no process now
    return child.pid


def test_a_running_run_whose_process_died_is_interrupted(store: ResultsStore) -> None:
    import os
    import platform

    from dal_backdoor.store import run_state

    here = {**PROV, "host": platform.node()}
    store.start_run("live", CONFIG, here, pid=os.getpid())
    store.start_run("dead", CONFIG, here, pid=dead_pid())
    assert store.get_run("dead").pid is not None
    assert run_state(store.get_run("live")) == "running"
    assert run_state(store.get_run("dead")) == "interrupted"
    store.finish_run("dead", {})
    assert run_state(store.get_run("dead")) == "finished"


def test_elsewhere_or_without_a_pid_the_heartbeat_decides(store: ResultsStore) -> None:
    from dal_backdoor.store import HEARTBEAT_TIMEOUT_S, run_state

    store.start_run("r1", CONFIG, PROV, pid=dead_pid())  # host node1: the pid cannot be checked
    record = store.get_run("r1")
    beat = datetime.fromisoformat(record.updated_at)
    assert run_state(record, now=beat + timedelta(seconds=60)) == "running"
    late = beat + timedelta(seconds=HEARTBEAT_TIMEOUT_S + 1)
    assert run_state(record, now=late) == "interrupted"
    store.record_epoch("r1", 1, {"train_loss": 1.0})  # an epoch is a heartbeat
    assert store.get_run("r1").updated_at > record.updated_at


def test_a_store_from_before_the_pid_column_is_read_and_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with ResultsStore(path) as s:
        s.start_run("r1", CONFIG, PROV)
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE runs DROP COLUMN pid")  # as written before the column existed
    conn.commit()
    conn.close()
    with ResultsStore(path, readonly=True) as ro:
        assert ro.get_run("r1").pid is None
        assert ro.get_run("r1").status == "running"
    with ResultsStore(path) as rw:  # a writable open adds the column
        rw.start_run("r1", CONFIG, PROV, pid=4242)
        assert rw.get_run("r1").pid == 4242
        assert rw.get_run("r1").attempts == 2
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
