"""``dal-backdoor train --poison-rate``: a share of the training set, recorded as a count."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from dal_backdoor.cli import cli
from dal_backdoor.config import RunConfig, high_poison_rate_warning, poison_count
from dal_backdoor.errors import ConfigError

ARGS = ["--dataset", "synthetic", "--dataset-param", "num_samples=300", "--dataset-param",
        "image_size=8", "--width", "2", "--epochs", "1", "--batch-size", "100", "--no-augment",
        "--device", "cpu", "--trigger", "local"]


def train(tmp_path: Path, name: str, *extra: str) -> tuple[int, str, Path]:
    out = tmp_path / name
    result = CliRunner().invoke(cli, ["train", *ARGS, *extra, "--out", str(out),
                                      "--db", str(tmp_path / "r.db")])
    return result.exit_code, result.output, out


def config_of(out: Path) -> RunConfig:
    return RunConfig.from_dict(json.loads((out / "config.json").read_text())["config"])


def test_poison_count_rounds_halves_up_and_is_at_least_one() -> None:
    assert poison_count(0.01, 10_000) == 100
    assert poison_count(0.025, 100) == 3  # 2.5 -> 3
    assert poison_count(0.024, 100) == 2
    assert poison_count(0.0001, 500) == 1  # 0.05 -> at least 1
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ConfigError, match=f"poison_rate={bad:g}"):
            poison_count(bad, 100)


def test_high_rate_warning() -> None:
    assert high_poison_rate_warning(100, 10_000) is None
    assert high_poison_rate_warning(100, 500).startswith(
        "100 poisoned images (20.0% of 500): a high poison rate")


def test_a_rate_trains_the_count_and_has_its_run_id(tmp_path: Path) -> None:
    code, output, out = train(tmp_path, "rate", "--train-subset", "200", "--poison-rate", "0.05")
    assert code == 0, output
    by_rate = config_of(out)
    assert by_rate.num_poison == 10
    code, output, out = train(tmp_path, "count", "--train-subset", "200", "--num-poison", "10")
    assert code == 0, output
    assert config_of(out).run_id == by_rate.run_id  # the same experiment, the same id
    code, output, out = train(tmp_path, "whole", "--poison-rate", "0.1")  # 300 samples
    assert code == 0, output
    assert config_of(out).num_poison == 30


def test_rate_and_count_exclude_each_other(tmp_path: Path) -> None:
    code, output, out = train(tmp_path, "both", "--num-poison", "5", "--poison-rate", "0.1")
    assert code == 2
    assert not out.exists()
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines == ["Error: --num-poison 5 and --poison-rate 0.1 exclude each other; allowed: "
                     "one of them"]
    code, output, _ = train(tmp_path, "bad", "--poison-rate", "1.5")
    assert code == 2
    assert "poison_rate=1.5" in output
    assert "Traceback" not in output


def test_default_count_on_a_small_subset_is_warned(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        code, output, _ = train(tmp_path, "small", "--train-subset", "250")
    assert code == 0, output
    assert any("100 poisoned images (40.0% of 250)" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        code, output, _ = train(tmp_path, "chosen", "--train-subset", "250", "--num-poison", "5")
    assert code == 0, output
    assert not any("poisoned images" in r.getMessage() for r in caplog.records)
