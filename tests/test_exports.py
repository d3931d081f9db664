"""dal_backdoor.exports: flattening, column order and cell text of the JSON/CSV exports."""

from __future__ import annotations

from dal_backdoor.exports import (
    csv_cell,
    csv_text,
    epoch_rows,
    flatten,
    json_text,
    metric_order,
    union_columns,
)


def test_flatten_uses_dotted_names() -> None:
    nested = {"a": 1, "b": {"c": 2, "d": {"e": [1, 2]}}, "empty": {}, "none": None}
    assert flatten(nested, "config.") == {"config.a": 1, "config.b.c": 2,
                                          "config.b.d.e": [1, 2], "config.empty": {},
                                          "config.none": None}


def test_metrics_come_in_declared_order_then_the_rest() -> None:
    assert metric_order(["zeta", "asr", "epoch", "clean_acc", "alpha"]) == [
        "epoch", "clean_acc", "asr", "alpha", "zeta"]
    rows = [{"run_id": "r", "config.b": 1, "asr": 0.5}, {"config.a": 2, "clean_acc": 0.25}]
    assert union_columns(rows, ["run_id"]) == ["run_id", "clean_acc", "asr", "config.a",
                                               "config.b"]


def test_cells_keep_numbers_and_spell_the_rest() -> None:
    assert csv_cell(None) == ""
    assert csv_cell(True) == "true"
    assert csv_cell(0.1 + 0.2) == 0.30000000000000004  # full precision, not formatted
    assert csv_cell(float("nan")) == ""
    assert csv_cell([1, "a"]) == '[1,"a"]'
    assert csv_cell({"b": 1, "a": 2}) == '{"a":2,"b":1}'
    assert csv_text([{"a": 1, "b": "x,y"}, {"a": 0.5}], ["a", "b"]) == 'a,b\n1,"x,y"\n0.5,\n'


def test_epoch_rows_never_let_a_metric_overwrite_the_run_fields() -> None:
    ident = {"run_id": "r1", "loss": "ce"}
    rows = epoch_rows(ident, [{"epoch": 1, "loss": 9.0, "asr": 0.5}])
    assert rows == [{"run_id": "r1", "loss": "ce", "epoch": 1, "asr": 0.5}]


def test_json_text_is_strict() -> None:
    text = json_text([{"a": float("inf"), "b": 1}])
    assert text == '[\n  {\n    "a": null,\n    "b": 1\n  }\n]\n'
