"""``sweep``'s display: a rich live view on a terminal, one plain line per event without."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from rich.console import Console

from dal_backdoor.cli import sweep as sweep_cli
from dal_backdoor.sweep import SweepEvent

SPECS = [SimpleNamespace(run_id="r1", label="cifar10/ce/local/seed0"),
         SimpleNamespace(run_id="r2", label="cifar10/dal/local/seed0")]
EVENTS = [SweepEvent("start", "r1", {"first_epoch": 1}),
          SweepEvent("epoch", "r1", {"epoch": 1, "epochs": 2, "clean_acc": 0.5, "asr": 0.25}),
          SweepEvent("end", "r1", {"status": "finished", "clean_acc": 0.6, "asr": 0.125}),
          SweepEvent("end", "r2", {"status": "failed", "error": "boom"})]


def replay(monkeypatch: pytest.MonkeyPatch, console: Console) -> None:
    monkeypatch.setattr(sweep_cli, "console", console)
    live = sweep_cli.LiveSweep()
    live.on_sweep_start(SPECS, SPECS)
    for event in EVENTS:
        live.on_event(event)
    if live.live.is_started:
        live.live.stop()


def test_without_a_terminal_one_line_per_event(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    replay(monkeypatch, Console(file=out, width=30))
    assert out.getvalue().splitlines() == [
        "sweep: 2 runs, 0 already finished, 2 to run",
        "cifar10/ce/local/seed0: starting at epoch 1",
        "cifar10/ce/local/seed0: epoch 1/2  clean acc 50.00%  ASR 25.00%",
        "done cifar10/ce/local/seed0  clean acc 60.00%  ASR 12.50%  (1/2 finished)",
        "failed cifar10/dal/local/seed0: boom  (1/2 finished)",
    ]


def test_on_a_terminal_the_live_view_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    replay(monkeypatch, Console(file=out, force_terminal=True, width=200))
    text = out.getvalue()
    assert "1/2 finished (0 already done), 1 failed" in text
    assert "done cifar10/ce/local/seed0" in text
    assert "[bold]" not in text
    assert "sweep: 2 runs" not in text
