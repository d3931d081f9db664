from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dal_backdoor.experiments import expand, parse_only
from dal_backdoor.report import build_report, load_runs
from dal_backdoor.store import ResultsStore
from dal_backdoor.sweep import SweepEvent, run_sweep

pytestmark = pytest.mark.slow  # every test trains through a sweep

TINY = {"dataset": "synthetic", "dataset_params": {"num_samples": 300, "image_size": 16},
        "train_subset": None, "test_subset": None, "epochs": 2, "width": 4, "batch_size": 64,
        "num_poison": 20}


def specs(only: str = "loss=ce|dal,trigger=local,seed=0", **over: Any) -> list:
    return expand("table6", "ci", device="cpu", only=parse_only(only),
                  overrides={**TINY, **over}).specs


class Recorder:
    def __init__(self) -> None:
        self.events: list[SweepEvent] = []
        self.pending: list = []

    def on_sweep_start(self, specs: list, pending: list) -> None:  # noqa: ARG002 - protocol
        self.pending = pending

    def on_event(self, event: SweepEvent) -> None:
        self.events.append(event)


def test_sweep_runs_skips_and_reports(tmp_path: Path) -> None:
    todo = specs()
    rec = Recorder()
    summary = run_sweep(todo, tmp_path / "r.db", tmp_path / "runs", jobs=2, reporter=rec)
    assert summary.total == 2
    assert sorted(summary.finished) == sorted(s.run_id for s in todo)
    assert not summary.failed
    ends = [e for e in rec.events if e.kind == "end"]
    assert sorted(e.run_id for e in ends) == sorted(s.run_id for s in todo)
    assert sum(e.kind == "epoch" for e in rec.events) == 4
    # a second sweep finds everything finished and runs nothing
    again = run_sweep(todo, tmp_path / "r.db", tmp_path / "runs", reporter=(rec2 := Recorder()))
    assert again.already_finished == 2
    assert not again.finished
    assert rec2.pending == []
    with ResultsStore(tmp_path / "r.db") as store:
        runs = load_runs(store, "table6", "ci")
    assert len(runs) == 2
    assert all(r.status == "finished" and len(r.epochs) == 2 for r in runs)
    report = build_report("table6", "ci", runs)
    assert report.cell("cifar10/ce", "local acc").n == 1


def test_failed_run_is_recorded_and_sweep_goes_on(tmp_path: Path) -> None:
    good = specs("loss=ce,trigger=local,seed=0")
    bad = specs("loss=dal,trigger=local,seed=0", num_poison=10_000)  # more than the pool
    summary = run_sweep(good + bad, tmp_path / "r.db", tmp_path / "runs", jobs=1)
    assert summary.finished == [good[0].run_id]
    assert list(summary.failed) == [bad[0].run_id]
    assert "num_poison" in summary.failed[bad[0].run_id]
    with ResultsStore(tmp_path / "r.db") as store:
        record = store.get_run(bad[0].run_id)
        assert record.status == "failed"
        assert "num_poison" in record.error


def test_interrupted_run_is_resumed_by_the_next_sweep(tmp_path: Path) -> None:
    from dal_backdoor.train import Callbacks, fit

    (spec,) = specs("loss=ce,trigger=local,seed=0", epochs=3)
    reference = fit(spec.config, tmp_path / "ref.db", tmp_path / "ref")

    class Stop(Exception):
        pass

    def stop(m: dict) -> None:
        if m["epoch"] == 2:
            raise Stop

    run_dir = tmp_path / "runs" / spec.run_id
    with pytest.raises(Stop):
        fit(spec.config, tmp_path / "r.db", run_dir, callbacks=Callbacks(on_epoch_end=stop))
    rec = Recorder()
    summary = run_sweep([spec], tmp_path / "r.db", tmp_path / "runs", reporter=rec)
    assert summary.finished == [spec.run_id]
    start = next(e for e in rec.events if e.kind == "start")
    assert start.data["first_epoch"] == 3
    with ResultsStore(tmp_path / "r.db") as store:
        final = store.get_run(spec.run_id).final_metrics
    for key in ("clean_correct", "asr_hits", "train_loss"):
        assert final[key] == reference.final_metrics[key]


def test_ray_backend_on_a_local_instance(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    todo = specs("loss=ce,trigger=local,seed=0")
    summary = run_sweep(todo, tmp_path / "r.db", tmp_path / "runs", backend="ray")
    assert summary.finished == [todo[0].run_id]
    with ResultsStore(tmp_path / "r.db") as store:
        record = store.get_run(todo[0].run_id)
        assert record.status == "finished"
        assert len(store.epochs(todo[0].run_id)) == 2
        assert store.manifest(todo[0].run_id)["num_poison"] == 20
