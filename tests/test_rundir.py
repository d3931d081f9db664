"""Run folders: content hashes written when a run finishes and checked before it is reused."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from dal_backdoor.config import RunConfig, resolve_config
from dal_backdoor.errors import CheckpointError, ConfigError
from dal_backdoor.rundir import RunDir, load_trained_model, metrics_digest
from dal_backdoor.store import ResultsStore
from dal_backdoor.train import fit
from tests.helpers import invoke


def tiny() -> RunConfig:
    return resolve_config(dataset="synthetic",
                          dataset_params={"num_samples": 200, "image_size": 16}, device="cpu",
                          width=4, epochs=1, batch_size=64, lr=0.05, augment=False,
                          trigger="local", num_poison=10, test_subset=100)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    fit(tiny(), run.parent / "r.db", run)
    return run


@pytest.fixture
def run(finished: Path, tmp_path: Path) -> Path:
    """A private copy of the finished run folder."""
    return Path(shutil.copytree(finished, tmp_path / "run"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


class Payload:
    """Unpickling this would create a file: proof that a payload ran."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_metrics_json_records_the_sha256_of_every_file(run: Path) -> None:
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["sha256"] == {
        "config.json": sha256(run / "config.json"), "manifest.json": sha256(run / "manifest.json"),
        "model.pt": sha256(run / "model.pt"), "metrics.json": metrics_digest(metrics)}
    assert RunDir(run).finished_metrics(tiny().run_id)["final"] == metrics["final"]


def test_edited_metrics_are_refused_and_not_recorded(run: Path, tmp_path: Path) -> None:
    edit_json(run / "metrics.json", lambda m: m["final"].update(clean_acc=0.99))
    with pytest.raises(CheckpointError, match=r"metrics.json changed after the run finished.*"
                                              r"delete .*run to train the run again"):
        fit(tiny(), tmp_path / "new.db", run)
    assert not (tmp_path / "new.db").exists()  # refused before the store was even opened
    with pytest.raises(CheckpointError, match="metrics.json changed"):
        load_trained_model(run)


@pytest.mark.parametrize("name", ["model.pt", "config.json", "manifest.json"])
def test_a_changed_file_is_refused_by_name(run: Path, tmp_path: Path, name: str) -> None:
    (run / name).write_bytes(os.urandom(64) if name == "model.pt" else b"{}\n")
    with pytest.raises(CheckpointError, match=f"{name} changed after the run finished"):
        fit(tiny(), tmp_path / "new.db", run)
    assert not (tmp_path / "new.db").exists()


def test_a_deleted_model_or_an_unrecorded_file_is_refused(run: Path, finished: Path) -> None:
    (run / "model.pt").unlink()
    with pytest.raises(CheckpointError, match="model.pt changed"):
        RunDir(run).finished_metrics(tiny().run_id)
    shutil.copy(finished / "model.pt", run / "model.pt")
    assert RunDir(run).finished_metrics(tiny().run_id) is not None
    edit_json(run / "metrics.json", lambda m: m["sha256"].pop("manifest.json"))
    with pytest.raises(CheckpointError, match="manifest.json changed after the run finished "
                                              r"\(a file the finished run did not have"):
        RunDir(run).finished_metrics(tiny().run_id)


def test_an_intact_finished_run_is_recorded_into_a_new_store(run: Path, tmp_path: Path) -> None:
    result = fit(tiny(), tmp_path / "new.db", run)
    assert result.resumed_from == 1
    with ResultsStore(tmp_path / "new.db") as store:
        record = store.get_run(tiny().run_id)
        assert record.status == "finished"
        # provenance is the one the run folder recorded, not this process's
        saved = json.loads((run / "config.json").read_text())["provenance"]
        assert record.provenance == saved


def strip_hashes(run: Path) -> None:
    """Make the folder look like one written before hashes were recorded."""
    edit_json(run / "metrics.json", lambda m: m.pop("sha256"))


def test_a_legacy_folder_is_recorded_with_its_own_provenance(run: Path, tmp_path: Path) -> None:
    strip_hashes(run)
    edit_json(run / "config.json", lambda c: c["provenance"].update(host="trainer-host"))
    assert fit(tiny(), tmp_path / "new.db", run).resumed_from == 1
    with ResultsStore(tmp_path / "new.db") as store:
        assert store.get_run(tiny().run_id).host == "trainer-host"


def test_legacy_folder_with_garbage_model_is_refused(run: Path, tmp_path: Path) -> None:
    strip_hashes(run)
    (run / "model.pt").write_bytes(os.urandom(300))
    with pytest.raises(CheckpointError, match=r"model.pt is not a saved model"):
        fit(tiny(), tmp_path / "new.db", run)
    assert not (tmp_path / "new.db").exists()


def test_pickle_payload_is_refused_without_running(run: Path, tmp_path: Path) -> None:
    strip_hashes(run)
    marker = tmp_path / "payload-ran"
    (run / "model.pt").write_bytes(pickle.dumps(Payload(marker), protocol=2))
    with pytest.raises(CheckpointError, match=r"model.pt is not a saved model \(Weights only"):
        load_trained_model(run)
    assert not marker.exists()


def test_config_edited_to_another_dataset_is_refused(run: Path) -> None:
    strip_hashes(run)
    edit_json(run / "config.json", lambda c: c["config"].update(dataset="cifar100"))
    with pytest.raises(CheckpointError, match=r"config.json was edited: its config is run "
                                              r"[0-9a-f]{16}, not the recorded run"):
        load_trained_model(run)


def test_weights_that_do_not_fit_the_config_are_refused(run: Path) -> None:
    strip_hashes(run)
    edit_json(run / "config.json", lambda c: c["data"].update(num_classes=7))
    with pytest.raises(CheckpointError, match=r"model.pt does not fit the run's config "
                                              r"\(Error\(s\) in loading state_dict"):
        load_trained_model(run)


def test_missing_and_invalid_files(run: Path, tmp_path: Path) -> None:
    (run / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="config.json is not valid JSON"):
        load_trained_model(run)
    (run / "config.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="config.json is not valid JSON"):
        load_trained_model(run)
    (run / "config.json").unlink()
    with pytest.raises(ConfigError, match="holds no finished run"):
        load_trained_model(run)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no finished run"):
        load_trained_model(tmp_path / "empty")


def test_evaluate_cli_prints_one_line_for_a_garbage_model(run: Path) -> None:
    (run / "model.pt").write_bytes(os.urandom(300))
    result = invoke("evaluate", str(run), "--device", "cpu")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ")
    assert "model.pt changed after the run finished" in lines[0]
    assert "Traceback" not in result.output


def test_loaded_model_is_the_saved_one(run: Path) -> None:
    model, cfg, info = load_trained_model(run)
    saved = torch.load(run / "model.pt", weights_only=True)
    assert cfg.run_id == tiny().run_id
    assert info["num_classes"] == 10
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    assert not model.training
