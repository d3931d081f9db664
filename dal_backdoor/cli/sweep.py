"""``dal-backdoor sweep``: run every missing run of a named grid under a preset."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.live import Live
from rich.table import Table
from rich.text import Text

from dal_backdoor.cli.common import (
    OutputPath,
    console,
    default_db,
    default_root,
    parse_key_values,
    registry_names,
    set_interrupt_hint,
)
from dal_backdoor.cli.progress import print_line
from dal_backdoor.experiments import RunSpec, list_grids, list_presets
from dal_backdoor.metrics import rates_line

if TYPE_CHECKING:  # the sweep module imports torch; --help must not
    from dal_backdoor.sweep import SweepEvent

MAX_WORKERS = 1024


class LiveSweep:
    """One rich view for the whole sweep on a terminal: a line per active run and the overall
    count. Without a terminal (a log file, SLURM, nohup): one plain flushed line per event (a
    run starts, finishes an epoch, ends)."""

    def __init__(self) -> None:
        self.headless = not console.is_terminal
        self.total = self.done = self.failed = 0
        self.skipped = 0
        self.labels: dict[str, str] = {}
        self.active: dict[str, str] = {}
        self.started = time.monotonic()
        self.live = Live(self._render(), console=console, refresh_per_second=4, transient=False)

    def on_sweep_start(self, specs: list[RunSpec], pending: list[RunSpec]) -> None:
        self.total = len(specs)
        self.skipped = len(specs) - len(pending)
        self.labels = {s.run_id: s.label for s in specs}
        if self.headless:
            print_line(console, f"sweep: {self.total} runs, {self.skipped} already finished, "
                                f"{len(pending)} to run")
            return
        self.live.start()  # only once the sweep has passed validation
        self.live.update(self._render())

    def on_event(self, event: SweepEvent) -> None:
        line = self._apply(event)
        if self.headless:
            if line is not None:
                print_line(console, line)
            return
        if event.kind == "end" and line is not None:
            style = "green" if line.startswith("done") else "red"
            self.live.console.print(Text(line, style=style))
        self.live.update(self._render())

    def _apply(self, event: SweepEvent) -> str | None:
        """Update the counts and active runs for ``event``; its line of text (None for an
        event kind without one)."""
        label = self.labels.get(event.run_id, event.run_id)
        d = event.data
        if event.kind == "start":
            self.active[event.run_id] = f"{label}: starting at epoch {d.get('first_epoch', 1)}"
            return self.active[event.run_id]
        if event.kind == "epoch":
            self.active[event.run_id] = (f"{label}: epoch {d['epoch']}/{d['epochs']}  "
                                         f"{rates_line(d)}")
            return self.active[event.run_id]
        if event.kind != "end":
            return None
        self.active.pop(event.run_id, None)
        finished = d.get("status") == "finished"
        self.done += finished
        self.failed += not finished
        count = f"({self.skipped + self.done}/{self.total} finished)"
        if finished:
            return f"done {label}  {rates_line(d)}  {count}"
        return f"failed {label}: {d.get('error')}  {count}"

    def _render(self) -> Table:
        table = Table.grid(padding=(0, 1))
        elapsed = time.monotonic() - self.started
        finished = self.skipped + self.done
        table.add_row(f"[bold]sweep[/] {finished}/{self.total} finished "
                      f"({self.skipped} already done), {self.failed} failed, "
                      f"{len(self.active)} running, {elapsed:.0f}s")
        for status in self.active.values():
            table.add_row(f"  {status}")
        return table


@click.command()
@click.argument("grid", type=click.Choice(list_grids()))
@click.option("--preset", type=click.Choice(list_presets()), default="small", show_default=True,
              help="paper: the paper's full setup; small: 2-core CPU; ci: smallest.")
@click.option("--db", type=OutputPath("file"), default=default_db,
              show_default="results/results.db or $DAL_BACKDOOR_DB", help="Results store.")
@click.option("--runs-dir", type=OutputPath("dir", entries=("*",)), default=None,
              help="Run directories (checkpoints, models). Default: runs/ beside --db.")
@click.option("--root", default=default_root, show_default="./data or $DAL_BACKDOOR_DATA",
              help="Where data sets live.")
@click.option("--only", default=None, metavar="KEY=V[|V],...",
              help="Narrow the grid, e.g. 'dataset=cifar10,loss=ce|dal,seed=0'.")
@click.option("--set", "overrides", multiple=True, metavar="K=V",
              help="Override a run setting for every run (e.g. epochs=2); changes run ids. "
              "Not for the grid's axes (dataset, loss, trigger, noise, seed).")
@click.option("--seeds", default=None, metavar="SEEDS",
              help="The seeds to run instead of the grid's 0,1,2, e.g. 0-4 or 0,2,5.")
@click.option("--jobs", type=click.IntRange(min=1, max=MAX_WORKERS), default=1, show_default=True,
              help="Concurrent runs on CPU (each gets cpu_count/jobs threads).")
@click.option("--runs-per-gpu", type=click.IntRange(min=1, max=MAX_WORKERS), default=1,
              show_default=True,
              help="Concurrent runs per visible GPU.")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local",
              show_default=True)
@click.option("--address", default=None, help="Ray cluster address (backend ray).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--dry-run", is_flag=True, help="List the runs and what would be done.")
@click.option("--track", multiple=True,
              type=click.Choice(registry_names("dal_backdoor.tracking", "list_trackers")),
              help="Also log each run's epochs and config to TensorBoard (<run folder>/"
              "tensorboard) or MLflow; repeatable. Needs pip install 'dal-backdoor[track]'.")
def command(grid: str, preset: str, db: Path, runs_dir: Path | None, root: str, only: str | None,
            overrides: tuple[str, ...], seeds: str | None, jobs: int, runs_per_gpu: int,
            backend: str, address: str | None, device: str, dry_run: bool,
            track: tuple[str, ...]) -> None:
    """Run every missing run of GRID (table6, table2, table3) under a preset.

    Finished runs (same run id in --db) are skipped, interrupted ones resume from their
    checkpoints, failed ones are retried; a run that fails is recorded with its error and the
    sweep goes on. Then print the table with `dal-backdoor table GRID --preset P`.

    \b
    Example (Table 6 under the small preset, two runs at a time, then the table):
      dal-backdoor sweep table6 --preset small --jobs 2 --db results/small.db
      dal-backdoor sweep table6 --only 'loss=ce|dal' --seeds 0-4 --set epochs=4
      dal-backdoor table table6 --preset small --db results/small.db
    """
    from dal_backdoor.experiments import expand, parse_only, parse_seeds
    from dal_backdoor.sweep import run_sweep
    from dal_backdoor.tracking import check_available

    track = check_available(track)  # a missing package: one line, before any run
    expansion = expand(grid, preset, data_root=root, only=parse_only(only), device=device,
                       overrides=parse_key_values(overrides, "--set"), seeds=parse_seeds(seeds))
    if address is not None and backend != "ray":
        raise click.UsageError("--address is only used with --backend ray")
    if not expansion.specs:
        raise click.UsageError(f"no runs to do: the grid {grid} under preset {preset} "
                               "(and --only) selects nothing")
    runs_dir = check_before_writing(expansion.specs, db, runs_dir)
    set_interrupt_hint(f"finished runs are kept and interrupted ones resume from their last "
                       f"epoch: run the same `dal-backdoor sweep {grid}` command again")
    if dry_run:
        table = Table(title=f"{grid} / {preset}: {len(expansion.specs)} runs")
        for col in ("run id", "cell", "dataset", "epochs", "width", "device"):
            table.add_column(col)
        for spec in expansion.specs:
            c = spec.config
            table.add_row(spec.run_id, spec.label, c.dataset, str(c.epochs), str(c.width),
                          f"{c.device}/{c.precision}")
        console.print(table)
        return
    reporter = LiveSweep()
    try:
        summary = run_sweep(expansion.specs, db, runs_dir, jobs=jobs, runs_per_gpu=runs_per_gpu,
                            backend=backend, address=address, reporter=reporter, track=track)
    finally:
        if reporter.live.is_started:  # started on a terminal only
            reporter.live.stop()
    for _cell, reason in expansion.skipped[:1]:
        console.print(f"[yellow]skipped {len(expansion.skipped)} cell(s): {reason}[/]")
    console.print(f"[bold]{grid}/{preset}[/]: {summary.already_finished} already finished, "
                  f"{len(summary.finished)} run now, {len(summary.failed)} failed "
                  f"(store {db}, runs in {runs_dir})")
    if summary.failed:
        raise click.ClickException(f"{len(summary.failed)} run(s) failed; see "
                                   f"`dal-backdoor runs --db {db} --status failed`")


def check_before_writing(specs: list[RunSpec], db: Path, runs_dir: Path | None) -> Path:
    """Everything that would fail every run, refused before the first write (also for
    --dry-run): run folders, each cell's data/trigger/poisons, the store. Returns the runs
    folder (default: runs/ beside --db)."""
    from dal_backdoor.experiments import check_specs
    from dal_backdoor.io import check_output_dir
    from dal_backdoor.store import check_store

    runs_dir = runs_dir or check_output_dir(db.parent / "runs", "--runs-dir", ("*",))
    for spec in specs:
        check_output_dir(runs_dir / spec.run_id, "run folder", ("*",))
    check_specs(specs)
    check_store(db)  # an unusable store is refused before the runs folder is created
    return runs_dir
