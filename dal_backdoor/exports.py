"""Exports a researcher feeds to pandas: the runs of a results store, their per-epoch metrics
and an evaluation, as JSON or CSV text.

Numbers stay numbers: rates are the stored fractions (0.9312, not "93.12%"), counts are
integers, a missing value is ``null`` in JSON and an empty cell in CSV, booleans are
``true``/``false``. Metric columns are named as in ``dal_backdoor.metrics`` and ordered as
declared there (unknown keys after them, sorted).

- Runs (``runs --format``): JSON is a list of objects, one per run, holding every recorded
  field (:func:`run_object`); CSV has one row per run: the run's fields, its final metrics,
  then the nested objects flattened with dotted names (``config.loss_params.q``,
  ``provenance.versions.torch``) and its grid tags as ``grid/preset`` text.
- Epochs (``export``): one flat row per run and epoch (:func:`epoch_rows`): the run's
  identifying fields (:data:`IDENTITY_FIELDS`), ``epoch`` and every metric recorded that epoch.
  JSON is the same rows as a list of objects (every key in every row).

Nothing here imports torch.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dal_backdoor.metrics import METRICS
from dal_backdoor.store import RunRecord, to_jsonable

FORMATS = ("json", "csv")
#: The run's own fields, first in every runs export.
RUN_FIELDS = ("run_id", "status", "last_epoch", "attempts", "created_at", "updated_at",
              "finished_at", "error")
#: The config fields that name a run in the per-epoch export (beside run_id and status).
IDENTITY_FIELDS = ("dataset", "model", "width", "loss", "trigger", "num_poison",
                   "target_class", "noise_kind", "noise_rate", "seed", "epochs")

Row = dict[str, Any]


# -- shaping ------------------------------------------------------------------------------------

def flatten(obj: Mapping[str, Any], prefix: str = "") -> Row:
    """Nested mappings as one level of dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``); an
    empty mapping stays as ``{prefix: {}}``, lists stay lists (CSV writes them as JSON)."""
    out: Row = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def metric_order(keys: Iterable[str]) -> list[str]:
    """``keys`` in the order ``dal_backdoor.metrics.METRICS`` declares them, others sorted."""
    keys = set(keys)
    known = [name for name in METRICS if name in keys]
    return known + sorted(keys - set(known))


def union_columns(rows: Iterable[Row], first: Sequence[str] = ()) -> list[str]:
    """``first``, then every other key of ``rows``: metrics in declared order, then the
    dotted (flattened) keys sorted."""
    seen: set[str] = set()
    for row in rows:
        seen.update(row)
    rest = seen - set(first)
    plain = metric_order(k for k in rest if "." not in k)
    return [*first, *plain, *sorted(k for k in rest if "." in k)]


# -- runs ---------------------------------------------------------------------------------------

def run_object(record: RunRecord, state: str, last_epoch: int | None,
               tags: Sequence[Mapping[str, Any]] = ()) -> Row:
    """Everything recorded about one run: its fields, the full resolved ``config``, the raw
    ``final_metrics`` (counts and rates), ``provenance`` and grid ``tags``. ``state`` is the
    status as ``dal_backdoor.store.run_state`` tells it (running or interrupted)."""
    return {
        "run_id": record.run_id, "status": state, "last_epoch": last_epoch,
        "attempts": record.attempts, "created_at": record.created_at,
        "updated_at": record.updated_at, "finished_at": record.finished_at,
        "error": record.error, "config": dict(record.config or {}),
        "final_metrics": None if record.final_metrics is None else dict(record.final_metrics),
        "provenance": record.provenance,
        "tags": [{"grid": t["grid"], "preset": t["preset"], "cell": t["cell"]} for t in tags],
    }


def run_row(obj: Mapping[str, Any]) -> Row:
    """One CSV row of a :func:`run_object`: final metrics under their own names, config and
    provenance flattened (``config.<key>``, ``provenance.<key>``), tags as
    ``grid/preset;...``."""
    row: Row = {name: obj[name] for name in RUN_FIELDS}
    row.update(obj["final_metrics"] or {})
    row.update(flatten(obj["config"], "config."))
    row.update(flatten(obj["provenance"], "provenance."))
    row["tags"] = ";".join(f"{t['grid']}/{t['preset']}" for t in obj["tags"])
    return row


def runs_csv(objects: Sequence[Mapping[str, Any]]) -> str:
    """The runs as CSV, one row per run (see the module docstring)."""
    rows = [run_row(obj) for obj in objects]
    columns = [c for c in union_columns(rows, RUN_FIELDS) if c != "tags"]
    return csv_text(rows, [*columns, "tags"])


# -- epochs -------------------------------------------------------------------------------------

def identity(run_id: str, status: str, config: Mapping[str, Any]) -> Row:
    """The fields that name a run in the per-epoch export."""
    return {"run_id": run_id, "status": status,
            **{name: config.get(name) for name in IDENTITY_FIELDS}}


def epoch_rows(ident: Mapping[str, Any], epochs: Sequence[Mapping[str, Any]]) -> list[Row]:
    """One row per recorded epoch: the run's identifying fields, then the epoch's metrics (a
    metric never overwrites an identifying field)."""
    return [{**ident, **{k: v for k, v in metrics.items() if k not in ident}}
            for metrics in epochs]


def epochs_columns(rows: Sequence[Row], first: Sequence[str]) -> list[str]:
    """``first`` (the identifying fields), ``epoch``, then the metrics in declared order."""
    return union_columns(rows, [*first, "epoch"])


def complete(rows: Sequence[Row], columns: Sequence[str]) -> list[Row]:
    """Every row with every column (None where it has none), in column order: a JSON list of
    records that pandas reads as a table."""
    return [{name: row.get(name) for name in columns} for row in rows]


# -- text ---------------------------------------------------------------------------------------

def json_text(obj: Any) -> str:
    """Strict JSON (NaN and infinities as null), indented, ending in a newline."""
    return json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n"


def csv_cell(value: Any) -> Any:
    """A value as written in a CSV cell: None -> empty, booleans -> true/false, containers
    -> compact JSON, numbers unchanged (the csv module writes them in full precision)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(to_jsonable(value), sort_keys=True, separators=(",", ":"))
    if isinstance(value, float):
        return to_jsonable(value) if to_jsonable(value) is not None else ""
    return value


def csv_text(rows: Iterable[Row], columns: Sequence[str]) -> str:
    """A header of ``columns`` and one line per row (a missing key is an empty cell)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(name)) for name in columns])
    return buffer.getvalue()


# -- an evaluation ------------------------------------------------------------------------------

def evaluation_object(run_id: str, run_dir: str, config: Mapping[str, Any],
                      evaluation: Mapping[str, Any], metrics: Mapping[str, Any],
                      provenance: Mapping[str, Any] | None,
                      evaluated_with: Mapping[str, Any]) -> Row:
    """One ``evaluate`` result: the run (id, folder, recorded config and provenance), what was
    evaluated (trigger, its parameters, target class), the raw metrics (rates and counts) and
    where the evaluation ran (``evaluated_with``: git commit, versions, device)."""
    return {"run_id": run_id, "run_dir": run_dir, "evaluation": dict(evaluation),
            "metrics": dict(metrics), "config": dict(config),
            "provenance": dict(provenance or {}), "evaluated_with": dict(evaluated_with)}


def evaluation_csv(objects: Sequence[Mapping[str, Any]]) -> str:
    """Evaluations as CSV: run_id, run_dir, the evaluation's fields, the metrics under their
    own names, then config, provenance and evaluated_with flattened with dotted names."""
    rows = []
    for obj in objects:
        row: Row = {"run_id": obj["run_id"], "run_dir": obj["run_dir"]}
        row.update(flatten(obj["evaluation"]))
        row.update(obj["metrics"])
        for name in ("config", "provenance", "evaluated_with"):
            row.update(flatten(obj[name], f"{name}."))
        rows.append(row)
    first = ["run_id", "run_dir", *(flatten(objects[0]["evaluation"]) if objects else ())]
    return csv_text(rows, union_columns(rows, first))
