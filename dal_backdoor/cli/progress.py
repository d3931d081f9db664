"""Progress display and summary tables for single runs (used by ``train``).

On a terminal: rich bars (epochs, batches) with a live line of metrics. Without one (output
redirected to a file, SLURM, nohup): one plain line per epoch, flushed at once, e.g.
``epoch 3/150  loss 0.4123  train acc 86.20%  clean acc 84.10%  ASR 1.30%  12.4s``.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from dal_backdoor.metrics import (
    BACKDOOR_RATES,
    METRICS,
    fmt_counts,
    fmt_metric,
    fmt_percent,
    status_line,
)


def pct(value: float | None) -> str:
    """A fraction as a percentage with two decimals (no % sign), '-' for missing values."""
    return fmt_percent(value, sign=False)


#: The metrics of a plain epoch line, with their (ASCII) names.
_PLAIN = (("train_loss", "loss"), ("train_acc", "train acc"), ("clean_acc", "clean acc"),
          ("asr", "ASR"), ("q", "q"), ("lam", "lambda"))


def epoch_line(row: dict[str, Any], total: int) -> str:
    """One plain line for a finished epoch: epoch/total, loss, train acc, clean acc, ASR
    (when the run has a trigger), DAL's q and lambda (when scheduled), seconds."""
    parts = [f"epoch {row['epoch']}/{total}"]
    parts += [f"{label} {fmt_metric(name, row[name])}" for name, label in _PLAIN
              if row.get(name) is not None]
    seconds = row.get("epoch_seconds")
    if seconds is not None:
        parts.append(f"{seconds:.1f}s")
    return "  ".join(parts)


def print_line(console: Console, text: str) -> None:
    """``text`` as one unwrapped plain line, flushed (for logs read while the run goes on)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)
    console.file.flush()


class RunProgress:
    """Two bars (epochs, batches of the current epoch) and a live line of metrics on a
    terminal; one plain line per epoch (:func:`epoch_line`) without one."""

    def __init__(self, console: Console, header: str | None = None) -> None:
        self.header = header  # printed once the run has passed validation and starts
        self.console = console
        self.headless = not console.is_terminal
        self._total = 0
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
            console=console, transient=False,
        )
        self._epochs: Any = None
        self._batches: Any = None

    def __enter__(self) -> RunProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.headless:  # a stopped rich Progress prints a blank line off a terminal
            self.progress.stop()

    def callbacks(self) -> Any:
        from dal_backdoor.train import Callbacks

        if self.headless:
            return Callbacks(on_start=self._plain_start, on_epoch_end=self._plain_epoch_end)
        return Callbacks(on_start=self._start, on_epoch_start=self._epoch_start,
                         on_batch=self._batch, on_epoch_end=self._epoch_end)

    def _plain_start(self, cfg: Any, first_epoch: int) -> None:
        self._total = cfg.epochs
        if self.header:
            self.console.print(self.header, soft_wrap=True)
        if first_epoch > 1:
            print_line(self.console, f"resuming at epoch {first_epoch}/{cfg.epochs}")
        self.console.file.flush()

    def _plain_epoch_end(self, m: dict[str, Any]) -> None:
        print_line(self.console, epoch_line(m, self._total))

    def _start(self, cfg: Any, first_epoch: int) -> None:
        if self.header:
            self.progress.console.print(self.header)
        self.progress.start()
        self._epochs = self.progress.add_task("epochs", total=cfg.epochs,
                                              completed=first_epoch - 1, status="")
        self._batches = self.progress.add_task("batches", total=None, status="")

    def _epoch_start(self, epoch: int, total: int) -> None:
        self.progress.reset(self._batches, total=None, status=f"epoch {epoch}/{total}")

    def _batch(self, done: int, total: int) -> None:
        self.progress.update(self._batches, completed=done, total=total)

    def _epoch_end(self, m: dict[str, Any]) -> None:
        self.progress.update(self._epochs, advance=1, status=status_line(m))


_GROUPS = ("clean", "noisy", "poisoned")


def summary_table(result: Any) -> Table:
    """Final metrics of one run, with the counts behind each rate (labels from ``metrics``)."""
    f = result.final_metrics
    table = Table(title=f"run {result.run_id}: {result.config.loss} on {result.config.dataset}",
                  show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("counts", justify="right")

    def row(name: str, counts: str = "") -> None:
        m = METRICS[name]
        unit = " %" if m.kind == "rate" else ""
        value = pct(f.get(name)) if m.kind == "rate" else fmt_metric(name, f.get(name))
        table.add_row(f"{m.label}{unit}", value, counts)

    rates = ("clean_acc", *(BACKDOOR_RATES if result.config.trigger != "none" else ()))
    for rate in rates:
        row(rate, fmt_counts(f, rate))
    row("train_acc")
    for group in _GROUPS:
        if f.get(f"num_{group}"):
            row(f"train_acc_{group}", str(f[f"num_{group}"]))
    for name in ("train_loss", "epochs_done", "total_train_seconds"):
        row(name)
    return table
