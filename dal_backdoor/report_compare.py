"""Two tables side by side: the same cells from two stores, two grids or two presets.

``dal-backdoor table GRID --compare B.db`` (or ``--compare-grid``/``--compare-preset``) builds
the table of each side as usual and pairs their cells by row and column label; each pair
shows side A's mean ± std, side B's, and the difference of the means (B - A). Rows and
columns that only one side has are kept (the other side shows "-"). A note names the run
settings that differ between the sides (beyond loss, trigger or noise: e.g. epochs).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dal_backdoor.config import NON_IDENTITY_FIELDS
from dal_backdoor.errors import ConfigError
from dal_backdoor.report import Cell, Report, RunRow, fmt_mean_std

COMPARE_FORMATS = ("rich", "md", "csv", "json")
#: At most this many differing settings are named in the note.
MAX_DIFFERENCES = 8


@dataclass(frozen=True)
class Comparison:
    """Reports ``a`` and ``b`` paired cell by cell (labels name the sides)."""

    a: Report
    b: Report
    label_a: str
    label_b: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def pair(self, row: str, column: str) -> tuple[Cell | None, Cell | None]:
        return self.a.cell(row, column), self.b.cell(row, column)

    def diff(self, row: str, column: str) -> float | None:
        """B's mean minus A's mean; None when either side has no value."""
        a, b = self.pair(row, column)
        if a is None or b is None or a.mean is None or b.mean is None:
            return None
        return b.mean - a.mean


def _union(first: Iterable[str], second: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*first, *second]))


def differing_settings(runs_a: Iterable[RunRow], runs_b: Iterable[RunRow]) -> dict[str, tuple]:
    """Config fields whose set of values differs between the two sides' finished runs
    (seed and where/how-fast fields aside): field -> (A's values, B's values)."""
    def values(runs: Iterable[RunRow]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for run in runs:
            if run.status != "finished":
                continue
            for key, value in run.config.items():
                if key not in NON_IDENTITY_FIELDS and key != "seed":
                    out.setdefault(key, set()).add(json.dumps(value, sort_keys=True))
        return out

    va, vb = values(runs_a), values(runs_b)
    return {k: (sorted(va.get(k, ())), sorted(vb.get(k, ())))
            for k in sorted(set(va) | set(vb)) if va.get(k) != vb.get(k)}


def compare(a: Report, b: Report, label_a: str, label_b: str, *,
            runs_a: Iterable[RunRow] = (), runs_b: Iterable[RunRow] = ()) -> Comparison:
    """Pair the cells of ``a`` and ``b`` by label; notes: what differs between the sides and
    each side's own notes."""
    notes = [f"A = {label_a}; B = {label_b}; Δ = B - A (mean of B minus mean of A)."]
    shared = set(a.cells) & set(b.cells)
    if not shared:
        notes.append("WARNING: the two tables share no cell (no row and column label in "
                     "common); compare tables of the same layout.")
    differ = differing_settings(runs_a, runs_b)
    if differ:
        shown = list(differ.items())[:MAX_DIFFERENCES]
        notes.append("settings that differ between A and B: " + "; ".join(
            f"{k}: {', '.join(va) or '-'} vs {', '.join(vb) or '-'}" for k, (va, vb) in shown)
            + (" ..." if len(differ) > MAX_DIFFERENCES else ""))
    notes += [f"A: {n}" for n in a.notes] + [f"B: {n}" for n in b.notes]
    return Comparison(a, b, label_a, label_b, _union(a.rows, b.rows),
                      _union(a.columns, b.columns), tuple(notes))


def side_labels(a: dict[str, str], b: dict[str, str]) -> tuple[str, str]:
    """Short labels for two sides described by {"db", "grid", "preset"}: the parts that
    differ (all of them when none does)."""
    keys = [k for k in ("db", "grid", "preset") if a[k] != b[k]] or ["db", "grid", "preset"]
    return (" ".join(a[k] for k in keys), " ".join(b[k] for k in keys))


def fmt_side(cell: Cell | None) -> str:
    if cell is None or cell.mean is None:
        return "-"
    text = fmt_mean_std(cell.mean, cell.std)
    return f"{text}*({cell.n}/{cell.expected_n})" if cell.incomplete else text


def fmt_diff(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def to_markdown(cmp: Comparison) -> str:
    head = ["row"] + [f"{c} {side}" for c in cmp.columns for side in ("A", "B", "Δ")]
    lines = [f"**{cmp.a.title}**: A = {cmp.label_a} vs B = {cmp.label_b}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in cmp.rows:
        parts = [row]
        for col in cmp.columns:
            a, b = cmp.pair(row, col)
            parts += [fmt_side(a), fmt_side(b), fmt_diff(cmp.diff(row, col))]
        lines.append("| " + " | ".join(parts) + " |")
    lines += [""] + [f"- {note}" for note in cmp.notes]
    return "\n".join(lines) + "\n"


CSV_FIELDS = ("row", "column", "a_mean", "a_std", "a_n", "b_mean", "b_std", "b_n", "diff")


def _side_values(cell: Cell | None) -> tuple[Any, Any, Any]:
    if cell is None:
        return None, None, 0
    return cell.mean, cell.std, cell.n


def to_rows(cmp: Comparison) -> list[dict[str, Any]]:
    """One dict per (row, column): each side's mean, std and n, and the difference."""
    out = []
    for row in cmp.rows:
        for col in cmp.columns:
            a, b = cmp.pair(row, col)
            values = (*_side_values(a), *_side_values(b), cmp.diff(row, col))
            out.append(dict(zip(CSV_FIELDS, (row, col, *values), strict=True)))
    return out


def to_csv(cmp: Comparison) -> str:
    """One row per cell; the title and notes first as ``# `` lines (pandas: comment="#")."""
    buffer = io.StringIO()
    buffer.write(f"# {cmp.a.title}: A = {cmp.label_a} vs B = {cmp.label_b}\n")
    for note in cmp.notes:
        buffer.write(f"# {note}\n")
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for item in to_rows(cmp):
        writer.writerow({k: ("" if v is None else v) for k, v in item.items()})
    return buffer.getvalue()


def to_json(cmp: Comparison) -> str:
    obj = {"a": {"label": cmp.label_a, "grid": cmp.a.grid, "preset": cmp.a.preset},
           "b": {"label": cmp.label_b, "grid": cmp.b.grid, "preset": cmp.b.preset},
           "title": cmp.a.title, "rows": list(cmp.rows), "columns": list(cmp.columns),
           "cells": to_rows(cmp), "notes": list(cmp.notes)}
    return json.dumps(obj, indent=2, allow_nan=False) + "\n"


EXPORTERS = {"md": to_markdown, "csv": to_csv, "json": to_json}


def export(cmp: Comparison, fmt: str) -> str:
    if fmt not in EXPORTERS:
        raise ConfigError(f"format {fmt!r} cannot show a comparison; allowed with --compare: "
                          + ", ".join(COMPARE_FORMATS))
    return EXPORTERS[fmt](cmp)
