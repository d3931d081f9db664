"""``train``'s progress: rich bars on a terminal, one plain flushed line per epoch without."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from dal_backdoor.cli.progress import RunProgress, epoch_line

ROW = {"epoch": 3, "train_loss": 0.41234, "train_acc": 0.862, "clean_acc": 0.841,
       "asr": 0.013, "q": None, "lam": None, "epoch_seconds": 12.44}


class CountingFile(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1


def test_epoch_line() -> None:
    assert epoch_line(ROW, 150) == ("epoch 3/150  loss 0.4123  train acc 86.20%  "
                                    "clean acc 84.10%  ASR 1.30%  12.4s")
    no_trigger = {**ROW, "asr": None, "q": 0.9, "lam": 0.5}
    assert epoch_line(no_trigger, 8) == ("epoch 3/8  loss 0.4123  train acc 86.20%  "
                                         "clean acc 84.10%  q 0.9  lambda 0.5  12.4s")


def run_progress(console: Console) -> None:
    with RunProgress(console, header="[bold]run[/] abc") as progress:
        cb = progress.callbacks()
        cb.on_start(SimpleNamespace(epochs=150), 3)
        if cb.on_epoch_start:
            cb.on_epoch_start(3, 150)
        if cb.on_batch:
            cb.on_batch(1, 2)
        cb.on_epoch_end(ROW)


def test_without_a_terminal_one_plain_line_per_epoch_flushed() -> None:
    out = CountingFile()
    run_progress(Console(file=out, width=40))  # narrow: the line must not wrap
    lines = out.getvalue().splitlines()
    assert lines == ["run abc", "resuming at epoch 3/150",
                     "epoch 3/150  loss 0.4123  train acc 86.20%  clean acc 84.10%  ASR 1.30%  "
                     "12.4s"]
    assert out.flushes >= 2


def test_on_a_terminal_the_bars_are_kept() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200)
    assert not RunProgress(console).headless
    run_progress(console)
    assert "epochs" in out.getvalue()
    assert "epoch 3/150  loss" not in out.getvalue()
