"""User grids through the CLI: sweep --grid-file / --axis, table of a user grid, --compare."""

from __future__ import annotations

from pathlib import Path

import pytest

from dal_backdoor.report import fmt_mean_std
from dal_backdoor.store import ResultsStore
from tests.helpers import TABLE_CELL, invoke, make_table_store

TINY_GRID = """
name = "tiny-loss-x-poisons"
preset = "ci"
seeds = [0]

[fixed]
dataset = "synthetic"
dataset_params = { image_size = 16, num_samples = 200 }
train_subset = "none"
test_subset = "none"
width = 2
epochs = 1
trigger = "local"

[axes]
loss = ["ce", "dal"]
num_poison = [5, 20]
"""


def finals(db: Path, grid: str, preset: str) -> dict[tuple[str, int], dict]:
    with ResultsStore(db, readonly=True) as store:
        out = {}
        for run_id, cell in store.tagged_runs(grid, preset):
            record = store.get_run(run_id)
            assert record.status == "finished"
            out[(cell["loss"], cell["num_poison"])] = record.final_metrics
    return out


def pct(value: float | None) -> str:
    return "-" if value is None else fmt_mean_std(100.0 * value, 0.0)


@pytest.mark.slow
def test_user_grid_over_num_poison_and_loss_runs_end_to_end(tmp_path: Path) -> None:
    """Issue 18's done-when: a user-defined grid over num_poison and loss is swept, skipped
    when finished, reported (values = the stored runs') and plotted."""
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text(TINY_GRID)
    db = tmp_path / "r.db"
    result = invoke("sweep", "--grid-file", str(grid_file), "--db", str(db), "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "tiny-loss-x-poisons/ci: 0 already finished, 4 run now, 0 failed" in result.output
    stored = finals(db, "tiny-loss-x-poisons", "ci")
    assert sorted(stored) == [("ce", 5), ("ce", 20), ("dal", 5), ("dal", 20)]
    assert {f["num_poisoned"] for f in stored.values()} == {5, 20}

    again = invoke("sweep", "--grid-file", str(grid_file), "--db", str(db), "--device", "cpu")
    assert again.exit_code == 0, again.output
    assert "4 already finished, 0 run now" in again.output

    table = invoke("table", "--grid-file", str(grid_file), "--db", str(db), "--format", "md",
                   "--plot", str(tmp_path / "plots"))
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[2] == ("| loss | num_poison=5 acc | num_poison=5 ASR | num_poison=20 acc | "
                        "num_poison=20 ASR |")
    for i, loss in enumerate(("ce", "dal")):
        cells = [pct(stored[(loss, n)][m]) for n in (5, 20) for m in ("clean_acc", "asr")]
        assert lines[4 + i] == f"| {loss} | " + " | ".join(cells) + " |"
    assert "- poisons: 5 poisoned images (2.5% of 200) / 20 poisoned images (10.0% of 200)." \
        in lines
    plot = tmp_path / "plots" / "tiny-loss-x-poisons_clean_acc_asr_vs_num_poison.png"
    if not any(stored[k]["asr"] is not None for k in stored):  # nothing to draw for ASR
        plot = tmp_path / "plots" / "tiny-loss-x-poisons_clean_acc_vs_num_poison.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {plot}" in table.output.replace("\n", "")

    by_name = invoke("table", "tiny-loss-x-poisons", "--preset", "ci", "--db", str(db),
                     "--format", "csv", "--rows", "num_poison", "--metric", "clean_acc")
    assert by_name.exit_code == 0, by_name.output
    rows = [line for line in by_name.output.splitlines() if not line.startswith("#")]
    assert rows[1].startswith(f"5,loss=ce acc,{100.0 * stored[('ce', 5)]['clean_acc']},0.0,1,1")


def test_sweep_axis_dry_run_lists_the_product_and_writes_nothing(tmp_path: Path) -> None:
    result = invoke("sweep", "custom", "--axis", "loss=ce,sce,dal", "--axis",
                    "poison_rate=0.01,0.02", "--set", "trigger=local", "--seeds", "0",
                    "--preset", "ci", "--db", str(tmp_path / "r.db"), "--dry-run",
                    env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "custom / ci: 6 runs" in result.output
    assert result.output.count("poison_rate=0.02") == 3
    assert list(tmp_path.iterdir()) == []


def _store(path: Path, grid: str, preset: str, values: dict[tuple[str, int], float],
           epochs: int = 2) -> Path:
    with ResultsStore(path) as store:
        for (loss, seed), acc in values.items():
            run_id = f"{grid}{preset}{loss}{seed}{epochs}"
            store.tag_run(run_id, grid, preset, {"loss": loss, "seed": seed})
            store.start_run(run_id, {"dataset": "fashion-mnist", "loss": loss,
                                     "trigger": "none", "seed": seed, "epochs": epochs}, {})
            store.finish_run(run_id, {"clean_acc": acc})
    return path


def test_table_of_a_user_grid_by_name_and_compare_two_stores(tmp_path: Path) -> None:
    a = _store(tmp_path / "a.db", "mine", "small", {("ce", 0): 0.80, ("ce", 1): 0.82,
                                                     ("gce", 0): 0.70})
    b = _store(tmp_path / "b.db", "mine", "small", {("ce", 0): 0.90, ("ce", 1): 0.94},
               epochs=4)
    one = invoke("table", "mine", "--db", str(a), "--format", "md")
    assert one.exit_code == 0, one.output
    assert "| loss | acc |" in one.output
    assert "| ce | 81.00±1.00 |" in one.output
    assert "| gce | 70.00±0.00*(1/2) |" in one.output
    both = invoke("table", "mine", "--db", str(a), "--compare", str(b), "--format", "md")
    assert both.exit_code == 0, both.output
    assert "| row | acc A | acc B | acc Δ |" in both.output
    assert "| ce | 81.00±1.00 | 92.00±2.00 | +11.00 |" in both.output
    assert "| gce | 70.00±0.00*(1/2) | - | - |" in both.output
    assert f"A = {a}; B = {b}" in both.output
    assert "settings that differ between A and B: epochs: 2 vs 4;" in both.output
    rich = invoke("table", "mine", "--db", str(a), "--compare", str(b))
    assert rich.exit_code == 0, rich.output
    assert "+11.00" in rich.output


def test_compare_two_presets_of_a_builtin_grid(tmp_path: Path) -> None:
    db = make_table_store(tmp_path / "r.db")  # table6/ci: clean acc 50%, ASR 25%
    with ResultsStore(db) as store:
        store.tag_run("r1", "table6", "small", TABLE_CELL)
        store.start_run("r1", {"dataset": "fashion-mnist", "loss": "ce", "trigger": "local",
                               "seed": 0, "epochs": 8}, {})
        store.finish_run("r1", {"clean_acc": 0.75, "asr": 0.5})
    result = invoke("table", "table6", "--preset", "ci", "--db", str(db), "--compare-preset",
                    "small", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if not line.startswith("#")]
    assert "cifar10/ce,local acc,50.0,0.0,1,75.0,0.0,1,25.0" in rows
    assert "cifar10/ce,local ASR,25.0,0.0,1,50.0,0.0,1,25.0" in rows
    assert "# A = ci; B = small; Δ = B - A (mean of B minus mean of A)." in result.output


@pytest.mark.parametrize("fmt", ["md", "csv", "json", "latex"])
def test_user_grid_table_formats(tmp_path: Path, fmt: str) -> None:
    db = _store(tmp_path / "a.db", "mine", "small", {("ce", 0): 0.80})
    result = invoke("table", "mine", "--db", str(db), "--format", fmt)
    assert result.exit_code == 0, result.output
    assert "80.0" in result.output
