"""Optional tracking (dal_backdoor.tracking): observers of a RunRecorder, tested with a fake
tracker; the real TensorBoard/MLflow adapters only where their packages are installed."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from dal_backdoor import tracking
from dal_backdoor.config import RunConfig
from dal_backdoor.errors import ConfigError
from dal_backdoor.recorder import RunRecorder
from dal_backdoor.store import ResultsStore
from dal_backdoor.tracking import (
    TRACKERS,
    Observers,
    TrackerInfo,
    check_available,
    config_params,
    scalar_metrics,
)

CFG = RunConfig(dataset="synthetic", device="cpu", epochs=2, loss="gce",
                loss_params={"q": 0.7}, trigger_params={"size": 3})


class FakeTracker:
    """Records every call; ``fail_in`` names a method that raises."""

    def __init__(self, fail_in: str | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail_in = fail_in

    def _note(self, *call: Any) -> None:
        self.calls.append(call)
        if call[0] == self.fail_in:
            raise RuntimeError(f"tracker broke in {call[0]}")

    def start(self, run_id: str, config: Mapping[str, Any], history: Sequence[Any]) -> None:
        self._note("start", run_id, dict(config), [dict(h) for h in history])

    def epoch(self, row: Mapping[str, Any]) -> None:
        self._note("epoch", dict(row))

    def finish(self, final: Mapping[str, Any]) -> None:
        self._note("finish", dict(final))

    def fail(self, error: str) -> None:
        self._note("fail", error)

    def close(self) -> None:
        self._note("close")


def test_the_recorder_tells_its_trackers_what_the_store_records(tmp_path: Path) -> None:
    fake = FakeTracker()
    with RunRecorder(tmp_path / "r.db", CFG, observers=[fake]) as recorder:
        recorder.start(0, [], None)
        recorder.epoch({"epoch": 1, "clean_acc": 0.5})
        recorder.epoch({"epoch": 2, "clean_acc": 0.75})
        recorder.finish({"clean_acc": 0.75}, [])
    assert fake.calls == [
        ("start", CFG.run_id, CFG.to_dict(), []),
        ("epoch", {"epoch": 1, "clean_acc": 0.5}),
        ("epoch", {"epoch": 2, "clean_acc": 0.75}),
        ("finish", {"clean_acc": 0.75}),
        ("close",),
    ]


def test_a_resume_hands_the_trackers_the_earlier_epochs(tmp_path: Path) -> None:
    fake = FakeTracker()
    history = [{"epoch": 1, "clean_acc": 0.5}]
    with RunRecorder(tmp_path / "r.db", CFG, observers=[fake]) as recorder:
        recorder.start(1, history, None)
    assert fake.calls == [("start", CFG.run_id, CFG.to_dict(), history), ("close",)]


def test_a_run_reused_as_finished_is_not_tracked_again(tmp_path: Path) -> None:
    fake = FakeTracker()
    with RunRecorder(tmp_path / "r.db", CFG, observers=[fake]) as recorder:
        recorder.finish({"clean_acc": 0.5}, [{"epoch": 1, "clean_acc": 0.5}])
        recorder.fail("a failure before any start")
    assert fake.calls == []


def test_an_exception_in_the_run_is_a_failure_for_the_trackers(tmp_path: Path) -> None:
    fake = FakeTracker()
    recorder = RunRecorder(tmp_path / "r.db", CFG, observers=[fake])

    def run() -> None:
        with recorder:
            recorder.start(0, [], None)
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run()
    assert [c[0] for c in fake.calls] == ["start", "fail", "close"]
    assert fake.calls[1] == ("fail", "ValueError: boom")


def test_a_broken_tracker_is_dropped_and_the_run_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broken, fine = FakeTracker(fail_in="epoch"), FakeTracker()
    with caplog.at_level(logging.WARNING, "dal_backdoor.tracking"), \
            RunRecorder(tmp_path / "r.db", CFG, observers=[broken, fine]) as recorder:
        recorder.start(0, [], None)
        recorder.epoch({"epoch": 1, "clean_acc": 0.5})
        recorder.epoch({"epoch": 2, "clean_acc": 0.75})
        recorder.finish({"clean_acc": 0.75}, [])
    assert [c[0] for c in broken.calls] == ["start", "epoch", "close"]  # closed once, dropped
    assert [c[0] for c in fine.calls] == ["start", "epoch", "epoch", "finish", "close"]
    assert ("tracker FakeTracker failed in epoch and is turned off for this run: tracker broke "
            "in epoch") in caplog.text
    with ResultsStore(tmp_path / "r.db") as store:
        assert [e["clean_acc"] for e in store.epochs(CFG.run_id)] == [0.5, 0.75]
        assert store.get_run(CFG.run_id).status == "finished"


def test_observers_without_trackers_are_falsy() -> None:
    assert not Observers()
    assert Observers([FakeTracker()])


def test_scalar_metrics_keep_finite_numbers_only() -> None:
    row = {"epoch": 3, "clean_acc": 0.5, "clean_correct": 50, "asr": None, "notes": ["x"],
           "flag": True, "lr": float("nan"), "q": 0.7}
    assert scalar_metrics(row) == {"clean_acc": 0.5, "clean_correct": 50.0, "q": 0.7}


def test_config_params_are_flat_and_simple() -> None:
    params = config_params(CFG.to_dict())
    assert params["loss"] == "gce"
    assert params["loss_params.q"] == 0.7
    assert params["trigger_params.size"] == 3
    assert params["train_subset"] == "none"
    assert params["noise_params"] == "{}"  # an empty mapping as JSON text
    assert params["augment"] is True
    assert all(isinstance(v, (str, int, float, bool)) for v in params.values())
    assert len(params) == len(CFG.to_dict())  # 2 nested keys replace 2 top-level ones


def test_check_available_names_the_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # find_spec -> None: not installed
    with pytest.raises(ConfigError) as err:
        check_available(["mlflow"])
    assert str(err.value) == ("--track mlflow needs the mlflow package, which is not "
                              "installed: pip install 'dal-backdoor[mlflow]' (or "
                              "'dal-backdoor[track]' for both trackers)")
    with pytest.raises(ConfigError, match="unknown tracker 'wandb'; allowed: tensorboard, "
                                          "mlflow"):
        check_available(["wandb"])
    assert check_available([]) == ()


def fake_registry(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, FakeTracker]]:
    """Make ``--track tensorboard`` build FakeTrackers (module json: always installed);
    returns the (run folder, tracker) of each one built."""
    made: list[tuple[Path, FakeTracker]] = []

    def factory(run_dir: Path) -> FakeTracker:
        made.append((run_dir, FakeTracker()))
        return made[-1][1]

    monkeypatch.setitem(TRACKERS, "tensorboard", TrackerInfo("json", "tensorboard", factory))
    return made


def test_check_available_dedupes(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_registry(monkeypatch)
    assert check_available(["tensorboard", "tensorboard"]) == ("tensorboard",)


def test_a_sweep_worker_tracks_into_the_run_folder(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from dal_backdoor.config import resolve_config
    from dal_backdoor.sweep import execute_run

    made = fake_registry(monkeypatch)
    cfg = resolve_config(dataset="synthetic", dataset_params={"num_samples": 200,
                                                              "image_size": 16},
                         width=4, epochs=2, device="cpu", loss="ce")
    outcome = execute_run(cfg.to_dict(), str(tmp_path / "r.db"), str(tmp_path / "runs"),
                          ("tensorboard",))
    assert outcome["status"] == "finished"
    assert [run_dir for run_dir, _ in made] == [tmp_path / "runs" / cfg.run_id]
    fake = made[0][1]
    with ResultsStore(tmp_path / "r.db") as store:
        epochs = store.epochs(cfg.run_id)
        final = store.get_run(cfg.run_id).final_metrics
    assert fake.calls[0] == ("start", cfg.run_id, cfg.to_dict(), [])
    assert [c[1] for c in fake.calls if c[0] == "epoch"] == epochs
    assert fake.calls[-2:] == [("finish", final), ("close",)]


# -- the real adapters, where their packages are installed --------------------------------------

def test_tensorboard_writes_scalars_hparams_and_purges_on_resume(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    first = tracking.TensorBoardTracker(tmp_path / "tb")
    first.start(CFG.run_id, CFG.to_dict(), [])
    for epoch in (1, 2):
        first.epoch({"epoch": epoch, "clean_acc": 0.25 * epoch, "asr": 0.5, "notes": []})
    first.close()  # killed after epoch 2; resumed from the checkpoint of epoch 1
    again = tracking.TensorBoardTracker(tmp_path / "tb")
    again.start(CFG.run_id, CFG.to_dict(), [{"epoch": 1, "clean_acc": 0.25, "asr": 0.5}])
    again.epoch({"epoch": 2, "clean_acc": 0.75, "asr": 0.0})
    again.finish({})
    again.close()
    events = EventMultiplexer().AddRunsFromDirectory(str(tmp_path / "tb"))
    events.Reload()
    run = events.Runs()
    assert list(run) == ["."]
    clean = [(e.step, e.value) for e in events.Scalars(".", "clean_acc")]
    assert clean == [(1, 0.25), (2, 0.75)]  # the killed attempt's epoch 2 is purged
    assert [(e.step, e.value) for e in events.Scalars(".", "asr")] == [(1, 0.5), (2, 0.0)]
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = events.GetAccumulator(".").PluginTagToContent("hparams")
    data = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"])
    hparams = data.session_start_info.hparams
    assert hparams["loss"].string_value == "gce"
    assert hparams["loss_params.q"].number_value == pytest.approx(0.7)
    assert hparams["augment"].number_value == 1.0  # torch logs booleans as numbers


def test_mlflow_logs_params_epochs_and_status(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "tests")
    done = tracking.MLflowTracker()
    done.start(CFG.run_id, CFG.to_dict(), [{"epoch": 1, "clean_acc": 0.25}])  # a resume
    done.epoch({"epoch": 2, "clean_acc": 0.5, "asr": 0.125, "notes": []})
    done.finish({})
    done.close()
    killed = tracking.MLflowTracker()
    killed.start("another", CFG.to_dict(), [])
    killed.close()
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    status = {r.info.run_name: r.info.status for r in runs}
    assert status == {CFG.run_id: "FINISHED", "another": "KILLED"}
    (run,) = [r for r in runs if r.info.run_name == CFG.run_id]
    assert run.data.params["loss_params.q"] == "0.7"
    assert run.data.params["loss"] == "gce"
    assert run.data.tags["dal_backdoor.run_id"] == CFG.run_id
    history = client.get_metric_history(run.info.run_id, "clean_acc")
    assert [(m.step, m.value) for m in history] == [(1, 0.25), (2, 0.5)]
    assert run.data.metrics == {"clean_acc": 0.5, "asr": 0.125}
