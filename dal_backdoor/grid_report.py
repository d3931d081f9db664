"""The table of a user-defined grid (``dal_backdoor.grid_file``): rows = one or more axes,
columns = another axis x the chosen metrics, each cell the mean ± std over seeds (in %).

The layout is read from the runs' tags in the store (their cells), so ``dal-backdoor table
NAME`` works without the grid file; a grid file (or ``--rows``/``--columns``/``--metric``)
chooses which axes go where. There are no paper values: a user grid is not one of the
paper's tables. Any axis that is neither a row nor the column joins the rows, so cells never
pool runs of different settings.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dal_backdoor.errors import ConfigError
from dal_backdoor.metrics import METRICS, as_percent
from dal_backdoor.report import (
    ASR_NOTE,
    EXTRA_RATES,
    Cell,
    Report,
    RunRow,
    build_report,
    fmt_poison_counts,
    load_runs,
    mixed_settings,
    poison_counts,
)

#: Column labels of the metrics a user grid's table can show.
SHORT = {"clean_acc": "acc", "asr": "ASR", "asr_true": "ASR_true", "robust_acc": "RA"}
#: Settings a table's note lists when every run shares them (and no axis sets them).
SHARED_FIELDS = ("dataset", "train_subset", "test_subset", "model", "width", "epochs", "lr",
                 "batch_size", "augment", "trigger", "num_poison", "target_class", "noise_kind",
                 "noise_rate", "precision")


@dataclass(frozen=True)
class Layout:
    """Which axes make the rows (their values joined by "/"), which one the columns, and
    which metrics each column shows."""

    rows: tuple[str, ...]
    column: str | None
    metrics: tuple[str, ...]


def axes_of(runs: Iterable[RunRow], order: Sequence[str] = ()) -> dict[str, list[Any]]:
    """Each axis of the runs' cells with its values: numbers ascending, names in the order
    the sweep tagged them. Axes in ``order`` first, then ``loss``, then the others by name."""
    values: dict[str, list[Any]] = {}
    for run in runs:
        for key, value in run.cell.items():
            seen = values.setdefault(key, [])
            if value not in seen:
                seen.append(value)
    for key, seen in values.items():
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen):
            values[key] = sorted(seen)
    first = [k for k in (*order, "loss") if k in values]
    keys = list(dict.fromkeys([*first, *sorted(values)]))
    return {k: values[k] for k in keys}


def run_kind(runs: Iterable[RunRow]) -> str:
    """``backdoor`` when a run trained with a trigger, else ``noise`` (test accuracy only)."""
    poisoned = any(r.config.get("trigger", "none") != "none" and r.config.get("num_poison", 1)
                   for r in runs)
    return "backdoor" if poisoned else "noise"


def choose_layout(name: str, axes: dict[str, list[Any]], kind: str, *,
                  rows: Sequence[str] = (), column: str | None = None,
                  metrics: Sequence[str] = ()) -> Layout:
    """The table layout: the given rows/column/metrics (checked against the axes), else the
    first axis as rows and the second as columns; axes left over join the rows."""
    names = [k for k in axes if k != "seed"]
    for key in (*rows, *([column] if column else [])):
        if key not in names:
            raise ConfigError(f"table of {name}: {key!r} is not an axis of the grid; "
                              f"allowed: {', '.join(names)}")
    if column is not None and column in rows:
        raise ConfigError(f"table of {name}: {column} is both a row and the column axis")
    bad = [m for m in metrics if m not in SHORT]
    if bad:
        raise ConfigError(f"unknown table metric {bad[0]!r}; allowed: {', '.join(SHORT)}")
    rest = [k for k in names if k not in rows and k != column]
    if column is None and len(rest) > 1 and not rows:
        column = rest[1]
    elif column is None and rest and rows:
        column = rest[0]
    rest = [k for k in rest if k != column]
    row_axes = tuple(dict.fromkeys([*rows, *rest])) or ("seed",)
    default = ("clean_acc", "asr") if kind == "backdoor" else ("clean_acc",)
    return Layout(row_axes, column, tuple(metrics) or default)


def _row_label(cell: dict[str, Any], layout: Layout) -> str:
    return "/".join(str(cell.get(k, "-")) for k in layout.rows)


def column_label(layout: Layout, value: Any, metric: str) -> str:
    if layout.column is None:
        return SHORT[metric]
    return f"{layout.column}={value} {SHORT[metric]}"


def _rows(runs: list[RunRow], axes: dict[str, list[Any]], layout: Layout) -> list[str]:
    """Row labels in axis order, those that some tagged run has (then labels of runs that
    lack a row axis, e.g. "ce/-", from an earlier grid of the same name)."""
    present = list(dict.fromkeys(_row_label(r.cell, layout) for r in runs))
    combos = itertools.product(*(axes[k] for k in layout.rows))
    labels = ["/".join(str(v) for v in combo) for combo in combos]
    ordered = [label for label in labels if label in present]
    return ordered + [label for label in present if label not in ordered]


def _axes_note(runs: Sequence[RunRow]) -> str | None:
    """A warning when the runs tagged with one grid name come from grids of other axes."""
    shapes = sorted({", ".join(sorted(r.cell)) for r in runs})
    if len(shapes) < 2:
        return None
    return ("WARNING: the runs tagged with this grid name have different axes ("
            + "; ".join(shapes) + "): sweep each grid under its own --name.")


def _columns(axes: dict[str, list[Any]], layout: Layout) -> list[str]:
    values = axes[layout.column] if layout.column else [None]
    return [column_label(layout, v, m) for v in values for m in layout.metrics]


def _values(runs: list[RunRow], layout: Layout):
    """``(values, extras)``: per (row, column) the metric in % of each finished run; for an
    ASR column also ASR_true and robust accuracy."""
    values: dict[tuple[str, str], list[float]] = {}
    extras: dict[tuple[str, str], dict[str, list[float]]] = {}
    for run in runs:
        row = _row_label(run.cell, layout)
        for metric in layout.metrics:
            col = column_label(layout, run.cell.get(layout.column), metric)
            value = as_percent(run.final.get(metric))
            if value is not None:
                values.setdefault((row, col), []).append(value)
            if metric == "asr":
                slot = extras.setdefault((row, col), {n: [] for n in EXTRA_RATES})
                for name in EXTRA_RATES:
                    extra = as_percent(run.final.get(name))
                    if extra is not None:
                        slot[name].append(extra)
    return values, extras


def _shared_note(runs: list[RunRow], axes: dict[str, list[Any]]) -> str | None:
    shared = []
    for name in SHARED_FIELDS:
        seen = {json.dumps(r.config.get(name)) for r in runs if name in r.config}
        if len(seen) == 1 and name not in axes:
            shared.append(f"{name} {json.loads(seen.pop())}")
    return f"every run: {', '.join(shared)}." if shared else None


def _metric_note(metrics: Sequence[str]) -> str:
    parts = [f"{SHORT[m]} = {METRICS[m].label} (%)" for m in metrics]
    note = "; ".join(parts) + "; mean ± std (population) over seeds."
    return f"{note} {ASR_NOTE}" if "asr" in metrics else note


def build_user_report(name: str, preset: str, runs: Sequence[RunRow], layout: Layout, *,
                      axes: dict[str, list[Any]], title: str = "") -> Report:
    """The table of user grid ``name`` from its tagged ``runs`` (any status: unfinished ones
    keep their rows and count as missing seeds)."""
    finished = [r for r in runs if r.status == "finished" and r.final is not None]
    expected_n = len(axes.get("seed", [0]))
    values, extras = _values(finished, layout)
    rows, columns = _rows(list(runs), axes, layout), _columns(axes, layout)
    cells = {(r, c): Cell(r, c, tuple(values.get((r, c), ())), expected_n, None,
                          {k: tuple(v) for k, v in extras.get((r, c), {}).items()})
             for r in rows for c in columns}
    notes = [_metric_note(layout.metrics),
             "axes: " + "; ".join(f"{k} {', '.join(str(v) for v in vals)}"
                                  for k, vals in axes.items())]
    for note in (_axes_note(runs), _shared_note(finished, axes)):
        if note:
            notes.append(note)
    pairs = poison_counts(finished)
    if pairs:
        notes.append(f"poisons: {fmt_poison_counts(pairs)}.")
    missing = sum(1 for c in cells.values() if c.incomplete)
    if missing:
        notes.append(f"{missing} cell(s) have fewer than {expected_n} finished seeds "
                     "(marked *).")
    mixed = mixed_settings(finished)
    if mixed:
        notes.append("WARNING: cells pool runs whose settings differ beyond the seed ("
                     + "; ".join(f"{k}: {', '.join(v)}" for k, v in mixed.items())
                     + "); keep one results store per setting (e.g. per --set).")
    notes.append("a user grid: no paper values.")
    kind = run_kind(finished or runs)
    title = title or (f"{name}: " + " and ".join(SHORT[m] for m in layout.metrics)
                      + f" (%) by {' / '.join(layout.rows)}"
                      + (f" and {layout.column}" if layout.column else ""))
    return Report(name, preset, title, tuple(rows), tuple(columns), cells, tuple(notes),
                  paper_columns=False, kind=kind, row_header=" / ".join(layout.rows))


@dataclass(frozen=True)
class TableRequest:
    """What ``dal-backdoor table`` reports: a grid (built-in or a user grid's name) under a
    preset in a store; a user grid's layout choices (from its file or the command line)."""

    db: Path
    grid: str
    preset: str
    builtin: bool
    rows: tuple[str, ...] = ()
    column: str | None = None
    metrics: tuple[str, ...] = ()
    axis_order: tuple[str, ...] = ()
    title: str = ""


@dataclass(frozen=True)
class LoadedTable:
    report: Report
    runs: list[RunRow]
    layout: Layout | None  # None for a built-in grid


def load_table(request: TableRequest) -> LoadedTable:
    """The report of ``request`` from its store; ConfigError when the store has no runs of
    that grid and preset (naming the grids it has)."""
    from dal_backdoor.store import ResultsStore

    if not request.db.exists():
        raise ConfigError(f"no results store at {request.db}; run `dal-backdoor sweep` "
                          "first or pass --db")
    with ResultsStore(request.db, readonly=True) as store:
        runs = load_runs(store, request.grid, request.preset)
        found = [] if runs else store.tagged_grids()
    if not runs:
        have = ", ".join(f"{g} (preset {p})" for g, p in found) or "no tagged runs"
        raise ConfigError(f"{request.db} has no runs of grid {request.grid} with preset "
                          f"{request.preset}; it has: {have}; run `dal-backdoor sweep` first")
    if request.builtin:
        return LoadedTable(build_report(request.grid, request.preset, runs), runs, None)
    axes = axes_of(runs, request.axis_order)
    layout = choose_layout(request.grid, axes, run_kind(runs), rows=request.rows,
                           column=request.column, metrics=request.metrics)
    report = build_user_report(request.grid, request.preset, runs, layout, axes=axes,
                               title=request.title)
    return LoadedTable(report, runs, layout)
