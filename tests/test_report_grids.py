"""Reports of the grids beyond the paper: attacks (loss x attack) and dose (loss x budget)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dal_backdoor.report import (
    RunRow,
    _fmt_seed_range,
    build_report,
    fmt_poison_counts,
    threshold_budget,
    to_csv,
    to_json,
    to_markdown,
)


def attack_row(loss: str, attack: str, seed: int, acc: float, asr: float) -> RunRow:
    trigger = {"badnets": "local", "wanet": "wanet", "sig": "sig"}[attack]
    return RunRow(f"{loss}{attack}{seed}", {"dataset": "cifar10", "loss": loss,
                                            "attack": attack, "seed": seed},
                  "finished", {"clean_acc": acc, "asr": asr}, [],
                  {"dataset": "fashion-mnist", "loss": loss, "trigger": trigger})


def dose_row(loss: str, trigger: str, budget: int, seed: int, asr: float) -> RunRow:
    return RunRow(f"{loss}{trigger}{budget}{seed}",
                  {"dataset": "cifar10", "loss": loss, "trigger": trigger,
                   "num_poison": budget, "seed": seed},
                  "finished", {"clean_acc": 0.9, "asr": asr}, [],
                  {"dataset": "fashion-mnist", "loss": loss,
                   "trigger": "weng" if trigger == "global" else trigger,
                   "num_poison": budget})


ATTACK_RUNS = [
    attack_row("ce", "badnets", 0, 0.90, 1.00), attack_row("ce", "badnets", 1, 0.92, 0.96),
    attack_row("ce", "sig", 0, 0.91, 0.40), attack_row("dal", "wanet", 0, 0.85, 0.10),
]


def test_attacks_table_is_loss_by_attack_acc_and_asr() -> None:
    report = build_report("attacks", "small", ATTACK_RUNS)
    assert report.rows == ("ce", "gce", "sce", "nce_agce", "dgce", "dal")
    assert report.columns[:4] == ("badnets acc", "badnets ASR", "badnets-random acc",
                                  "badnets-random ASR")
    assert len(report.columns) == 14
    cell = report.cell("ce", "badnets ASR")
    assert cell.values == (100.0, 96.0)
    assert cell.mean == pytest.approx(98.0)
    assert cell.std == pytest.approx(2.0)
    assert cell.incomplete
    assert cell.paper is None
    assert report.cell("ce", "sig acc").values == (91.0,)
    assert report.cell("dal", "wanet ASR").values == (10.0,)
    assert report.cell("gce", "weng ASR").values == ()
    assert any("clean-label attacks (sig) the target class is dropped" in n
               for n in report.notes)
    # not in the paper: no paper or difference columns, and no "paper for orientation" note
    assert not report.paper_columns
    assert report.row_header == "loss"
    assert not any("orientation" in n for n in report.notes)
    md = to_markdown(report)
    assert "| loss | badnets acc | badnets ASR |" in md
    assert "| ce | 91.00±1.00*(2/3) | 98.00±2.00*(2/3) |" in md
    assert "ce,badnets ASR,98.0,2.0,2,3" in to_csv(report)
    assert json.loads(to_json(report))["grid"] == "attacks"


def test_threshold_budget_and_its_seed_range() -> None:
    budgets = [10, 25, 50, 100]
    asr = {10: {0: 10.0, 1: 60.0, 2: 20.0}, 25: {0: 70.0, 1: 40.0, 2: 30.0},
           50: {0: 90.0, 1: 90.0, 2: 45.0}, 100: {0: 99.0, 1: 99.0, 2: 99.0}}
    # means: 30, 46.7, 75, 99 -> 50; seed crossings: 25, 10, 100
    assert threshold_budget(asr, budgets) == (50, 10, 100)
    asr[100][2] = 10.0  # seed 2 never passes: the upper end is open; means still pass at 50
    assert threshold_budget(asr, budgets) == (50, 10, None)
    assert threshold_budget({10: {0: 1.0}}, budgets) == (None, None, None)


def test_dose_table_and_threshold_note() -> None:
    runs = [dose_row(loss, "local", b, s, asr)
            for loss, curve in (("ce", {10: (0.2, 0.6), 25: (0.9, 0.95)}),
                                ("dal", {10: (0.0, 0.0), 25: (0.1, 0.3)}))
            for b, values in curve.items() for s, asr in enumerate(values)]
    report = build_report("dose", "small", runs)
    assert report.columns == ("10/10k", "25/10k", "50/10k", "100/10k", "200/10k", "400/10k",
                              "800/10k")
    assert report.rows[:3] == ("local/ce", "local/gce", "local/dal")
    assert (report.paper_columns, report.row_header) == (False, "trigger/loss")
    assert report.cell("local/ce", "10/10k").mean == pytest.approx(40.0)
    assert report.cell("local/dal", "25/10k").values == (10.0, 30.0)
    (note,) = [n for n in report.notes if n.startswith("smallest budget")]
    assert note == ("smallest budget (poisons per 10,000) with mean ASR >= 50%: "
                    "local/ce: 25 (seeds 10-25); local/dal: none (no seed passes)")


def test_seed_range_wording() -> None:
    assert _fmt_seed_range(50, 200) == "seeds 50-200"
    assert _fmt_seed_range(25, 25) == "every seed at 25"
    assert _fmt_seed_range(400, None) == "seeds from 400, not all"
    assert _fmt_seed_range(None, None) == "no seed passes"


def test_new_grid_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from dal_backdoor.plots import plot_report

    heat, heat_pdf = plot_report("attacks", ATTACK_RUNS, tmp_path)
    runs = [dose_row("ce", t, b, s, 0.1 * s + b / 1000) for t in ("local", "global")
            for b in (10, 100, 800) for s in range(3)]
    (curve,) = plot_report("dose", runs, tmp_path, formats=("png",))
    assert (heat.name, curve.name) == ("attacks_asr_heatmap.png", "dose_asr_vs_budget.png")
    assert heat_pdf.name == "attacks_asr_heatmap.pdf"
    assert heat_pdf.read_bytes()[:4] == b"%PDF"
    assert all(p.read_bytes()[:4] == b"\x89PNG" and p.stat().st_size > 1000
               for p in (heat, curve))
    assert plot_report("attacks", [], tmp_path) == []


def test_attacks_heatmap_cells_name_asr_accuracy_and_seeds() -> None:
    pytest.importorskip("matplotlib")
    from dal_backdoor.experiments import get_grid
    from dal_backdoor.plots import attacks_figure

    fig = attacks_figure(get_grid("attacks"), ATTACK_RUNS)
    texts = {t.get_text() for t in fig.axes[0].texts}
    # ce/badnets: ASR 100 and 96 -> 98, accuracy 90 and 92 -> 91, two seeds
    assert "98\nacc 91\nn=2" in texts
    assert "10\nacc 85\nn=1" in texts  # dal/wanet
    assert len(texts) == len({(r.cell["loss"], r.cell["attack"]) for r in ATTACK_RUNS})


def test_poison_counts_in_words() -> None:
    assert fmt_poison_counts([(100, 10_000)]) == "100 poisoned images (1.0% of 10,000)"
    assert fmt_poison_counts([(20, 1_000), (100, 1_000)]) == (
        "20 poisoned images (2.0% of 1,000) / 100 poisoned images (10.0% of 1,000)")
    # a budget axis on one training set: a range (the columns name every budget)
    assert fmt_poison_counts([(10, 10_000), (25, 10_000), (800, 10_000)]) == (
        "10-800 poisoned images (0.1-8.0% of 10,000)")
    # several training-set sizes: every pair
    assert fmt_poison_counts([(10, 500), (20, 1_000), (30, 2_000)]).count(" / ") == 2
