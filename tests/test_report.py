from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest

from dal_backdoor import paper_values
from dal_backdoor.report import (
    RunRow,
    build_report,
    current_runs,
    export,
    mixed_settings,
    population_std,
    to_csv,
    to_json,
    to_latex,
    to_markdown,
)


def row(loss: str, trigger: str, seed: int, acc: float, asr: float,
        status: str = "finished") -> RunRow:
    cell = {"dataset": "cifar10", "loss": loss, "trigger": trigger, "seed": seed}
    epochs = [{"epoch": e, "clean_acc": acc * e / 2, "asr": asr, "q": 0.8 + 0.35 * e,
               "lam": 0.0, "train_acc_clean": 0.5, "train_acc_poisoned": asr}
              for e in (1, 2)]
    return RunRow(f"{loss}{trigger}{seed}", cell, status,
                  {"clean_acc": acc, "asr": asr} if status == "finished" else None, epochs,
                  {"dataset": "fashion-mnist"})


RUNS = [
    row("ce", "local", 0, 0.90, 0.98), row("ce", "local", 1, 0.92, 0.96),
    row("ce", "local", 2, 0.91, 1.00),
    row("dal", "local", 0, 0.85, 0.0), row("dal", "local", 1, 0.83, 0.01),
    row("dal", "local", 2, 0.80, 0.02, status="failed"),
]


def test_population_std_closed_form() -> None:
    assert population_std([1.0, 2.0, 3.0]) == pytest.approx(math.sqrt(2 / 3))
    assert population_std([5.0]) == 0.0


def test_cells_mean_std_and_missing_seeds() -> None:
    report = build_report("table6", "small", RUNS)
    ce = report.cell("cifar10/ce", "local ASR")
    assert ce.values == pytest.approx((98.0, 96.0, 100.0))
    assert ce.mean == pytest.approx(98.0)
    assert ce.std == pytest.approx(math.sqrt(8 / 3))
    assert not ce.incomplete
    dal = report.cell("cifar10/dal", "local acc")
    assert dal.n == 2
    assert dal.incomplete
    assert dal.mean == pytest.approx(84.0)
    assert dal.paper == paper_values.TABLE6[("cifar10", "dal", "local")]["acc"]
    assert dal.diff == pytest.approx(84.0 - dal.paper[0])
    empty = report.cell("cifar10/gce", "global ASR")
    assert empty is None or (empty.n == 0 and empty.mean is None)
    assert any("fewer than 3" in n for n in report.notes)


def test_markdown_and_latex_carry_every_value() -> None:
    report = build_report("table6", "small", RUNS)
    md = to_markdown(report)
    assert "98.00±1.63" in md
    assert "84.00±1.00*(2/3)" in md
    line = next(x for x in md.splitlines() if x.startswith("| cifar10/ce"))
    assert line.count("|") == len(report.columns) + 2
    tex = to_latex(report)
    assert r"98.00$\pm$1.63" in tex
    assert tex.strip().endswith(r"\end{tabular}")


def test_csv_and_json_parse_back() -> None:
    report = build_report("table6", "small", RUNS)
    rows = read_csv(to_csv(report))
    assert len(rows) == len(report.rows) * len(report.columns)
    ce = next(r for r in rows if r["row"] == "cifar10/ce" and r["column"] == "local ASR")
    assert float(ce["mean"]) == pytest.approx(98.0)
    assert ce["n"] == "3"
    data = json.loads(to_json(report))
    cell = next(c for c in data["cells"] if c["row"] == "cifar10/dal" and
                c["column"] == "local acc")
    assert cell["values"] == pytest.approx([85.0, 83.0])
    assert cell["expected_n"] == 3
    assert export(report, "json") == to_json(report)


def read_csv(text: str) -> list[dict[str, str]]:
    """As ``pandas.read_csv(comment="#")`` would: comment lines dropped."""
    body = [line for line in text.splitlines() if not line.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(body))))


def test_csv_carries_notes_warning_asr_true_and_robust_accuracy() -> None:
    base = {"dataset": "fashion-mnist", "precision": "fp32"}
    finals = [{"clean_acc": 0.9, "asr": 0.9, "asr_true": 0.8, "robust_acc": 0.1,
               "num_clean": 9900, "num_noisy": 0, "num_poisoned": 100},
              {"clean_acc": 0.9, "asr": 0.7, "asr_true": 0.6, "robust_acc": 0.3,
               "num_clean": 9900, "num_noisy": 0, "num_poisoned": 100}]
    runs = [RunRow(str(s), {"dataset": "cifar10", "loss": "ce", "trigger": "local", "seed": s},
                   "finished", finals[s], [], {**base, "precision": ("fp32", "bf16")[s]})
            for s in (0, 1)]
    report = build_report("table6", "small", runs)
    text = to_csv(report)
    comments = [line for line in text.splitlines() if line.startswith("# ")]
    assert any("WARNING" in line and "precision" in line for line in comments)
    assert comments[0].startswith("# Table 6")
    assert "100 poisoned images (1.0% of 10,000)" in text
    rows = read_csv(text)
    asr = next(r for r in rows if r["row"] == "cifar10/ce" and r["column"] == "local ASR")
    assert float(asr["asr_true_mean"]) == pytest.approx(70.0)
    assert float(asr["asr_true_std"]) == pytest.approx(10.0)
    assert asr["asr_true_n"] == "2"
    assert float(asr["robust_acc_mean"]) == pytest.approx(20.0)
    assert asr["robust_acc_n"] == "2"
    acc = next(r for r in rows if r["row"] == "cifar10/ce" and r["column"] == "local acc")
    assert acc["asr_true_mean"] == ""
    assert float(acc["mean"]) == pytest.approx(90.0)
    cell = next(c for c in json.loads(to_json(report))["cells"] if c["column"] == "local ASR")
    assert cell["robust_acc_mean"] == pytest.approx(20.0)


def test_title_states_the_poison_count_and_rate_used() -> None:
    final = {"clean_acc": 0.9, "asr": 0.9, "num_clean": 400, "num_noisy": 0,
             "num_poisoned": 100}
    runs = [RunRow("a", {"dataset": "cifar10", "loss": "ce", "trigger": "local", "seed": 0},
                   "finished", final, [], {})]
    title = build_report("table6", "small", runs).title
    assert "100 poisoned images (20.0% of 500)" in title
    assert build_report("table6", "small", RUNS).title == paper_values.SOURCE["table6"]


def test_noise_csv_has_no_backdoor_columns() -> None:
    runs = [RunRow("a", {"dataset": "cifar10", "loss": "dal", "noise": "symmetric-0.2",
                         "seed": 0}, "finished", {"clean_acc": 0.9})]
    header = next(line for line in to_csv(build_report("table2", "small", runs)).splitlines()
                  if not line.startswith("#"))
    assert header == "row,column,mean,std,n,expected_n,paper_mean,paper_std,diff"


def test_noise_table_layout() -> None:
    runs = [RunRow("a", {"dataset": "cifar10", "loss": "dal", "noise": "symmetric-0.2",
                         "seed": 0}, "finished", {"clean_acc": 0.9})]
    report = build_report("table2", "small", runs)
    cell = report.cell("dal", "symmetric-0.2")
    assert cell.mean == pytest.approx(90.0)
    assert cell.paper == paper_values.TABLE2[("dal", "symmetric-0.2")]


def test_plots_are_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from dal_backdoor.plots import plot_report

    paths = plot_report("table6", RUNS, tmp_path, formats=("png",))
    names = sorted(p.name for p in paths)
    assert "table6_dal_schedule.png" in names
    assert "table6_cifar10_local_curves.png" in names
    assert all(p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_cells_that_pool_different_settings_are_flagged() -> None:
    assert mixed_settings(RUNS) == {}
    assert not any("WARNING" in n for n in build_report("table6", "small", RUNS).notes)
    base = {"dataset": "fashion-mnist", "epochs": 8, "precision": "fp32", "device": "cpu"}
    runs = [
        RunRow("a", {"dataset": "cifar10", "loss": "ce", "trigger": "local", "seed": 0},
               "finished", {"clean_acc": 0.9, "asr": 0.9}, [], {**base, "seed": 0}),
        RunRow("b", {"dataset": "cifar10", "loss": "ce", "trigger": "local", "seed": 1},
               "finished", {"clean_acc": 0.9, "asr": 0.9}, [],
               {**base, "seed": 1, "precision": "bf16", "device": "cuda"}),
        # another cell may differ freely (here: epochs), only same-cell seeds are compared
        RunRow("c", {"dataset": "cifar10", "loss": "dal", "trigger": "local", "seed": 0},
               "finished", {"clean_acc": 0.8, "asr": 0.0}, [], {**base, "epochs": 2}),
    ]
    assert mixed_settings(runs) == {"precision": ['"bf16"', '"fp32"']}
    notes = build_report("table6", "small", runs).notes
    assert any(n.startswith("WARNING") and "precision" in n for n in notes)


def test_runs_of_an_earlier_cell_definition_are_left_out(tmp_path: Path) -> None:
    # table6's "global" column ran the grating (trigger "global") before it ran "weng": a store
    # may hold both, tagged with the same cell; only the current definition's runs count.
    from dal_backdoor.report import load_runs
    from dal_backdoor.store import ResultsStore

    def run(run_id: str, trigger: str, seed: int, asr: float) -> tuple[str, dict, dict]:
        cell = {"dataset": "cifar10", "loss": "ce", "trigger": "global", "seed": seed}
        config = {"dataset": "fashion-mnist", "loss": "ce", "trigger": trigger, "seed": seed}
        return run_id, cell, {"config": config, "final": {"clean_acc": 0.9, "asr": asr}}

    stored = [run("0000aaaa0000aaaa", "global", 0, 0.10),
              run("0000bbbb0000bbbb", "weng", 0, 0.80),
              run("0000cccc0000cccc", "weng", 1, 0.60),
              run("0000dddd0000dddd", "global", 1, 0.20)]
    with ResultsStore(tmp_path / "r.db") as store:
        for run_id, cell, data in stored:
            store.start_run(run_id, data["config"], {})
            store.finish_run(run_id, data["final"])
            store.tag_run(run_id, "table6", "ci", cell)
        runs = load_runs(store, "table6", "ci")
    assert len(runs) == 4
    kept, left_out = current_runs("table6", runs)
    assert [r.run_id for r in kept] == ["0000bbbb0000bbbb", "0000cccc0000cccc"]
    assert [r.run_id for r in left_out] == ["0000aaaa0000aaaa", "0000dddd0000dddd"]
    report = build_report("table6", "ci", runs)
    cell = report.cell("cifar10/ce", "global ASR")
    assert cell.values == (80.0, 60.0)
    assert cell.mean == pytest.approx(70.0)
    assert ("2 stored run(s) tagged with this grid were left out: they ran an earlier "
            "definition of their cell (trigger global -> weng).") in report.notes
    assert not any("WARNING" in n for n in report.notes)  # nothing mixed
    # runs without a stored trigger (or of the unchanged local column) are kept
    assert current_runs("table6", RUNS) == (RUNS, [])


def _noise_runs(tmp_path: Path, overrides: dict | None = None) -> list[RunRow]:
    from dal_backdoor.experiments import expand, parse_only

    specs = expand("table2-small", "small", data_root=str(tmp_path), device="cpu",
                   only=parse_only("loss=ce|dal,noise=clean,seed=0"),
                   overrides=overrides).specs
    return [RunRow(s.config.run_id, s.cell, "finished", {"clean_acc": 0.8}, [],
                   s.config.to_dict()) for s in specs]


def test_runs_off_the_presets_settings_are_named_in_a_note(tmp_path: Path) -> None:
    from dal_backdoor.report import preset_deviations

    at_preset = _noise_runs(tmp_path)
    assert preset_deviations("table2-small", "small", at_preset) == {}
    assert not any("not at the settings" in n
                   for n in build_report("table2-small", "small", at_preset).notes)
    longer = _noise_runs(tmp_path, {"epochs": 14, "lr": 0.1})
    assert preset_deviations("table2-small", "small", longer) == {
        "epochs": (["14"], "8"), "lr": (["0.1"], "0.05")}
    note = next(n for n in build_report("table2-small", "small", longer).notes
                if "not at the settings" in n)
    assert note.endswith("epochs 14 (preset: 8); lr 0.1 (preset: 0.05).")
    # a machine setting (device, data root) is not a deviation
    moved = [RunRow(r.run_id, r.cell, r.status, r.final, [], {**r.config, "device": "cuda"})
             for r in at_preset]
    assert preset_deviations("table2-small", "small", moved) == {}


@pytest.mark.parametrize("preset", ["ci", "small", "paper"])
def test_runs_at_their_cells_config_have_no_deviation(tmp_path: Path, preset: str) -> None:
    from dal_backdoor.experiments import expand, list_grids
    from dal_backdoor.report import preset_deviations

    for grid in list_grids():
        specs = expand(grid, preset, data_root=str(tmp_path), device="cpu", seeds=(0,)).specs
        runs = [RunRow(s.config.run_id, s.cell, "finished", {}, [], s.config.to_dict())
                for s in specs]
        if preset == "paper":  # the CPU presets skip CIFAR-100 (table3) without its files
            assert runs, grid
        assert preset_deviations(grid, preset, runs) == {}, grid


def test_any_setting_off_the_cells_config_is_a_deviation(tmp_path: Path, module: str) -> None:
    """Not only the preset's own settings: the grid's fixed ones (num_poison) and single
    options of a mapping setting (a trigger's or loss's) are named, the latter option by
    option; a user model is named once, without its recorded code hash."""
    from dal_backdoor.experiments import expand, parse_only
    from dal_backdoor.report import preset_deviations

    def runs(overrides: dict) -> list[RunRow]:
        specs = expand("table6", "small", data_root=str(tmp_path), device="cpu",
                       only=parse_only("loss=gce,seed=0|1"), overrides=overrides).specs
        return [RunRow(s.config.run_id, s.cell, "finished", {"clean_acc": 0.8}, [],
                       s.config.to_dict()) for s in specs]

    assert preset_deviations("table6", "small", runs({})) == {}
    changed = runs({"num_poison": 20, "loss_params.q": 0.5})
    assert preset_deviations("table6", "small", changed) == {
        "loss_params.q": (["0.5"], "0.9"), "num_poison": (["20"], "100")}
    weng = [r for r in runs({}) if r.config["trigger"] == "weng"]
    fainter = [RunRow(r.run_id, r.cell, r.status, r.final, [],
                      {**r.config, "trigger_params": {"amplitude": 0.125}}) for r in weng]
    assert preset_deviations("table6", "small", fainter) == {
        "trigger_params.amplitude": (["0.125"], "default")}
    own = runs({"model": f"{module}:build"})
    assert preset_deviations("table6", "small", own) == {
        "model": ([f"{module}:build"], "resnet18")}
    note = next(n for n in build_report("table6", "small", changed).notes
                if "not at the settings" in n)
    assert note.endswith("loss_params.q 0.5 (preset: 0.9); num_poison 20 (preset: 100).")
