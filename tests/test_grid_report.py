"""The table of a user grid: layout from the runs' cells, exact means and stds, exports."""

from __future__ import annotations

import pytest

from dal_backdoor.errors import ConfigError
from dal_backdoor.grid_report import (
    Layout,
    axes_of,
    build_user_report,
    choose_layout,
    run_kind,
)
from dal_backdoor.report import RunRow, to_csv, to_latex, to_markdown


def row(loss: str, poisons: int, seed: int, acc: float | None, asr: float | None,
        status: str = "finished", **config: object) -> RunRow:
    final = None if status != "finished" else {"clean_acc": acc, "asr": asr,
                                                 "asr_true": asr, "robust_acc": 0.5,
                                                 "num_clean": 1000 - poisons, "num_noisy": 0,
                                                 "num_poisoned": poisons}
    return RunRow(f"{loss}{poisons}{seed}", {"loss": loss, "num_poison": poisons, "seed": seed},
                  status, final, [], {"dataset": "fashion-mnist", "loss": loss,
                                      "trigger": "local", "num_poison": poisons, "width": 4,
                                      "epochs": 2, "seed": seed, **config})


RUNS = [
    row("dal", 100, 0, 0.80, 0.00), row("dal", 100, 1, 0.84, 0.02),
    row("ce", 100, 0, 0.90, 0.96), row("ce", 100, 1, 0.92, 1.00),
    row("ce", 20, 0, 0.91, 0.10), row("ce", 20, 1, None, None, status="failed"),
    row("dal", 20, 0, 0.83, 0.00),
]


def test_axes_come_from_the_cells_numbers_sorted_names_in_tag_order() -> None:
    axes = axes_of(RUNS)
    assert axes == {"loss": ["dal", "ce"], "num_poison": [20, 100], "seed": [0, 1]}
    assert list(axes_of(RUNS, order=("num_poison",))) == ["num_poison", "loss", "seed"]
    assert run_kind(RUNS) == "backdoor"
    assert run_kind([row("ce", 0, 0, 0.9, None, trigger="none")]) == "noise"


def test_default_layout_first_axis_rows_second_columns() -> None:
    axes = axes_of(RUNS)
    assert choose_layout("g", axes, "backdoor") == Layout(("loss",), "num_poison",
                                                          ("clean_acc", "asr"))
    assert choose_layout("g", axes, "noise", rows=("num_poison",)) == Layout(
        ("num_poison",), "loss", ("clean_acc",))
    assert choose_layout("g", axes, "backdoor", column="loss", metrics=("asr",)) == Layout(
        ("num_poison",), "loss", ("asr",))
    three = {**axes, "width": [2, 4]}
    assert choose_layout("g", three, "backdoor", column="width").rows == ("loss",
                                                                           "num_poison")
    with pytest.raises(ConfigError, match="'lr' is not an axis of the grid"):
        choose_layout("g", axes, "backdoor", rows=("lr",))
    with pytest.raises(ConfigError, match="both a row and the column"):
        choose_layout("g", axes, "backdoor", rows=("loss",), column="loss")
    with pytest.raises(ConfigError, match="unknown table metric 'f1'"):
        choose_layout("g", axes, "backdoor", metrics=("f1",))


def test_user_report_cells_are_mean_and_population_std_over_seeds() -> None:
    axes = axes_of(RUNS)
    layout = choose_layout("mine", axes, "backdoor")
    report = build_user_report("mine", "small", RUNS, layout, axes=axes)
    assert report.rows == ("dal", "ce")
    assert report.columns == ("num_poison=20 acc", "num_poison=20 ASR", "num_poison=100 acc",
                              "num_poison=100 ASR")
    cell = report.cell("ce", "num_poison=100 ASR")
    assert cell.values == (96.0, 100.0)
    assert cell.mean == pytest.approx(98.0)
    assert cell.std == pytest.approx(2.0)
    assert cell.paper is None
    assert cell.extra["asr_true"] == (96.0, 100.0)
    assert cell.extra["robust_acc"] == (50.0, 50.0)
    assert report.cell("dal", "num_poison=100 acc").mean == pytest.approx(82.0)
    failed = report.cell("ce", "num_poison=20 acc")  # seed 1 failed: one of two seeds
    assert failed.values == (91.0,)
    assert failed.incomplete
    assert report.row_header == "loss"
    assert not report.paper_columns
    notes = " ".join(report.notes)
    assert "4 cell(s) have fewer than 2 finished seeds" in notes
    assert "every run: dataset fashion-mnist, width 4, epochs 2, trigger local." in notes
    assert ("poisons: 20 poisoned images (2.0% of 1,000) / 100 poisoned images "
            "(10.0% of 1,000).") in notes
    assert "no paper values" in notes
    assert "WARNING" not in notes


def test_user_report_markdown_csv_latex_have_no_paper_columns() -> None:
    axes = axes_of(RUNS)
    layout = Layout(("num_poison",), "loss", ("asr",))
    report = build_user_report("mine", "small", RUNS, layout, axes=axes, title="My grid")
    md = to_markdown(report)
    assert md.splitlines()[:5] == [
        "**My grid** (grid `mine`, preset `small`)", "",
        "| num_poison | loss=dal ASR | loss=ce ASR |", "|---|---|---|",
        "| 20 | 0.00±0.00*(1/2) | 10.00±0.00*(1/2) |"]
    assert "| 100 | 1.00±1.00 | 98.00±2.00 |" in md
    csv_lines = [line for line in to_csv(report).splitlines() if not line.startswith("#")]
    assert csv_lines[0].endswith("asr_true_mean,asr_true_std,asr_true_n,robust_acc_mean,"
                                 "robust_acc_std,robust_acc_n")
    assert csv_lines[1].startswith("20,loss=dal ASR,0.0,0.0,1,2,,,")
    assert r"100 & 1.00$\pm$1.00 & 98.00$\pm$2.00 \\" in to_latex(report)


def test_cells_of_different_settings_are_flagged() -> None:
    runs = [row("ce", 100, 0, 0.9, 0.9), row("ce", 100, 1, 0.9, 0.9, epochs=4)]
    axes = axes_of(runs)
    report = build_user_report("g", "small", runs, choose_layout("g", axes, "backdoor"),
                               axes=axes)
    assert any(n.startswith("WARNING: cells pool runs") and "epochs: 2, 4" in n
               for n in report.notes)


def test_runs_of_an_earlier_grid_of_the_same_name_keep_their_rows_and_are_flagged() -> None:
    older = RunRow("old", {"loss": "gce", "seed": 0}, "finished", {"clean_acc": 0.7}, [],
                   {"dataset": "fashion-mnist", "loss": "gce", "trigger": "none"})
    runs = [*RUNS, older]
    axes = axes_of(runs)
    report = build_user_report("g", "small", runs, choose_layout("g", axes, "backdoor"),
                               axes=axes)
    assert report.rows == ("dal", "ce", "gce")
    assert report.cell("gce", "num_poison=None acc") is None
    assert any(n.startswith("WARNING: the runs tagged with this grid name have different "
                            "axes (loss, num_poison, seed; loss, seed)") for n in report.notes)
