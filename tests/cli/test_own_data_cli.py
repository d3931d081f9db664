"""A researcher's own image folder / .npz archive and own model, through ``dal-backdoor train``,
``evaluate`` and a two-worker ``sweep`` (issue 18)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from dal_backdoor.data.catalog import resolve_dataset_params
from dal_backdoor.models.user import source_sha256
from dal_backdoor.store import ResultsStore
from tests.fakedata import write_image_folder, write_model_module, write_npz
from tests.helpers import REPO, cli_env, invoke

pytestmark = pytest.mark.slow  # trains through the CLI and in subprocesses

TINY = ["--width", "2", "--epochs", "1", "--device", "cpu"]



def test_train_and_evaluate_an_image_folder_with_a_user_model(tmp_path: Path,
                                                              module: str) -> None:
    write_image_folder(tmp_path / "imgs")
    out = tmp_path / "run"
    result = invoke("train", "--dataset", "folder", "--dataset-param",
                    f"path={tmp_path / 'imgs'}", "--model", f"{module}:build", "--model-param",
                    "hidden=3", "--trigger", "local", "--trigger-param", "size=2",
                    "--num-poison", "2", "--target-class", "1", *TINY, "--out", str(out),
                    "--db", str(tmp_path / "r.db"))
    assert result.exit_code == 0, result.output
    stored = json.loads((out / "config.json").read_text())
    cfg, data = stored["config"], stored["data"]
    assert cfg["dataset_params"] == resolve_dataset_params(
        "folder", {"path": str(tmp_path / "imgs")}, "unused")
    assert cfg["model_params"] == {
        "hidden": 3, "sys_path": str((tmp_path / "nets").resolve()),
        "sha256": source_sha256([(tmp_path / "nets" / f"{module}.py").resolve()])}
    # 6, 5, 4 images of cat, dog, emu; one of each held out for testing
    assert (data["num_classes"], data["in_channels"], data["image_size"]) == (3, 3, [8, 8])
    assert (data["num_train"], data["num_test"], data["num_poisoned"]) == (12, 3, 2)
    metrics = json.loads((out / "metrics.json").read_text())["final"]
    assert metrics["clean_total"] == 3

    result = invoke("evaluate", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert f"{metrics['clean_correct']}/3" in result.output


def test_train_an_npz_archive(tmp_path: Path) -> None:
    write_npz(tmp_path / "d.npz", n=30, num_classes=3)
    out = tmp_path / "run"
    result = invoke("train", "--dataset", "npz", "--root", str(tmp_path / "d.npz"),
                    "--dataset-param", "test_fraction=0.3", "--target-class", "0", *TINY,
                    "--out", str(out), "--db", str(tmp_path / "r.db"))
    assert result.exit_code == 0, result.output
    data = json.loads((out / "config.json").read_text())["data"]
    assert (data["num_train"], data["num_test"], data["in_channels"]) == (21, 9, 1)


LAUNCHER = ("from dal_backdoor.cli import main\n"  # like the console script: no cwd on sys.path
            "if __name__ == \"__main__\":\n    main()\n")


def test_sweep_of_two_workers_imports_the_user_model_from_the_current_folder(
        tmp_path: Path) -> None:
    """Run from the folder holding the data and the model module, as a researcher would,
    through a launcher that (like the ``dal-backdoor`` console script) does not put the
    current folder on sys.path: the driver finds the module there, records the folder, and
    both spawned workers import the module (they start with the driver's sys.path; a process
    that does not, uses the recorded folder: tests/models/test_user_model.py)."""
    work = tmp_path / "work"
    name = f"usernet_{uuid.uuid4().hex[:12]}"
    write_model_module(work, name)
    write_image_folder(work / "imgs")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "launch.py").write_text(LAUNCHER)
    args = [sys.executable, str(tmp_path / "bin" / "launch.py"), "sweep", "table6",
            "--preset", "ci", "--only", "loss=ce,trigger=local", "--seeds", "0-1",
            "--set", "dataset=folder", "--set", "train_subset=none", "--set",
            "test_subset=none", "--set", "num_poison=2", "--set", "target_class=1",
            "--set", "width=2", "--set", "epochs=1", "--set", f"model={name}:build",
            "--root", "imgs", "--jobs", "2", "--device", "cpu", "--db", "s.db"]
    env = cli_env()
    env["PYTHONPATH"] = str(REPO)  # the package only: not the work folder
    done = subprocess.run(args, cwd=work, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 already finished, 2 run now, 0 failed" in done.stdout
    with ResultsStore(work / "s.db") as store:
        runs = store.list_runs()
    assert sorted(r.status for r in runs) == ["finished", "finished"]
    assert sorted(r.config["seed"] for r in runs) == [0, 1]
    for run in runs:
        assert run.config["model_params"]["sys_path"] == str(work.resolve())
        assert run.config["dataset_params"]["path"] == str(work / "imgs")
        assert run.final_metrics["clean_total"] == 3
    again = subprocess.run(args, cwd=work, capture_output=True, text=True, timeout=600,
                           env=env)
    assert "2 already finished, 0 run now" in again.stdout, again.stdout + again.stderr
