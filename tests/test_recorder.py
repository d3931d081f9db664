"""RunRecorder: one store connection per run, opened late, with the provenance of the trainer."""

from __future__ import annotations

from pathlib import Path

import pytest

from dal_backdoor.config import RunConfig
from dal_backdoor.provenance import provenance
from dal_backdoor.recorder import RunRecorder
from dal_backdoor.store import ResultsStore
from dal_backdoor.sweep import record_failure

CFG = RunConfig(dataset="synthetic", device="cpu", epochs=2)


def test_the_store_is_opened_on_first_use_and_once(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with RunRecorder(db, CFG) as recorder:
        assert not db.exists()  # building a recorder writes nothing
        store = recorder.open()
        recorder.start(0, [], {"num_poison": 3})
        recorder.epoch({"epoch": 1, "clean_acc": 0.5})
        recorder.epoch({"epoch": 2, "clean_acc": 0.75})
        recorder.finish({"clean_acc": 0.75}, [])
        assert recorder.open() is store  # one connection for the whole run
    with ResultsStore(db) as check:
        record = check.get_run(CFG.run_id)
        assert record.status == "finished"
        assert record.final_metrics == {"clean_acc": 0.75}
        assert [e["clean_acc"] for e in check.epochs(CFG.run_id)] == [0.5, 0.75]
        assert check.manifest(CFG.run_id) == {"num_poison": 3}
        assert record.provenance["device_name"] == provenance("cpu")["device_name"]


def test_a_restart_drops_epochs_beyond_the_checkpoint_and_resyncs(tmp_path: Path) -> None:
    with RunRecorder(tmp_path / "r.db", CFG) as recorder:
        recorder.start(0, [], None)
        for epoch in (1, 2):
            recorder.epoch({"epoch": epoch, "clean_acc": 0.1 * epoch})
        recorder.start(1, [{"epoch": 1, "clean_acc": 0.5}], None)  # resumed after epoch 1
        store = recorder.open()
        assert store.epochs(CFG.run_id) == [{"epoch": 1, "clean_acc": 0.5}]
        assert store.get_run(CFG.run_id).attempts == 2


def test_finish_creates_a_run_the_store_never_saw(tmp_path: Path) -> None:
    history = [{"epoch": 1, "clean_acc": 0.25}, {"epoch": 2, "clean_acc": 0.5}]
    with RunRecorder(tmp_path / "r.db", CFG) as recorder:
        recorder.finish({"clean_acc": 0.5}, history)
        assert recorder.open().epochs(CFG.run_id) == history
        assert recorder.is_finished()


def test_failure_keeps_the_first_error_and_true_device(tmp_path: Path) -> None:
    gpu_cfg = CFG.replace(device="cuda")
    with ResultsStore(tmp_path / "r.db") as store:
        record_failure(store, gpu_cfg, "worker died: OOM")
        record_failure(store, gpu_cfg, "a later error")
        record = store.get_run(gpu_cfg.run_id)
        assert record.status == "failed"
        assert record.error == "worker died: OOM"
        assert record.device_name == "cuda (not probed)"  # not "cpu": the run's device
        store.get_run(gpu_cfg.run_id)  # the caller's store stays open


def test_a_recorder_of_another_run_is_refused(tmp_path: Path) -> None:
    from dal_backdoor.train import fit

    with RunRecorder(tmp_path / "r.db", CFG) as recorder, pytest.raises(
            ValueError, match=f"recorder is for run {CFG.run_id}"):
        fit(CFG.replace(seed=1), recorder, tmp_path / "run")
    assert not (tmp_path / "r.db").exists()
    assert not (tmp_path / "run").exists()


def test_start_records_the_pid_of_the_training_process(tmp_path: Path) -> None:
    import os

    with RunRecorder(tmp_path / "r.db", CFG) as recorder:
        recorder.start(0, [], None)
        assert recorder.open().get_run(CFG.run_id).pid == os.getpid()
