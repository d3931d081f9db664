"""``dal-backdoor train --init / --noise-seed``: recorded in the run's config and its id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dal_backdoor.config import RunConfig
from tests.helpers import assert_cli_error, invoke

ARGS = ["--dataset", "synthetic", "--dataset-param", "num_samples=200", "--dataset-param",
        "image_size=8", "--width", "2", "--epochs", "1", "--batch-size", "100", "--no-augment",
        "--device", "cpu", "--noise-kind", "symmetric", "--noise-rate", "0.2"]


def _train(tmp_path: Path, name: str, *extra: str) -> RunConfig:
    out = tmp_path / name
    result = invoke("train", *ARGS, *extra, "--out", str(out),
                    "--db", str(tmp_path / "r.db"))
    assert result.exit_code == 0, result.output
    return RunConfig.from_dict(json.loads((out / "config.json").read_text())["config"])


@pytest.mark.slow  # trains twice
def test_init_and_noise_seed_defaults_and_options(tmp_path: Path) -> None:
    default = _train(tmp_path, "default")
    assert (default.init, default.noise_seed) == ("pytorch", 0)
    chosen = _train(tmp_path, "chosen", "--init", "torchvision", "--noise-seed", "3")
    assert (chosen.init, chosen.noise_seed) == ("torchvision", 3)
    assert chosen.run_id != default.run_id


def test_bad_init_is_one_error_line(tmp_path: Path) -> None:
    result = invoke("train", *ARGS, "--init", "xavier", "--out",
                    str(tmp_path / "x"))
    assert "'xavier' is not one of 'pytorch', 'torchvision'" in assert_cli_error(result)
