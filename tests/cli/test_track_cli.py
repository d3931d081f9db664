"""``--track`` on train and sweep: a fake tracker sees what the store records; a missing
package is one error line before anything is written; tracking never changes a run id."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dal_backdoor.store import ResultsStore
from tests.helpers import TINY_TRAIN, assert_cli_error, invoke, snapshot
from tests.test_tracking import fake_registry

SWEEP = ["sweep", "table6", "--preset", "ci", "--only", "loss=ce,trigger=local,seed=0",
         "--set", "dataset=synthetic", "--set", "train_subset=500", "--set",
         "test_subset=200", "--set", "width=4", "--set", "epochs=1", "--device", "cpu"]


def test_train_track_sees_every_epoch_and_keeps_the_run_id(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = fake_registry(monkeypatch)
    args = [*TINY_TRAIN[:-4], "--epochs", "2", "--device", "cpu"]
    tracked = invoke(*args, "--out", f"{tmp_path}/a", "--db", f"{tmp_path}/a.db",
                     "--track", "tensorboard")
    assert tracked.exit_code == 0, tracked.output
    plain = invoke(*args, "--out", f"{tmp_path}/b", "--db", f"{tmp_path}/b.db")
    assert plain.exit_code == 0, plain.output
    ids = []
    for name in ("a", "b"):
        with ResultsStore(tmp_path / f"{name}.db") as store:
            (record,) = store.list_runs()
            ids.append(record.run_id)
            if name == "a":
                epochs, final, config = store.epochs(record.run_id), record.final_metrics, \
                    record.config
    assert ids[0] == ids[1]  # --track is not part of the config
    assert [run_dir for run_dir, _ in made] == [tmp_path / "a"]  # only the tracked run
    calls = made[0][1].calls
    assert calls[0] == ("start", ids[0], config, [])
    assert [c[1] for c in calls if c[0] == "epoch"] == epochs
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert calls[-2:] == [("finish", final), ("close",)]


def test_sweep_dry_run_ids_do_not_depend_on_track(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fake_registry(monkeypatch)
    plain = invoke(*SWEEP, "--db", f"{tmp_path}/r.db", "--dry-run")
    tracked = invoke(*SWEEP, "--db", f"{tmp_path}/r.db", "--dry-run", "--track",
                     "tensorboard")
    assert plain.exit_code == 0, plain.output
    assert tracked.output == plain.output


@pytest.mark.parametrize("command", ["train", "sweep"])
@pytest.mark.parametrize(("tracker", "module"), [("tensorboard", "tensorboard"),
                                                 ("mlflow", "mlflow")])
def test_a_missing_tracker_package_is_one_line_before_any_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, tracker: str,
        module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    args = ([*TINY_TRAIN, "--out", f"{tmp_path}/run"] if command == "train" else SWEEP)
    before = snapshot(tmp_path)
    result = invoke(*args, "--db", f"{tmp_path}/r.db", "--track", tracker)
    line = assert_cli_error(result)
    assert line == (f"Error: --track {tracker} needs the {module} package, which is not "
                    f"installed: pip install 'dal-backdoor[{tracker}]' (or "
                    "'dal-backdoor[track]' for both trackers)")
    assert snapshot(tmp_path) == before
