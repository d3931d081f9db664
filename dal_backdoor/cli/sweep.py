"""``dal-backdoor sweep``: run every missing run of a named grid under a preset."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.live import Live
from rich.table import Table
from rich.text import Text

from dal_backdoor.cli.common import (
    OutputPath,
    console,
    convert_value,
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
    from dal_backdoor.experiments import Expansion
    from dal_backdoor.grid_file import UserGrid
    from dal_backdoor.sweep import SweepEvent

CUSTOM = "custom"  # the grid of --axis options alone (dal_backdoor.grid_file.CUSTOM)

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
@click.argument("grid", type=click.Choice([*list_grids(), CUSTOM]), required=False)
@click.option("--grid-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A TOML file defining your own grid (axes, fixed settings, preset, seeds, "
              "table layout); see the README, 'Your own grid'.")
@click.option("--axis", "axes", multiple=True, metavar="K=V1,V2",
              help="Sweep run setting K over these values (repeatable): on `custom`, on a "
              "built-in GRID (adds or replaces that axis) or on --grid-file.")
@click.option("--name", default=None,
              help="Store tag of a user grid (default: custom, GRID-custom or the file's).")
@click.option("--preset", type=click.Choice(list_presets()), default=None,
              show_default="small, or the grid file's",
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
              help="Override a run setting for every run (e.g. epochs=2), or one option of "
              "a trigger, loss, noise, data set or model (e.g. trigger_params.amplitude=0.125, "
              "loss_params.q=0.5); changes run ids. Not for the grid's axes (dataset, loss, "
              "trigger, noise, seed).")
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
def command(grid: str | None, grid_file: Path | None, axes: tuple[str, ...], name: str | None,
            preset: str | None, db: Path, runs_dir: Path | None, root: str, only: str | None,
            overrides: tuple[str, ...], seeds: str | None, jobs: int, runs_per_gpu: int,
            backend: str, address: str | None, device: str, dry_run: bool,
            track: tuple[str, ...]) -> None:
    """Run every missing run of GRID (table6, table2, table3, attacks, dose) under a preset,
    or of your own grid (--grid-file, or --axis on `custom` or on a built-in GRID).

    Finished runs (same run id in --db) are skipped, interrupted ones resume from their
    checkpoints, failed ones are retried; a run that fails is recorded with its error and the
    sweep goes on. Then print the table with `dal-backdoor table GRID --preset P` (a user
    grid: `dal-backdoor table --grid-file F`, or `table NAME`).

    \b
    Example (Table 6 under the small preset, two runs at a time, then the table):
      dal-backdoor sweep table6 --preset small --jobs 2 --db results/small.db
      dal-backdoor sweep table6 --only 'loss=ce|dal' --seeds 0-4 --set epochs=4
      dal-backdoor table table6 --preset small --db results/small.db
    Your own grid (a file, or axes over any run setting):
      dal-backdoor sweep --grid-file my_grid.toml --db results/mine.db
      dal-backdoor sweep custom --axis loss=ce,sce,dal --axis num_poison=20,100 \\
          --set trigger=local --seeds 0
    """
    from dal_backdoor.experiments import parse_only, parse_seeds
    from dal_backdoor.sweep import run_sweep
    from dal_backdoor.tracking import check_available

    track = check_available(track)  # a missing package: one line, before any run
    user = user_grid(grid, grid_file, axes, name)
    preset = preset or (user.preset if user is not None else None) or "small"
    label = user.name if user is not None else str(grid)
    expansion = _expand(grid, user, preset, root=root, only=parse_only(only), device=device,
                        overrides=parse_key_values(overrides, "--set"),
                        seeds=parse_seeds(seeds))
    if address is not None and backend != "ray":
        raise click.UsageError("--address is only used with --backend ray")
    if not expansion.specs:
        raise click.UsageError(f"no runs to do: the grid {label} under preset {preset} "
                               "(and --only) selects nothing")
    runs_dir = check_before_writing(expansion.specs, db, runs_dir)
    again = f"--grid-file {grid_file}" if grid_file is not None else str(grid)
    set_interrupt_hint(f"finished runs are kept and interrupted ones resume from their last "
                       f"epoch: run the same `dal-backdoor sweep {again}` command again")
    if dry_run:
        print_dry_run(f"{label} / {preset}", expansion.specs)
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
    console.print(f"[bold]{label}/{preset}[/]: {summary.already_finished} already finished, "
                  f"{len(summary.finished)} run now, {len(summary.failed)} failed "
                  f"(store {db}, runs in {runs_dir})")
    if summary.failed:
        raise click.ClickException(f"{len(summary.failed)} run(s) failed; see "
                                   f"`dal-backdoor runs --db {db} --status failed`")


def print_dry_run(title: str, specs: list[RunSpec]) -> None:
    table = Table(title=f"{title}: {len(specs)} runs")
    for col in ("run id", "cell", "dataset", "epochs", "width", "device"):
        table.add_column(col)
    for spec in specs:
        c = spec.config
        table.add_row(spec.run_id, spec.label, c.dataset, str(c.epochs), str(c.width),
                      f"{c.device}/{c.precision}")
    console.print(table)


def parse_axes(options: tuple[str, ...]) -> dict[str, tuple[Any, ...]]:
    """``("loss=ce,dal", "num_poison=20,100")`` -> {"loss": ("ce", "dal"), "num_poison":
    (20, 100)}: values converted as --set values are, then checked for their setting."""
    from dal_backdoor.grid_file import check_axis

    out: dict[str, tuple[Any, ...]] = {}
    for option in options:
        key, sep, text = option.partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise click.BadParameter(f"{option!r} is not KEY=V1,V2 (e.g. loss=ce,dal)",
                                     param_hint="--axis")
        if key in out:
            raise click.BadParameter(f"{key!r} is given twice", param_hint="--axis")
        values = [convert_value(key, v.strip(), "--axis") for v in text.split(",")]
        out[key] = check_axis(key, values, f"--axis {key}")
    return out


def user_grid(grid: str | None, grid_file: Path | None, axes: tuple[str, ...],
              name: str | None) -> UserGrid | None:
    """The user grid that GRID, --grid-file, --axis and --name define; None for a built-in
    GRID as it is."""
    from dal_backdoor.grid_file import check_grid_name, grid_from_axes, load_grid_file, with_axes

    if grid is not None and grid_file is not None:
        raise click.UsageError("give GRID or --grid-file, not both")
    if grid is None and grid_file is None:
        raise click.UsageError("missing GRID (" + ", ".join([*list_grids(), CUSTOM])
                               + ") or --grid-file")
    parsed = parse_axes(axes)
    if grid_file is not None:
        found = load_grid_file(grid_file)
        if name is not None:
            check_grid_name(name, "--name")
        return with_axes(found, parsed, name=name) if parsed or name else found
    if grid == CUSTOM and not parsed:
        raise click.UsageError("the custom grid needs at least one --axis (e.g. --axis "
                               "loss=ce,dal)")
    if parsed:
        return grid_from_axes(str(grid), parsed, name=name)
    if name is not None:
        raise click.UsageError("--name names a user grid (--axis or --grid-file)")
    return None


def _expand(grid: str | None, user: UserGrid | None, preset: str, **kwargs: Any) -> Expansion:
    from dal_backdoor.experiments import expand
    from dal_backdoor.grid_file import expand_user_grid

    root = kwargs.pop("root")
    if user is not None:
        return expand_user_grid(user, preset, data_root=root, **kwargs)
    return expand(str(grid), preset, data_root=root, **kwargs)


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
