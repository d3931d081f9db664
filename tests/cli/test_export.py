"""Exports for pandas: ``runs`` and ``evaluate`` with --format json|csv, and ``export`` (one row
per run and epoch), read back with csv/json and compared with the store a tiny real run
wrote."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from dal_backdoor.exports import IDENTITY_FIELDS
from dal_backdoor.metrics import METRICS
from dal_backdoor.store import ResultsStore
from tests.helpers import TINY_TRAIN, invoke

CELL = {"dataset": "synthetic", "loss": "ce", "trigger": "local", "seed": 0}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 2-epoch poisoned run (tagged as a table6/ci cell) and everything its store holds."""
    tmp = tmp_path_factory.mktemp("tiny")
    out, db = tmp / "run", tmp / "r.db"
    result = invoke(*TINY_TRAIN[:-4], "--epochs", "2", "--trigger", "local", "--num-poison",
                    "10", "--device", "cpu", "--out", str(out), "--db", str(db))
    assert result.exit_code == 0, result.output
    with ResultsStore(db) as store:
        (record,) = store.list_runs()
        store.tag_run(record.run_id, "table6", "ci", CELL)
        epochs = store.epochs(record.run_id)
        record = store.get_run(record.run_id)
    return {"db": db, "out": out, "record": record, "epochs": epochs}


def parse(cell: str) -> Any:
    """A CSV cell back as a number where it is one ('' is None)."""
    if cell == "":
        return None
    for kind in (int, float):
        try:
            return kind(cell)
        except ValueError:
            pass
    return cell


def read_csv(text: str) -> tuple[list[str], list[dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    rows = [{k: parse(v) for k, v in row.items()} for row in reader]
    return list(reader.fieldnames or []), rows


def ok(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result.output


# -- export: one row per run and epoch -----------------------------------------------------------

def expected_epoch_rows(tiny: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    record = tiny["record"]
    ident = {"run_id": record.run_id, **extra, "status": "finished",
             **{k: record.config[k] for k in IDENTITY_FIELDS}}
    return [{**ident, **metrics} for metrics in tiny["epochs"]]


def test_export_csv_has_every_epoch_metric_as_numbers(tiny: dict[str, Any]) -> None:
    columns, rows = read_csv(ok("export", "--db", str(tiny["db"])))
    metric_names = [m for m in METRICS if m in tiny["epochs"][0] and m != "epoch"]
    assert columns == ["run_id", "status", *IDENTITY_FIELDS, "epoch", *metric_names]
    assert set(tiny["epochs"][0]) == {"epoch", *metric_names}
    expected = expected_epoch_rows(tiny)
    for row in expected:  # CSV cells: a list as JSON text
        row["notes"] = json.dumps(row["notes"])
    assert rows == expected
    assert [r["epoch"] for r in rows] == [1, 2]
    first = rows[0]
    assert (first["dataset"], first["loss"], first["trigger"], first["num_poison"],
            first["width"], first["epochs"], first["noise_kind"]) == (
        "synthetic", "ce", "local", 10, 4, 2, "none")
    assert first["clean_acc"] == first["clean_correct"] / first["clean_total"]
    assert first["asr"] == first["asr_hits"] / first["asr_total"]


def test_export_json_is_the_same_rows(tiny: dict[str, Any]) -> None:
    rows = json.loads(ok("export", "--db", str(tiny["db"]), "--format", "json"))
    assert rows == expected_epoch_rows(tiny)


def test_export_a_grid_names_grid_and_preset(tiny: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "epochs.csv"
    printed = ok("export", "--db", str(tiny["db"]), "--grid", "table6", "--preset", "ci",
                 "--out", str(out))
    assert printed.strip() == f"wrote {out}"
    columns, rows = read_csv(out.read_text())
    assert columns[:4] == ["run_id", "grid", "preset", "status"]
    expected = expected_epoch_rows(tiny, grid="table6", preset="ci")
    for row in expected:
        row["notes"] = json.dumps(row["notes"])
    assert rows == expected


def test_export_runs_by_id_or_prefix_once_each(tiny: dict[str, Any]) -> None:
    run_id = tiny["record"].run_id
    rows = json.loads(ok("export", "--db", str(tiny["db"]), "--run", run_id[:6], "--run",
                         run_id, "--format", "json"))
    assert rows == expected_epoch_rows(tiny)


def test_export_of_runs_without_epochs_is_a_header(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with ResultsStore(db) as store:
        store.start_run("r0", {"dataset": "cifar10", "loss": "ce"}, {})
    text = ok("export", "--db", str(db))
    assert text == ",".join(["run_id", "status", *IDENTITY_FIELDS, "epoch"]) + "\n"
    assert ok("export", "--db", str(db), "--format", "json") == "[]\n"


# -- runs --format -------------------------------------------------------------------------------

def test_runs_json_holds_every_recorded_field(tiny: dict[str, Any]) -> None:
    record = tiny["record"]
    (obj,) = json.loads(ok("runs", "--db", str(tiny["db"]), "--format", "json"))
    assert obj == {
        "run_id": record.run_id, "status": "finished", "last_epoch": 2, "attempts": 1,
        "created_at": record.created_at, "updated_at": record.updated_at,
        "finished_at": record.finished_at, "error": None, "config": record.config,
        "final_metrics": record.final_metrics, "provenance": record.provenance,
        "tags": [{"grid": "table6", "preset": "ci", "cell": CELL}],
    }
    final = obj["final_metrics"]
    assert isinstance(final["clean_correct"], int)
    assert final["clean_acc"] == final["clean_correct"] / final["clean_total"]
    assert obj["config"]["num_poison"] == 10
    assert obj["provenance"]["versions"]["torch"] == torch.__version__
    assert obj["provenance"]["device_name"].startswith("cpu")
    assert obj["provenance"]["git_commit"]


def test_runs_csv_is_one_row_with_config_columns(tiny: dict[str, Any], tmp_path: Path) -> None:
    record = tiny["record"]
    text = ok("runs", "--db", str(tiny["db"]), "--format", "csv")
    columns, (row,) = read_csv(text)
    assert columns[:8] == ["run_id", "status", "last_epoch", "attempts", "created_at",
                           "updated_at", "finished_at", "error"]
    assert columns[-1] == "tags"
    for key, value in record.final_metrics.items():  # metric columns under their own names
        assert row[key] == (json.dumps(value) if isinstance(value, list) else value), key
    assert row["config.width"] == 4
    assert row["config.trigger"] == "local"
    assert row["config.augment"] == "true"
    assert row["config.dataset_params.num_samples"] == 200
    assert row["config.train_subset"] is None
    assert row["provenance.versions.torch"] == torch.__version__
    assert row["tags"] == "table6/ci"
    assert row["status"] == "finished"
    assert row["last_epoch"] == 2
    config_columns = {c for c in columns if c.startswith("config.")}
    assert {c.split(".")[1] for c in config_columns} == set(record.config)
    out = tmp_path / "runs.csv"
    assert ok("runs", "--db", str(tiny["db"]), "--format", "csv", "--out",
              str(out)).strip() == f"wrote {out}"
    assert out.read_text() == text


def test_runs_export_of_an_empty_store(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    ResultsStore(db).close()
    assert ok("runs", "--db", str(db), "--format", "json") == "[]\n"
    assert ok("runs", "--db", str(db), "--format", "csv") == (
        "run_id,status,last_epoch,attempts,created_at,updated_at,finished_at,error,tags\n")


def test_runs_export_follows_status_and_run(tiny: dict[str, Any]) -> None:
    db = str(tiny["db"])
    assert ok("runs", "--db", db, "--format", "json", "--status", "failed") == "[]\n"
    (one,) = json.loads(ok("runs", "--db", db, "--format", "json", "--run",
                           tiny["record"].run_id[:8]))
    assert one["run_id"] == tiny["record"].run_id


# -- evaluate --format ---------------------------------------------------------------------------

def test_evaluate_json_reproduces_the_runs_final_counts(tiny: dict[str, Any]) -> None:
    record = tiny["record"]
    (obj,) = json.loads(ok("evaluate", str(tiny["out"]), "--device", "cpu", "--format",
                           "json"))
    assert obj["run_id"] == record.run_id
    assert obj["run_dir"] == str(tiny["out"])
    assert obj["evaluation"] == {"trigger": "local", "trigger_params": {}, "target_class": 7}
    assert obj["config"] == record.config
    assert obj["provenance"] == record.provenance
    assert obj["evaluated_with"]["versions"]["torch"] == torch.__version__
    final = record.final_metrics
    for key in ("clean_acc", "clean_correct", "clean_total", "asr", "asr_hits", "asr_total",
                "asr_true", "asr_true_hits", "asr_true_total", "robust_acc",
                "robust_correct", "robust_total"):
        assert obj["metrics"][key] == final[key], key


def test_evaluate_csv_is_one_row(tiny: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "eval.csv"
    printed = ok("evaluate", str(tiny["out"]), "--device", "cpu", "--trigger", "none",
                 "--format", "csv", "--out", str(out))
    assert printed.strip() == f"wrote {out}"
    columns, (row,) = read_csv(out.read_text())
    assert columns[:5] == ["run_id", "run_dir", "trigger", "trigger_params", "target_class"]
    assert row["trigger"] == "none"
    final = tiny["record"].final_metrics
    assert (row["clean_correct"], row["clean_total"], row["clean_acc"]) == (
        final["clean_correct"], final["clean_total"], final["clean_acc"])
    assert row["asr"] is None  # no trigger: no ASR
    assert row["config.num_poison"] == 10
    assert row["provenance.git_commit"] == tiny["record"].git_commit
