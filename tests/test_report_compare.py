"""Two tables side by side: cells paired by label, B - A, what differs between the sides."""

from __future__ import annotations

import json

import pytest

from dal_backdoor.errors import ConfigError
from dal_backdoor.report import RunRow, build_report
from dal_backdoor.report_compare import (
    compare,
    differing_settings,
    export,
    side_labels,
    to_csv,
    to_json,
    to_markdown,
)


def t6(loss: str, seed: int, acc: float, asr: float, epochs: int = 8) -> RunRow:
    return RunRow(f"{loss}{seed}{epochs}", {"dataset": "cifar10", "loss": loss,
                                            "trigger": "local", "seed": seed},
                  "finished", {"clean_acc": acc, "asr": asr}, [],
                  {"dataset": "fashion-mnist", "loss": loss, "trigger": "local",
                   "epochs": epochs, "seed": seed})


A_RUNS = [t6("ce", 0, 0.90, 0.90), t6("ce", 1, 0.88, 1.00), t6("dal", 0, 0.84, 0.00)]
B_RUNS = [t6("ce", 0, 0.91, 0.50, 4), t6("ce", 1, 0.93, 0.70, 4)]


@pytest.fixture
def comparison():
    a, b = build_report("table6", "small", A_RUNS), build_report("table6", "small", B_RUNS)
    return compare(a, b, "a.db", "b.db", runs_a=A_RUNS, runs_b=B_RUNS)


def test_cells_pair_by_label_with_the_difference(comparison) -> None:
    assert comparison.rows == ("cifar10/ce", "cifar10/dal")
    assert comparison.columns == ("local acc", "local ASR", "global acc", "global ASR")
    a, b = comparison.pair("cifar10/ce", "local ASR")
    assert (a.mean, b.mean) == (pytest.approx(95.0), pytest.approx(60.0))
    assert comparison.diff("cifar10/ce", "local ASR") == pytest.approx(-35.0)
    assert comparison.diff("cifar10/ce", "local acc") == pytest.approx(3.0)
    assert comparison.diff("cifar10/dal", "local ASR") is None  # B has no dal run
    assert comparison.notes[0] == "A = a.db; B = b.db; Δ = B - A (mean of B minus mean of A)."
    assert comparison.notes[1] == "settings that differ between A and B: epochs: 8 vs 4; loss: " \
                                  '"ce", "dal" vs "ce"'


def test_exports(comparison) -> None:
    md = to_markdown(comparison).splitlines()
    assert md[2].startswith("| row | local acc A | local acc B | local acc Δ | local ASR A |")
    assert md[4].startswith("| cifar10/ce | 89.00±1.00*(2/3) | 92.00±1.00*(2/3) | +3.00 | "
                            "95.00±5.00*(2/3) | 60.00±10.00*(2/3) | -35.00 | - |")
    assert md[5].startswith("| cifar10/dal | 84.00±0.00*(1/3) | - | - |")
    lines = [line for line in to_csv(comparison).splitlines() if not line.startswith("#")]
    assert lines[0] == "row,column,a_mean,a_std,a_n,b_mean,b_std,b_n,diff"
    assert lines[2] == "cifar10/ce,local ASR,95.0,5.0,2,60.0,10.0,2,-35.0"
    assert lines[3] == "cifar10/ce,global acc,,,0,,,0,"
    obj = json.loads(to_json(comparison))
    assert obj["a"] == {"label": "a.db", "grid": "table6", "preset": "small"}
    assert obj["cells"][1]["diff"] == pytest.approx(-35.0)
    with pytest.raises(ConfigError, match="allowed with --compare: rich, md, csv, json"):
        export(comparison, "latex")


def test_side_labels_name_what_differs() -> None:
    a = {"db": "a.db", "grid": "table6", "preset": "small"}
    assert side_labels(a, {**a, "db": "b.db"}) == ("a.db", "b.db")
    assert side_labels(a, {**a, "preset": "ci"}) == ("small", "ci")
    assert side_labels(a, {**a, "grid": "g", "preset": "ci"}) == ("table6 small", "g ci")


def test_differing_settings_ignore_seed_and_unfinished_runs() -> None:
    failed = RunRow("x", {}, "failed", None, [], {"epochs": 99, "seed": 5})
    assert differing_settings([t6("ce", 0, 0.9, 0.9)], [t6("ce", 1, 0.9, 0.9), failed]) == {}
    assert differing_settings([t6("ce", 0, 0.9, 0.9)], [t6("ce", 0, 0.9, 0.9, 4)]) == {
        "epochs": (["8"], ["4"])}


def test_tables_without_a_common_cell_are_flagged() -> None:
    a = build_report("table6", "small", A_RUNS)
    b = build_report("table2", "small", [])
    cmp = compare(a, b, "table6", "table2")
    assert any(n.startswith("WARNING: the two tables share no cell") for n in cmp.notes)
