"""Rich progress display and summary tables for single runs (used by ``train``)."""

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


def pct(value: float | None) -> str:
    """A fraction as a percentage with two decimals, '-' for missing values."""
    return "-" if value is None else f"{100 * value:.2f}"


class RunProgress:
    """Two bars (epochs, batches of the current epoch) and a live line of metrics."""

    def __init__(self, console: Console, header: str | None = None) -> None:
        self.header = header  # printed once the run has passed validation and starts
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
        self.progress.stop()

    def callbacks(self) -> Any:
        from dal_backdoor.train import Callbacks

        return Callbacks(on_start=self._start, on_epoch_start=self._epoch_start,
                         on_batch=self._batch, on_epoch_end=self._epoch_end)

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
        status = f"loss {m['train_loss']:.4f}  clean acc {pct(m.get('clean_acc'))}%"
        if m.get("asr") is not None:
            status += f"  ASR {pct(m['asr'])}%"
        if m.get("q") is not None:
            status += f"  q {m['q']:.3f}"
        if m.get("lam") is not None:
            status += f"  λ {m['lam']:.3f}"
        self.progress.update(self._epochs, advance=1, status=status)


def summary_table(result: Any) -> Table:
    """Final metrics of one run, with the counts behind each rate."""
    f = result.final_metrics
    table = Table(title=f"run {result.run_id}: {result.config.loss} on {result.config.dataset}",
                  show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("counts", justify="right")

    def counts(hits: str, total: str) -> str:
        if f.get(hits) is None or f.get(total) is None:
            return ""
        return f"{f[hits]}/{f[total]}"

    table.add_row("clean test accuracy %", pct(f.get("clean_acc")),
                  counts("clean_correct", "clean_total"))
    if result.config.trigger != "none":
        table.add_row("attack success rate % (paper)", pct(f.get("asr")),
                      counts("asr_hits", "asr_total"))
        table.add_row("ASR % (true label != target)", pct(f.get("asr_true")),
                      counts("asr_true_hits", "asr_true_total"))
        table.add_row("robust accuracy %", pct(f.get("robust_acc")),
                      counts("robust_correct", "robust_total"))
    table.add_row("train accuracy (observed labels) %", pct(f.get("train_acc")), "")
    for group in ("clean", "noisy", "poisoned"):
        if f.get(f"num_{group}"):
            table.add_row(f"  on {group} training samples %", pct(f.get(f"train_acc_{group}")),
                          str(f[f"num_{group}"]))
    table.add_row("final train loss", f"{f['train_loss']:.4f}", "")
    table.add_row("epochs", str(f.get("epochs_done")), "")
    table.add_row("training time (s)", f"{f.get('total_train_seconds', 0.0):.1f}", "")
    return table
