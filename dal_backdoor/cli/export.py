"""``dal-backdoor export``: per-epoch metrics of runs or a grid, one row per run and epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dal_backdoor.cli.common import OutputPath, default_db, write_output
from dal_backdoor.cli.runs import resolve_run


@click.command()
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=default_db,
              show_default="results/results.db or $DAL_BACKDOOR_DB", help="Results store.")
@click.option("--grid", default=None, help="Export the runs a sweep tagged with this grid "
              "(e.g. table6) under --preset.")
@click.option("--preset", default=None, help="The grid's preset (default with --grid: small).")
@click.option("--run", "run_ids", multiple=True, metavar="RUN_ID",
              help="Export this run (full id or unique prefix); repeatable. Not with --grid.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv",
              show_default=True, help="csv: a header and one line per run and epoch; json: "
              "the same rows as a list of objects.")
@click.option("--out", type=OutputPath("file", dash=True), default="-", show_default=True,
              help="Write to this file (atomically); - is standard output.")
def command(db: Path, grid: str | None, preset: str | None, run_ids: tuple[str, ...],
            fmt: str, out: Path) -> None:
    """Every metric recorded per epoch (loss, accuracies, clean accuracy, ASR, ASR_true,
    robust accuracy with their raw counts, q and lambda of the schedules, timings), one row per
    run and epoch, for pandas. Each row starts with the run's identifying fields: run_id,
    status, dataset, model, width, loss, trigger, num_poison, target_class, noise_kind,
    noise_rate, seed, epochs (the run's total), then epoch and the metrics (named as in `runs
    --run`). Rates are fractions, counts integers, a missing value is empty (csv) or null
    (json). With --grid the rows also name the grid and preset. Without --grid or --run every
    run in the store is exported; join with `runs --format csv` on run_id for full configs.

    \b
    Example (a grid's learning curves into pandas, then two runs as JSON):
      dal-backdoor export --db results/small.db --grid table6 --preset small --out epochs.csv
      python -c "import pandas; print(pandas.read_csv('epochs.csv').groupby('loss').asr.max())"
      dal-backdoor export --run 3f2a9c1d --run 9b1e0c77 --format json --out epochs.json
    """
    from dal_backdoor.errors import ConfigError
    from dal_backdoor.exports import complete, csv_text, epochs_columns, json_text
    from dal_backdoor.store import ResultsStore

    if grid is not None and run_ids:
        raise ConfigError("--grid and --run cannot be combined; allowed: one of them")
    if preset is not None and grid is None:
        raise ConfigError("--preset needs --grid")
    if not db.exists():
        raise ConfigError(f"no results store at {db}; pass --db or set DAL_BACKDOOR_DB")
    with ResultsStore(db, readonly=True) as store:
        rows, first = collect_rows(store, grid, preset or "small", run_ids)
    columns = epochs_columns(rows, first)
    text = json_text(complete(rows, columns)) if fmt == "json" else csv_text(rows, columns)
    write_output(out, text)


def collect_rows(store: Any, grid: str | None, preset: str,
                 run_ids: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[str]]:
    """The per-epoch rows of the selected runs (in tag order for a grid, the given order for
    --run, oldest first otherwise) and the identifying columns that lead each row."""
    from dal_backdoor.exports import IDENTITY_FIELDS, epoch_rows, identity
    from dal_backdoor.store import run_state

    first = ["run_id", "status", *IDENTITY_FIELDS]
    extra: dict[str, Any] = {}
    if grid is not None:
        ids = grid_run_ids(store, grid, preset)
        extra = {"grid": grid, "preset": preset}
        first = [*first[:1], "grid", "preset", *first[1:]]
    elif run_ids:
        ids = list(dict.fromkeys(resolve_run(store, r) for r in run_ids))
    else:
        ids = [r.run_id for r in store.list_runs()]
    rows: list[dict[str, Any]] = []
    for run_id in ids:
        record = store.get_run(run_id)
        if record is None:  # tagged by a sweep that never started it
            continue
        ident = {**identity(run_id, run_state(record), record.config or {}), **extra}
        rows.extend(epoch_rows(ident, store.epochs(run_id)))
    return rows, first


def grid_run_ids(store: Any, grid: str, preset: str) -> list[str]:
    """The run ids a sweep tagged with ``grid``/``preset``; a ConfigError naming the grids
    and presets the store has when there are none."""
    from dal_backdoor.errors import ConfigError

    tagged = [run_id for run_id, _cell in store.tagged_runs(grid, preset)]
    if tagged:
        return list(dict.fromkeys(tagged))
    known = sorted({f"{t['grid']}/{t['preset']}" for r in store.list_runs()
                    for t in store.tags(r.run_id)})
    raise ConfigError(f"no runs of grid {grid} with preset {preset} in {store.path}; allowed: "
                      + (", ".join(known) if known else "none (no sweep recorded here)"))
