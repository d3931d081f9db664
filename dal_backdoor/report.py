"""Aggregate a grid's runs into the paper's tables, beside the published values.

Each table cell is the mean ± std over seeds of one metric (in percent). ``std`` is the
population standard deviation (numpy's default, ddof=0), which is what most papers' evaluation
scripts print; with one seed it is 0. A cell with fewer finished seeds than the grid asks for
is marked (``n < expected``). The paper's numbers come from ``dal_backdoor.paper_values``.

Exports: markdown, CSV, JSON (all numbers, machine-readable), LaTeX; the CLI also draws a rich
table. The figures are drawn by ``dal_backdoor.plots``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dal_backdoor import paper_values
from dal_backdoor.config import NON_IDENTITY_FIELDS, fmt_poison_rate
from dal_backdoor.errors import ConfigError
from dal_backdoor.experiments import (
    CLEAN,
    expand,
    get_grid,
    get_preset,
    list_presets,
    preset_settings,
)
from dal_backdoor.metrics import as_percent

FORMATS = ("rich", "md", "csv", "json", "latex")


@dataclass(frozen=True)
class RunRow:
    """What the report needs of one run: its grid cell, status and metrics."""

    run_id: str
    cell: dict[str, Any]
    status: str
    final: dict[str, Any] | None
    epochs: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cell:
    row: str
    column: str
    values: tuple[float, ...]
    expected_n: int
    paper: tuple[float, float] | None
    #: Further metrics over the same runs (e.g. asr_true, robust_acc for an ASR column), in %.
    extra: dict[str, tuple[float, ...]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return sum(self.values) / self.n if self.values else None

    @property
    def std(self) -> float | None:
        return population_std(self.values) if self.values else None

    @property
    def diff(self) -> float | None:
        if self.mean is None or self.paper is None:
            return None
        return self.mean - self.paper[0]

    @property
    def incomplete(self) -> bool:
        return self.n < self.expected_n

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "mean": self.mean, "std": self.std,
                "n": self.n, "expected_n": self.expected_n, "values": list(self.values),
                "paper_mean": self.paper[0] if self.paper else None,
                "paper_std": self.paper[1] if self.paper else None, "diff": self.diff,
                **self.extra_stats()}

    def extra_stats(self) -> dict[str, float | int | None]:
        """``{metric}_mean``, ``{metric}_std``, ``{metric}_n`` for each extra metric."""
        out: dict[str, float | int | None] = {}
        for name, values in self.extra.items():
            out[f"{name}_mean"] = sum(values) / len(values) if values else None
            out[f"{name}_std"] = population_std(values) if values else None
            out[f"{name}_n"] = len(values)
        return out


def population_std(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("std of no values")
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


@dataclass(frozen=True)
class Report:
    grid: str
    preset: str
    title: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: dict[tuple[str, str], Cell]
    notes: tuple[str, ...] = ()
    #: Whether the paper's values (and the difference) have columns; not for a user grid.
    paper_columns: bool = True
    #: "backdoor" or "noise"; None: the kind of the built-in grid named ``grid``.
    kind: str | None = None
    #: The header of the row labels (e.g. "loss / width" for a user grid).
    row_header: str = "row"

    def cell(self, row: str, column: str) -> Cell | None:
        return self.cells.get((row, column))

    def to_json_obj(self) -> dict[str, Any]:
        return {"grid": self.grid, "preset": self.preset, "title": self.title,
                "rows": list(self.rows), "columns": list(self.columns),
                "cells": [c.to_dict() for c in self.cells.values()], "notes": list(self.notes)}


# -- building ------------------------------------------------------------------------------------

_MATCHED_FIELDS = ("loss", "trigger", "noise_kind", "noise_rate")


def _matched_fields(config: dict[str, Any]) -> tuple[str, ...]:
    """A run on a label file (the authors' noisy labels) stands for its cell's noise kind."""
    if config.get("noise_kind") == "file":
        return tuple(k for k in _MATCHED_FIELDS if k != "noise_kind")
    return _MATCHED_FIELDS


def current_runs(grid_name: str, runs: Iterable[RunRow]) -> tuple[list[RunRow], list[RunRow]]:
    """``(kept, left_out)``: runs whose stored config still runs what the grid's current
    definition of their cell runs (loss, trigger, noise; ``Grid.run_fields``), and the others.

    A store keeps runs tagged with a cell under an earlier definition of that cell (e.g.
    table6's ``global`` column ran the grey grating, trigger ``global``, before it ran
    ``weng``); their run ids still mean what they computed, but they are not this column's
    runs. Fields absent from a stored config are not compared.
    """
    grid = get_grid(grid_name)
    kept: list[RunRow] = []
    left_out: list[RunRow] = []
    for run in runs:
        pinned = grid.run_fields(run.cell)
        same = all(run.config[k] == pinned[k] for k in _matched_fields(run.config)
                   if k in pinned and k in run.config)
        (kept if same else left_out).append(run)
    return kept, left_out


def _left_out_note(grid_name: str, left_out: list[RunRow]) -> str:
    changes = sorted({f"{k} {run.config[k]} -> {v}" for run in left_out
                      for k, v in get_grid(grid_name).run_fields(run.cell).items()
                      if k in _matched_fields(run.config) and k in run.config
                      and run.config[k] != v})
    return (f"{len(left_out)} stored run(s) tagged with this grid were left out: they ran an "
            f"earlier definition of their cell ({'; '.join(changes)}).")


def build_report(grid_name: str, preset: str, runs: Iterable[RunRow]) -> Report:
    """Lay out finished runs as the paper's table for ``grid_name`` (only the runs of the
    grid's current cell definitions, see :func:`current_runs`)."""
    grid = get_grid(grid_name)
    expected_n = len(grid.axes["seed"])
    runs, left_out = current_runs(grid_name, runs)
    runs = [r for r in runs if r.status == "finished" and r.final is not None]
    notes: list[str] = []
    if left_out:
        notes.append(_left_out_note(grid_name, left_out))
    rows, columns, values, paper, extras, row_header = _layout(grid, runs, notes)
    cells = {
        (r, c): Cell(r, c, tuple(values.get((r, c), ())), expected_n, paper.get((r, c)),
                     extras.get((r, c), {}))
        for r in rows for c in columns
    }
    missing = sum(1 for c in cells.values() if c.incomplete)
    if missing:
        notes.append(f"{missing} cell(s) have fewer than {expected_n} finished seeds "
                     "(marked *).")
    substituted = sorted({(r.cell["dataset"], r.config["dataset"]) for r in runs
                          if r.config.get("dataset") not in (None, r.cell["dataset"])})
    for paper_dataset, ours in substituted:
        notes.append(f"rows {paper_dataset}/* ran on {ours} (preset {preset}), with "
                     f"{paper_dataset}'s Table 1 hyper-parameters.")
    mixed = mixed_settings(runs)
    if mixed:
        notes.append("WARNING: cells pool runs whose settings differ beyond the seed ("
                     + "; ".join(f"{k}: {', '.join(v)}" for k, v in mixed.items())
                     + "); keep one results store per setting (e.g. per --set).")
    deviations = preset_deviations(grid_name, preset, runs)
    if deviations:
        notes.append(f"runs not at the settings of preset {preset!r} (a sweep's --set, or an "
                     "earlier definition of the preset): "
                     + "; ".join(f"{k} {', '.join(seen)} (preset: {want})"
                                 for k, (seen, want) in deviations.items()) + ".")
    if preset != "paper" and paper:
        notes.append(f"preset {preset!r}: a scaled-down setting; the paper's values (from "
                     "its full-scale runs) are shown for orientation, not as a target.")
    title = paper_values.SOURCE.get(grid_name, grid.description)
    if grid.kind == "backdoor":
        title = poison_title(title, runs)
    # a grid the paper has no values for (attacks, dose) gets no paper or difference columns
    return Report(grid_name, preset, title, tuple(rows), tuple(columns), cells, tuple(notes),
                  paper_columns=bool(paper), row_header=row_header)


def _layout(grid: Any, runs: list[RunRow], notes: list[str]):
    """``(rows, columns, values, paper, extras, row_header)`` of the grid's table; appends its
    notes."""
    extras: dict[tuple[str, str], dict[str, tuple[float, ...]]] = {}
    row_header = "row"
    if "attack" in grid.axes or "num_poison" in grid.axes:
        rows, columns, values, extra, row_header = beyond_paper_layout(grid, runs)
        paper = {}  # these experiments are not in the paper
        notes.extend(extra)
    elif grid.kind == "backdoor":
        rows, columns, values, paper = _table6_layout(grid, runs)
        extras = backdoor_extras(runs)  # keyed like the table6 layout's cells
        notes.append("acc = clean test accuracy; ASR = attack success rate by the paper's "
                     "protocol (test images predicted as the target class when clean are "
                     "dropped, the trigger is stamped on the rest).")
    else:
        rows, columns, values, paper = _noise_layout(grid, runs)
        notes.append("test accuracy (%) after the last epoch.")
        if CLEAN in grid.axes["noise"]:
            notes.append("clean = the same loss and preset without label noise: each loss's "
                         "reference accuracy (no such column in the paper).")
        notes.extend(noise_source_notes(runs))
    return rows, columns, values, paper, extras, row_header


#: The rates beside ASR that a backdoor table's CSV/JSON carry (mean, std, n per ASR cell).
EXTRA_RATES = ("asr_true", "robust_acc")


def backdoor_extras(runs: Iterable[RunRow]) -> dict[tuple[str, str], dict[str, tuple[float, ...]]]:
    """ASR_true and robust accuracy (in %) of each table6-layout ASR cell, over its runs;
    every ASR cell gets both keys (empty tuples when not recorded)."""
    out: dict[tuple[str, str], dict[str, list[float]]] = {}
    for run in runs:
        key = (f"{run.cell['dataset']}/{run.cell['loss']}", f"{run.cell['trigger']} ASR")
        slot = out.setdefault(key, {name: [] for name in EXTRA_RATES})
        for name in EXTRA_RATES:
            value = as_percent((run.final or {}).get(name))
            if value is not None:
                slot[name].append(value)
    return {k: {name: tuple(v) for name, v in d.items()} for k, d in out.items()}


def poison_counts(runs: Iterable[RunRow]) -> list[tuple[int, int]]:
    """The distinct (poisoned, training-set size) pairs of finished runs, from their final
    metrics (``num_poisoned`` and the three sample groups, which partition the training set)."""
    seen: set[tuple[int, int]] = set()
    for run in runs:
        final = run.final or {}
        groups = [final.get(f"num_{g}") for g in ("clean", "noisy", "poisoned")]
        if all(isinstance(g, int) for g in groups):
            seen.add((groups[2], sum(groups)))
    return sorted(seen)


#: More distinct poison counts than this (on one training-set size) are given as a range.
LISTED_POISON_COUNTS = 2


def fmt_poison_counts(pairs: list[tuple[int, int]]) -> str:
    """``(num_poisoned, num_train)`` pairs in words: each one (joined by " / "), or, for a
    budget axis on one training set, the range ``10-800 poisoned images (0.1-8.0% of 10,000)``
    (the columns name every budget)."""
    sizes = {n for _, n in pairs}
    if len(pairs) <= LISTED_POISON_COUNTS or len(sizes) != 1:
        return " / ".join(fmt_poison_rate(p, n) for p, n in pairs)
    (num_train,) = sizes
    low, high = min(p for p, _ in pairs), max(p for p, _ in pairs)
    return (f"{low}-{high} poisoned images ({100.0 * low / num_train:.1f}-"
            f"{100.0 * high / num_train:.1f}% of {num_train:,})")


def poison_title(title: str, runs: Iterable[RunRow]) -> str:
    """The paper's title with its fixed "100 poisoned images" replaced by what the runs
    used (``fmt_poison_counts``); unchanged when the runs do not say."""
    pairs = poison_counts(runs)
    if not pairs:
        return title
    used = fmt_poison_counts(pairs)
    if "100 poisoned images" in title:
        return title.replace("100 poisoned images", used)
    return f"{title} ({used})"


def mixed_settings(runs: Iterable[RunRow]) -> dict[str, list[str]]:
    """Config fields that differ between runs of the same grid cell (seed aside), with the
    values seen; empty when every cell's seeds share one setting."""
    ignored = {"seed", *NON_IDENTITY_FIELDS}
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        key = json.dumps({k: v for k, v in run.cell.items() if k != "seed"}, sort_keys=True)
        groups.setdefault(key, []).append(run.config)
    seen: dict[str, set[str]] = {}
    for configs in groups.values():
        for name in sorted({k for c in configs for k in c} - ignored):
            values = {json.dumps(c.get(name), sort_keys=True) for c in configs}
            if len(values) > 1:
                seen.setdefault(name, set()).update(values)
    return {name: sorted(values) for name, values in sorted(seen.items())}


def preset_deviations(grid_name: str, preset_name: str, runs: Iterable[RunRow]
                      ) -> dict[str, tuple[list[str], str]]:
    """Where the runs' configs differ from the config the preset gives their cell (what
    ``sweep`` runs without --set), as ``{setting: (values the runs have, the preset's value)}``;
    empty when every run is at its cell's own config. A mapping setting is compared option by
    option (``trigger_params.amplitude``) when the runs use the same trigger, loss, noise kind
    or model as the preset; machine settings (device, data root, compile) and the seed are not
    deviations, nor precision and memory format where the preset leaves them to the device.
    Runs whose data set is not the one the preset now picks for their cell (the data root
    changed since) are not compared; nor are runs drawn without a preset (a figure of runs
    alone)."""
    if preset_name not in list_presets():
        return {}
    grid, preset = get_grid(grid_name), get_preset(preset_name)
    found: dict[str, tuple[set[str], str]] = {}
    expected: dict[str, dict[str, Any] | None] = {}
    for run in runs:
        root = run.config.get("data_root", "data")
        want = _cell_config(grid_name, preset_name, run.cell, root, expected)
        if want is None or want.get("dataset") != run.config.get("dataset"):
            continue
        pinned = preset_settings(grid, preset, run.cell["dataset"], root) or {}
        skip = {"seed", *NON_IDENTITY_FIELDS,
                *(k for k in ("precision", "channels_last") if k not in pinned)}
        for key, have, wanted in _config_differences(run.config, want, skip):
            found.setdefault(key, (set(), wanted))[0].add(have)
    return {key: (sorted(seen), want) for key, (seen, want) in sorted(found.items())}


#: The setting that decides what each mapping setting's options mean.
_OPTIONS_OF = {"trigger_params": "trigger", "loss_params": "loss", "noise_params": "noise_kind",
               "model_params": "model", "dataset_params": "dataset"}


def _cell_config(grid_name: str, preset_name: str, cell: dict[str, Any], root: str,
                 cache: dict[str, dict[str, Any] | None]) -> dict[str, Any] | None:
    """The config (as a dict) the preset gives ``cell`` (its seed aside) under data root
    ``root``; None when the preset skips the cell or the cell is no longer in the grid."""
    cell = {k: v for k, v in cell.items() if k != "seed"}
    key = json.dumps([cell, root], sort_keys=True)
    if key not in cache:
        try:
            specs = expand(grid_name, preset_name, data_root=root, device="cpu", seeds=(0,),
                           only={k: {str(v)} for k, v in cell.items()}).specs
        except ConfigError:  # a cell of an earlier definition of the grid
            specs = []
        cache[key] = specs[0].config.to_dict() if specs else None
    return cache[key]


def _config_differences(have: dict[str, Any], want: dict[str, Any], skip: set[str]
                        ) -> Iterable[tuple[str, str, str]]:
    """``(setting, the run's value, the preset's value)`` for each setting of ``want`` that
    ``have`` sets otherwise (settings a run stored before they existed are not compared)."""
    for key, wanted in want.items():
        if key in skip or key not in have or have[key] == wanted:
            continue
        owner = _OPTIONS_OF.get(key)
        if isinstance(wanted, dict) and isinstance(have[key], dict):
            if owner is None or have.get(owner) != want.get(owner):
                continue  # another trigger, loss, ... : its own deviation says it
            for option in sorted(set(wanted) | set(have[key])):
                if have[key].get(option) != wanted.get(option):
                    yield (f"{key}.{option}", _fmt_option(have[key], option),
                           _fmt_option(wanted, option))
            continue
        yield key, _fmt_setting(have[key]), _fmt_setting(wanted)


def _fmt_option(options: dict[str, Any], name: str) -> str:
    return _fmt_setting(options[name]) if name in options else "default"


def _fmt_setting(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def noise_source_notes(runs: Iterable[RunRow]) -> list[str]:
    """One note saying where each column's noisy labels came from (a label file, e.g. the
    authors', or a draw with its noise seed)."""
    from dal_backdoor.data.noise import describe_noise_source

    sources: dict[str, set[str]] = {}
    for run in runs:
        sources.setdefault(run.cell["noise"], set()).add(describe_noise_source(run.config))
    if not sources:
        return []
    return ["noise source: " + "; ".join(f"{col}: {' + '.join(sorted(found))}"
                                         for col, found in sources.items())]


def _table6_layout(grid: Any, runs: list[RunRow]):
    rows = [f"{d}/{loss}" for d in grid.axes["dataset"] for loss in grid.axes["loss"]]
    columns = [f"{t} {m}" for t in grid.axes["trigger"] for m in ("acc", "ASR")]
    values: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        row = f"{run.cell['dataset']}/{run.cell['loss']}"
        for metric, key in (("acc", "clean_acc"), ("ASR", "asr")):
            value = as_percent(run.final.get(key))
            if value is not None:
                values.setdefault((row, f"{run.cell['trigger']} {metric}"), []).append(value)
    paper = {}
    for (dataset, loss, trigger), entry in paper_values.TABLE6.items():
        paper[(f"{dataset}/{loss}", f"{trigger} acc")] = entry["acc"]
        paper[(f"{dataset}/{loss}", f"{trigger} ASR")] = entry["asr"]
    present_rows = {r for r, _ in values}
    rows = [r for r in rows if r in present_rows] or rows
    return rows, columns, values, paper


def _noise_layout(grid: Any, runs: list[RunRow]):
    rows = list(grid.axes["loss"])
    columns = list(grid.axes["noise"])
    values: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        value = as_percent(run.final.get("clean_acc"))
        if value is not None:
            values.setdefault((run.cell["loss"], run.cell["noise"]), []).append(value)
    table = paper_values.TABLE2 if grid.axes["dataset"] == ("cifar10",) else paper_values.TABLE3
    paper = {(loss, setting): v for (loss, setting), v in table.items()}
    return rows, columns, values, paper


# -- the grids beyond the paper: attacks (loss x attack) and dose (loss x poison budget) --------

ASR_NOTE = ("ASR by the paper's protocol: test images predicted as the target class when clean "
            "are dropped, the test-time trigger is stamped on the rest; for clean-label attacks "
            "(sig) the target class is dropped as well.")
#: The ASR a loss must pass for the dose grid's threshold budget (percent).
DOSE_THRESHOLD = 50.0


def beyond_paper_layout(grid: Any, runs: list[RunRow]):
    """``(rows, columns, values, notes, row_header)`` for the ``attacks`` or ``dose`` grid."""
    if "attack" in grid.axes:
        rows, columns, values = attacks_layout(grid, runs)
        notes = [f"acc = clean test accuracy; {ASR_NOTE}"]
        return rows, columns, values, notes, "loss"
    rows, columns, values = dose_layout(grid, runs)
    notes = [f"ASR (%) per budget (poisons per 10,000 training images, scaled to the "
             f"preset's training set); {ASR_NOTE}", *dose_threshold_notes(grid, runs)]
    return rows, columns, values, notes, "trigger/loss"


def attacks_layout(grid: Any, runs: list[RunRow]):
    """Rows: losses; columns: ``"<attack> acc"`` and ``"<attack> ASR"`` per attack."""
    rows = list(grid.axes["loss"])
    columns = [f"{a} {m}" for a in grid.axes["attack"] for m in ("acc", "ASR")]
    values: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        for metric, key in (("acc", "clean_acc"), ("ASR", "asr")):
            value = as_percent(run.final.get(key))
            if value is not None:
                values.setdefault((run.cell["loss"], f"{run.cell['attack']} {metric}"),
                                  []).append(value)
    return rows, columns, values


def dose_layout(grid: Any, runs: list[RunRow]):
    """Rows: ``"<trigger>/<loss>"``; columns: the budgets (``"<n>/10k"``); cells: ASR."""
    rows = [f"{t}/{loss}" for t in grid.axes["trigger"] for loss in grid.axes["loss"]]
    columns = [f"{b}/10k" for b in grid.axes["num_poison"]]
    values: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        value = as_percent(run.final.get("asr"))
        if value is not None:
            key = (f"{run.cell['trigger']}/{run.cell['loss']}", f"{run.cell['num_poison']}/10k")
            values.setdefault(key, []).append(value)
    return rows, columns, values


def threshold_budget(asr: dict[int, dict[int, float]], budgets: Sequence[int],
                     threshold: float = DOSE_THRESHOLD) -> tuple[int | None, int | None,
                                                                 int | None]:
    """``(mean, low, high)``: the smallest budget whose mean ASR over seeds reaches
    ``threshold``, and the range over seeds of each seed's own smallest such budget (None where
    no budget reaches it). ``asr[budget][seed]`` is a run's ASR in percent."""
    means = {b: sum(v.values()) / len(v) for b, v in asr.items() if v}
    mean = next((b for b in budgets if means.get(b, -1.0) >= threshold), None)
    seeds = sorted({s for v in asr.values() for s in v})
    per_seed = [next((b for b in budgets if asr.get(b, {}).get(s, -1.0) >= threshold), None)
                for s in seeds]
    reached = [b for b in per_seed if b is not None]
    if not reached:
        return mean, None, None
    return mean, min(reached), (max(reached) if len(reached) == len(per_seed) else None)


def _fmt_budget(value: int | None) -> str:
    return "none" if value is None else str(value)


def _fmt_seed_range(low: int | None, high: int | None) -> str:
    """The seeds' own crossing budgets: "seeds 50-200", "every seed at 25", "seeds from 400,
    not all" (a seed never passes), "no seed passes"."""
    if low is None:
        return "no seed passes"
    if high is None:
        return f"seeds from {low}, not all"
    return f"every seed at {low}" if low == high else f"seeds {low}-{high}"


def dose_threshold_notes(grid: Any, runs: list[RunRow]) -> list[str]:
    """Per trigger and loss: the smallest budget at which the mean ASR passes 50%, with the
    range of the seeds' own crossing budgets (``_fmt_seed_range``)."""
    budgets = list(grid.axes["num_poison"])
    parts = []
    for trigger in grid.axes["trigger"]:
        for loss in grid.axes["loss"]:
            asr: dict[int, dict[int, float]] = {}
            for run in runs:
                value = as_percent(run.final.get("asr"))
                if (run.cell["trigger"], run.cell["loss"]) == (trigger, loss) and value is not None:
                    asr.setdefault(run.cell["num_poison"], {})[run.cell["seed"]] = value
            if not asr:
                continue
            mean, low, high = threshold_budget(asr, budgets)
            parts.append(f"{trigger}/{loss}: {_fmt_budget(mean)} ({_fmt_seed_range(low, high)})")
    if not parts:
        return []
    return [f"smallest budget (poisons per 10,000) with mean ASR >= {DOSE_THRESHOLD:.0f}%: "
            + "; ".join(parts)]


def load_runs(store: Any, grid: str, preset: str) -> list[RunRow]:
    """The runs a sweep tagged with (grid, preset), with their metrics, from a results store."""
    rows = []
    for run_id, cell in store.tagged_runs(grid, preset):
        record = store.get_run(run_id)
        if record is None:
            continue
        rows.append(RunRow(run_id, cell, record.status, record.final_metrics,
                           store.epochs(run_id), record.config))
    return rows


# -- exports ---------------------------------------------------------------------------------

def fmt_mean_std(mean: float | None, std: float | None) -> str:
    return "-" if mean is None else f"{mean:.2f}±{std:.2f}"


def fmt_cell(cell: Cell) -> tuple[str, str, str]:
    """(ours, paper, diff) strings; ours carries a * when seeds are missing."""
    ours = fmt_mean_std(cell.mean, cell.std)
    if cell.mean is not None and cell.incomplete:
        ours += f"*({cell.n}/{cell.expected_n})"
    paper = "-" if cell.paper is None else f"{cell.paper[0]:.2f}±{cell.paper[1]:.2f}"
    diff = "-" if cell.diff is None else f"{cell.diff:+.2f}"
    return ours, paper, diff


def to_markdown(report: Report) -> str:
    if not report.paper_columns:
        return _markdown_ours(report)
    head = ["row"] + [f"{c} (ours / paper / Δ)" for c in report.columns]
    lines = [f"**{report.title}** (grid `{report.grid}`, preset `{report.preset}`)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in report.rows:
        parts = [row]
        for col in report.columns:
            ours, paper, diff = fmt_cell(report.cells[(row, col)])
            parts.append(f"{ours} / {paper} / {diff}")
        lines.append("| " + " | ".join(parts) + " |")
    lines += [""] + [f"- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def _markdown_ours(report: Report) -> str:
    """Markdown of a report without paper values: mean ± std per cell."""
    head = [report.row_header, *report.columns]
    lines = [f"**{report.title}** (grid `{report.grid}`, preset `{report.preset}`)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in report.rows:
        parts = [row] + [fmt_cell(report.cells[(row, col)])[0] for col in report.columns]
        lines.append("| " + " | ".join(parts) + " |")
    lines += [""] + [f"- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


CSV_FIELDS = ("row", "column", "mean", "std", "n", "expected_n", "paper_mean", "paper_std",
              "diff")


def to_csv(report: Report) -> str:
    """One row per cell. The title and every note (including the mixed-settings WARNING) come
    first as ``# `` comment lines, so ``pandas.read_csv(path, comment="#")`` reads the table;
    a backdoor grid adds ``asr_true_*`` and ``robust_acc_*`` (mean, std, n; filled on ASR
    cells) columns."""
    buffer = io.StringIO()
    buffer.write(f"# {report.title} (grid {report.grid}, preset {report.preset})\n")
    for note in report.notes:
        buffer.write(f"# {note}\n")
    fields = list(CSV_FIELDS)
    if (report.kind or get_grid(report.grid).kind) == "backdoor":
        fields += [f"{m}_{s}" for m in EXTRA_RATES for s in ("mean", "std", "n")]
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in report.rows:
        for col in report.columns:
            writer.writerow({k: ("" if v is None else v)
                             for k, v in report.cells[(row, col)].to_dict().items()})
    return buffer.getvalue()


def to_json(report: Report) -> str:
    return json.dumps(report.to_json_obj(), indent=2, allow_nan=False) + "\n"


def _latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"),
                 ("#", r"\#")):
        text = text.replace(a, b)
    return text


def to_latex(report: Report) -> str:
    if not report.paper_columns:
        return _latex_ours(report)
    cols = "l" + "cc" * len(report.columns)
    lines = [r"\begin{tabular}{" + cols + "}", r"\toprule"]
    lines.append(" & ".join(["Row"] + [r"\multicolumn{2}{c}{" + _latex_escape(c) + "}"
                                       for c in report.columns]) + r" \\")
    lines.append(" & ".join([""] + ["ours", "paper"] * len(report.columns)) + r" \\")
    lines.append(r"\midrule")
    for row in report.rows:
        parts = [_latex_escape(row)]
        for col in report.columns:
            ours, paper, _ = fmt_cell(report.cells[(row, col)])
            parts += [ours.replace("±", r"$\pm$"), paper.replace("±", r"$\pm$")]
        lines.append(" & ".join(parts) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _latex_ours(report: Report) -> str:
    """LaTeX of a report without paper values: one mean ± std column per table column."""
    lines = [r"\begin{tabular}{l" + "c" * len(report.columns) + "}", r"\toprule",
             " & ".join([_latex_escape(report.row_header)]
                        + [_latex_escape(c) for c in report.columns]) + r" \\", r"\midrule"]
    for row in report.rows:
        parts = [_latex_escape(row)] + [fmt_cell(report.cells[(row, c)])[0].replace(
            "±", r"$\pm$") for c in report.columns]
        lines.append(" & ".join(parts) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


EXPORTERS = {"md": to_markdown, "csv": to_csv, "json": to_json, "latex": to_latex}


def export(report: Report, fmt: str) -> str:
    if fmt not in EXPORTERS:
        raise ConfigError(f"unknown format {fmt!r}; allowed: {', '.join(EXPORTERS)}")
    return EXPORTERS[fmt](report)
