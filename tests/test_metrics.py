"""Metrics are declared once: what the trainer records is exactly what ``metrics`` declares,
and every display formats rates through the one percentage formatter."""

from __future__ import annotations

import json

import pytest

from dal_backdoor.metrics import (
    KINDS,
    METRICS,
    as_percent,
    fmt_counts,
    fmt_metric,
    fmt_percent,
    rates_line,
    status_line,
)
from tests.helpers import invoke

# A run that produces every metric: a trigger (ASR, robust accuracy), label noise (noisy group,
# noise rate), poisons (poisoned group) and DAL (scheduled q and lambda).
ARGS = ["--dataset", "synthetic", "--dataset-param", "num_samples=200", "--dataset-param",
        "image_size=8", "--width", "2", "--epochs", "2", "--batch-size", "64", "--no-augment",
        "--trigger", "local", "--num-poison", "10", "--noise-kind", "symmetric",
        "--noise-rate", "0.2", "--loss", "dal", "--device", "cpu"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("metrics")
    out = tmp / "run"
    result = invoke("train", *ARGS, "--out", str(out), "--db",
                    str(tmp / "r.db"))
    assert result.exit_code == 0, result.output
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.slow  # trains (module fixture)
def test_every_produced_metric_is_declared_and_every_declared_one_produced(
    recorded: dict,
) -> None:
    per_epoch = {k for row in recorded["history"] for k in row}
    final = set(recorded["final"])
    assert per_epoch | final == set(METRICS)
    assert per_epoch == {n for n, m in METRICS.items() if not m.final_only}
    assert final == set(METRICS) - {"epoch"}


def test_declarations_are_well_formed() -> None:
    assert all(m.kind in KINDS and m.label for m in METRICS.values())
    assert all(m.short for m in METRICS.values() if m.shown)
    rates = {n for n, m in METRICS.items() if m.kind == "rate"}
    assert {"train_acc", "train_acc_clean", "train_acc_noisy", "train_acc_poisoned"} <= rates
    assert "poison_fit" not in METRICS


def test_one_percentage_formatter() -> None:
    assert fmt_percent(0.91) == "91.00%"
    assert fmt_percent(0.91, sign=False) == "91.00"
    assert fmt_percent(0.12345, digits=1) == "12.3%"
    assert [fmt_percent(v) for v in (None, float("nan"), True, "x")] == ["-"] * 4
    assert as_percent(0.5) == 50.0
    assert as_percent(None) is None


def test_values_are_formatted_by_kind() -> None:
    assert fmt_metric("train_acc", 0.91) == "91.00%"
    assert fmt_metric("train_acc_poisoned", 1.0) == "100.00%"
    assert fmt_metric("clean_total", 1000) == "1000"
    assert fmt_metric("train_loss", 0.123456) == "0.1235"
    assert fmt_metric("total_train_seconds", 12.34) == "12.3"
    assert fmt_metric("lr", 0.05) == "0.05"
    assert fmt_metric("epoch", 3) == "3"
    assert fmt_metric("dataset", "cifar10") == "cifar10"  # not a metric: as is
    assert fmt_metric("loss_params", {"q": 0.7}) == '{"q": 0.7}'
    assert fmt_metric("asr", None) == "-"


def test_one_line_displays() -> None:
    row = {"train_loss": 0.5, "clean_acc": 0.9, "asr": 0.015, "q": 0.85, "lam": 0.0,
           "asr_hits": 3, "asr_total": 200, "epoch": 2}
    assert status_line(row) == "loss 0.5000  clean acc 90.00%  ASR 1.50%  q 0.85  λ 0"
    assert rates_line(row) == "clean acc 90.00%  ASR 1.50%"
    assert rates_line({"clean_acc": 0.9}) == "clean acc 90.00%"
    assert fmt_counts(row, "asr") == "3/200"
    assert fmt_counts(row, "clean_acc") == ""


@pytest.mark.slow  # trains (module fixture)
def test_runs_shows_train_accuracies_as_percentages(recorded: dict) -> None:
    from dal_backdoor.cli.runs import epochs_table, fmt_value

    assert fmt_value("train_acc", 0.91) == "91.00%"
    table = epochs_table(recorded["history"])
    headers = [c.header for c in table.columns]
    column = list(table.columns[headers.index("train_acc")].cells)
    assert column == [fmt_percent(row["train_acc"]) for row in recorded["history"]]
