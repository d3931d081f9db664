from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import cli_env, invoke

pytestmark = pytest.mark.slow  # trains through the CLI and in subprocesses

ARGS = ["--dataset", "synthetic", "--dataset-param", "num_samples=300", "--dataset-param",
        "image_size=16", "--width", "4", "--epochs", "3", "--batch-size", "64", "--lr", "0.05",
        "--no-augment", "--trigger", "local", "--num-poison", "20", "--device", "cpu"]


def test_train_evaluate_runs_through_clirunner(tmp_path: Path) -> None:
    out, db = tmp_path / "run", tmp_path / "r.db"
    result = invoke("train", *ARGS, "--loss", "dal", "--out", str(out),
                    "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "attack success rate" in result.output
    assert "wrote" in result.output
    epoch_lines = [x for x in result.output.splitlines() if x.startswith("epoch ")]
    assert [x.split("  ")[0] for x in epoch_lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all(" clean acc " in x and " ASR " in x and x.endswith("s") for x in epoch_lines)
    metrics = json.loads((out / "metrics.json").read_text())["final"]

    result = invoke("evaluate", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    expected = f"{metrics['clean_correct']}/{metrics['clean_total']}"
    assert expected in result.output
    assert f"{metrics['asr_hits']}/{metrics['asr_total']}" in result.output

    result = invoke("evaluate", str(out), "--device", "cpu", "--trigger", "none")
    assert result.exit_code == 0
    assert "ASR" not in result.output

    result = invoke("runs", "--db", str(db))
    assert result.exit_code == 0
    assert "finished" in result.output
    assert "3/3" in result.output

    again = invoke("train", *ARGS, "--loss", "dal", "--out", str(out),
                   "--db", str(db))
    assert again.exit_code == 0
    assert "already finished" in again.output


def test_sigkilled_train_resumes_to_identical_weights(tmp_path: Path) -> None:
    """A `dal-backdoor train` subprocess killed during its 2nd checkpoint write (write #4:
    config, manifest, checkpoint 1, checkpoint 2) resumes to the uninterrupted result."""
    def train(out: Path, *extra: str, crash: str | None = None) -> int:
        env = cli_env(DAL_BACKDOOR_CRASH_AT=crash) if crash else cli_env()
        cmd = [sys.executable, "-m", "dal_backdoor", "train", *ARGS, "--loss", "ce",
               "--out", str(out), "--db", str(tmp_path / f"{out.name}.db"), *extra]
        return subprocess.run(cmd, env=env, capture_output=True, timeout=300).returncode

    assert train(tmp_path / "straight") == 0
    assert train(tmp_path / "killed", crash="atomic-write:4") == -9
    ckpt = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 1  # the interrupted write left the previous checkpoint intact
    assert train(tmp_path / "killed", "--resume") == 0
    a = torch.load(tmp_path / "straight" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "killed" / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    ma = json.loads((tmp_path / "straight" / "metrics.json").read_text())["history"]
    mb = json.loads((tmp_path / "killed" / "metrics.json").read_text())["history"]
    drop = {"train_seconds", "epoch_seconds"}
    assert ([{k: v for k, v in r.items() if k not in drop} for r in ma]
            == [{k: v for k, v in r.items() if k not in drop} for r in mb])
    assert not list((tmp_path / "killed").glob(".*.tmp"))
