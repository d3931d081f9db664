"""The console view of ``dal-backdoor table``: wide "<name> <metric>" tables split per metric."""

from __future__ import annotations

from rich.console import Console

from dal_backdoor.cli.table import SPLIT_ABOVE_COLUMNS, metric_groups, rich_table
from dal_backdoor.report import Cell, Report


def _report(columns: tuple[str, ...]) -> Report:
    cells = {("ce", c): Cell("ce", c, (float(i), float(i) + 2.0), 2, None)
             for i, c in enumerate(columns)}
    return Report("attacks", "small", "Losses x attacks", ("ce",), columns, cells,
                  paper_columns=False, row_header="loss")


def test_metric_groups() -> None:
    cols = ("a acc", "a ASR", "b-c acc", "b-c ASR")
    assert metric_groups(cols) == {"acc": ("a acc", "b-c acc"), "ASR": ("a ASR", "b-c ASR")}
    # a column without a metric word, or a metric of one column: one group, unchanged
    assert metric_groups(("a acc", "b ASR", "c ASR")) == {"": ("a acc", "b ASR", "c ASR")}
    assert metric_groups(("10/10k", "25/10k")) == {"": ("10/10k", "25/10k")}


def _render(report: Report) -> str:
    console = Console(width=250, record=True)
    console.print(rich_table(report))
    return console.export_text()


def test_wide_table_prints_one_table_per_metric() -> None:
    attacks = ("badnets", "weng", "grating", "blended", "sig")
    columns = tuple(f"{a} {m}" for a in attacks for m in ("acc", "ASR"))
    assert len(columns) > SPLIT_ABOVE_COLUMNS
    text = _render(_report(columns))
    assert "Losses x attacks - acc" in text
    assert "Losses x attacks - ASR" in text
    assert "badnets acc" not in text  # the title names the metric, the header the attack
    # column i holds mean i + 1: the acc table the odd means, the ASR table the even ones
    acc_part, asr_part = text.split("Losses x attacks - ASR")
    assert all(f" {m}.00±1.00" in acc_part for m in (1, 3, 5, 7, 9))
    assert all(f" {m}.00±1.00" in asr_part for m in (2, 4, 6, 8))
    assert "10.00±1.00" in asr_part
    assert " 2.00±1.00" not in acc_part
    assert " 1.00±1.00" not in asr_part


def test_narrow_table_stays_one() -> None:
    text = _render(_report(("badnets acc", "badnets ASR")))
    assert " - acc" not in text
    assert "badnets acc" in text
    assert "badnets ASR" in text
