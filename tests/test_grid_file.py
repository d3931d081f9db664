"""User grids: grid files (TOML), --axis grids, their checks and their expansion into runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from dal_backdoor.errors import ConfigError
from dal_backdoor.experiments import expand, parse_only
from dal_backdoor.grid_file import (
    UserGrid,
    builtin_as_user_grid,
    expand_user_grid,
    grid_from_axes,
    load_grid_file,
    noise_fields,
    with_axes,
)
from tests.helpers import REPO

GRID_TOML = """
name = "loss-x-poisons"
description = "CE vs DAL by poison count"
preset = "ci"
seeds = "0-1"

[fixed]
dataset = "synthetic"
train_subset = 400
test_subset = 100
trigger = "local"
trigger_params.size = 2
width = 2

[axes]
loss = ["ce", "dal"]
num_poison = [5, 20]

[table]
rows = "num_poison"
columns = "loss"
metrics = ["asr"]
"""


def write(tmp_path: Path, text: str, name: str = "grid.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_grid_file_is_read_with_flat_keys_seeds_and_layout(tmp_path: Path) -> None:
    grid = load_grid_file(write(tmp_path, GRID_TOML))
    assert grid.name == "loss-x-poisons"
    assert grid.preset == "ci"
    assert grid.seeds == (0, 1)
    assert grid.axes == {"loss": ("ce", "dal"), "num_poison": (5, 20)}
    assert grid.fixed == {"dataset": "synthetic", "train_subset": 400, "test_subset": 100,
                          "trigger": "local", "trigger_params.size": 2, "width": 2}
    assert (grid.rows, grid.columns, grid.metrics) == (("num_poison",), "loss", ("asr",))
    assert grid.size == 8
    assert grid.kind == "backdoor"
    assert [c for c in grid.cells()][:2] == [
        {"loss": "ce", "num_poison": 5, "seed": 0}, {"loss": "ce", "num_poison": 5, "seed": 1}]


def test_grid_file_expands_to_runs_over_the_preset(tmp_path: Path) -> None:
    grid = load_grid_file(write(tmp_path, GRID_TOML))
    specs = expand_user_grid(grid, "ci", device="cpu").specs
    assert len(specs) == 8
    assert {s.grid for s in specs} == {"loss-x-poisons"}
    assert {s.preset for s in specs} == {"ci"}
    first = specs[0].config
    # fixed settings override the preset's (ci: fashion-mnist, width 8, 10,000 images) ...
    assert (first.dataset, first.width, first.train_subset, first.test_subset) == (
        "synthetic", 2, 400, 100)
    # ... the rest is the preset's
    assert (first.epochs, first.lr, first.augment) == (6, 0.05, False)
    assert first.trigger_params == {"size": 2}
    # num_poison is a count, not the dose grid's per-10,000 budget
    assert [s.config.num_poison for s in specs] == [5, 5, 20, 20, 5, 5, 20, 20]
    assert [s.config.loss for s in specs] == ["ce"] * 4 + ["dal"] * 4
    assert [s.config.seed for s in specs] == [0, 1] * 4
    assert len({s.run_id for s in specs}) == 8
    # Table 1's CIFAR-10 column for DAL (q_start 0.8), whatever data set runs
    assert specs[-1].config.loss_params["q_start"] == pytest.approx(0.8)


def test_paper_dataset_picks_the_preset_row_and_table1_column() -> None:
    grid = grid_from_axes("custom", {"paper_dataset": ("cifar10", "cifar100")})
    expansion = expand_user_grid(grid, "ci", device="cpu", overrides={"loss": "dal"},
                                 seeds=(0,))
    assert [s.cell["paper_dataset"] for s in expansion.specs] == ["cifar10"]
    assert [c["paper_dataset"] for c, _ in expansion.skipped] == ["cifar100"]
    assert "preset ci has no setting for cifar100" in expansion.skipped[0][1]
    paper = expand_user_grid(grid, "paper", device="cpu", seeds=(0,), overrides={
        "loss": "dal", "dataset": "synthetic", "dataset_params.num_classes": 100})
    assert [s.config.loss_params["q_start"] for s in paper.specs] == [0.8, 0.6]
    assert [s.config.width for s in paper.specs] == [64, 64]


def test_set_overrides_fixed_settings_and_refuses_axes(tmp_path: Path) -> None:
    grid = load_grid_file(write(tmp_path, GRID_TOML))
    specs = expand_user_grid(grid, "ci", device="cpu", overrides={"width": 3, "epochs": 1},
                             only=parse_only("loss=dal,seed=1"), seeds=(1, 4)).specs
    assert [(s.cell, s.config.width, s.config.epochs) for s in specs] == [
        ({"loss": "dal", "num_poison": 5, "seed": 1}, 3, 1),
        ({"loss": "dal", "num_poison": 20, "seed": 1}, 3, 1)]
    with pytest.raises(ConfigError, match="'num_poison' axis"):
        expand_user_grid(grid, "ci", device="cpu", overrides={"poison_rate": 0.1})
    with pytest.raises(ConfigError, match="--only num_poison=7 is not in loss-x-poisons"):
        expand_user_grid(grid, "ci", device="cpu", only=parse_only("num_poison=7"))


def test_model_params_option_is_an_axis_of_a_user_model(module: str) -> None:
    grid = grid_from_axes("custom", {"model_params.hidden": (4, 6)})
    specs = expand_user_grid(grid, "ci", device="cpu", seeds=(0,),
                             overrides={"model": f"{module}:build", "trigger": "local"}).specs
    assert [s.config.model_params["hidden"] for s in specs] == [4, 6]
    assert specs[0].run_id != specs[1].run_id
    with pytest.raises(ConfigError, match="model resnet18 takes no model params; got hidden"):
        expand_user_grid(grid, "ci", device="cpu", seeds=(0,))


def test_pseudo_keys_set_their_run_fields() -> None:
    grid = grid_from_axes("custom", {"poison_rate": (0.01, 0.025), "noise": ("symmetric-0.4",
                                                                             "none")})
    assert grid.name == "custom"
    specs = expand_user_grid(grid, "small", device="cpu", overrides={"trigger": "local"},
                             seeds=(0,)).specs
    # small trains on 10,000 images: 1% = 100 poisons, 2.5% = 250
    assert [(s.config.num_poison, s.config.noise_kind, s.config.noise_rate) for s in specs] == [
        (100, "symmetric", 0.4), (100, "none", 0.0), (250, "symmetric", 0.4), (250, "none", 0.0)]
    attack = expand_user_grid(grid_from_axes("custom", {"attack": ("wanet", "sig")}), "small",
                              device="cpu", seeds=(0,)).specs
    assert [(s.config.trigger, s.config.cross_ratio) for s in attack] == [("wanet", 2.0),
                                                                          ("sig", 0.0)]
    hp = expand_user_grid(grid_from_axes("custom", {"loss_params.q": (0.5, 0.9)}), "small",
                          device="cpu", overrides={"loss": "gce"}, seeds=(0,)).specs
    assert [s.config.loss_params["q"] for s in hp] == [0.5, 0.9]
    assert noise_fields("asymmetric-0.2") == {"noise_kind": "asymmetric", "noise_rate": 0.2}


def test_axis_on_a_builtin_grid_keeps_its_run_ids() -> None:
    """--axis num_poison=50,100 on table6: the 100-poison cells are table6's runs (same ids),
    so a store that holds table6 skips them."""
    grid = grid_from_axes("table6", {"num_poison": (50, 100)})
    assert grid.name == "table6-custom"
    assert "num_poison" not in grid.fixed  # the axis replaces table6's fixed 100 poisons
    assert grid.axes["trigger"] == ("local", "weng")  # the triggers the columns run
    only = parse_only("loss=ce|dal,seed=0")
    ours = expand_user_grid(grid, "ci", device="cpu", only=only).specs
    builtin = expand("table6", "ci", device="cpu", only=only).specs
    hundred = [s.run_id for s in ours if s.cell["num_poison"] == 100]
    assert hundred == [s.run_id for s in builtin]
    assert len(hundred) == 4
    assert {s.config.num_poison for s in ours if s.cell["num_poison"] == 50} == {50}
    assert builtin_as_user_grid("table2").axes["noise"][0] == "symmetric-0.2"


def test_with_axes_replaces_what_an_axis_clashes_with() -> None:
    base = UserGrid("g", {"loss": ("ce",)}, {"num_poison": 100, "width": 4})
    grid = with_axes(base, {"poison_rate": (0.01,), "loss": ("dal", "gce")})
    assert grid.axes == {"loss": ("dal", "gce"), "poison_rate": (0.01,)}
    assert grid.fixed == {"width": 4}


BAD_FILES = [
    ("not TOML", "name = ", "is not valid TOML"),
    ("unknown top key", 'name = "g"\ncolour = 1\n[axes]\nloss = ["ce"]', "unknown key 'colour'"),
    ("no name", '[axes]\nloss = ["ce"]', "grid name None"),
    ("built-in name", 'name = "table6"\n[axes]\nloss = ["ce"]', "built-in grid's"),
    ("bad name", 'name = "a b"\n[axes]\nloss = ["ce"]', "grid name 'a b'"),
    ("no axes", 'name = "g"\n[fixed]\nwidth = 2', "at least one axis"),
    ("unknown setting", 'name = "g"\n[axes]\nlos = ["ce"]', "unknown run setting 'los'"),
    ("unknown loss", 'name = "g"\n[axes]\nloss = ["ce", "focal"]', "focal"),
    ("axis not a list", 'name = "g"\n[axes]\nloss = "ce"', "non-empty list"),
    ("empty axis", 'name = "g"\n[axes]\nloss = []', "non-empty list"),
    ("value twice", 'name = "g"\n[axes]\nwidth = [2, 2]', "given twice"),
    ("float for int", 'name = "g"\n[axes]\nwidth = [2.5]', "width=2.5 is not an integer"),
    ("text for int", 'name = "g"\n[axes]\nepochs = ["two"]', "epochs='two' is not an integer"),
    ("bool for number", 'name = "g"\n[axes]\nlr = [true]', "is not a number"),
    ("maybe boolean", 'name = "g"\n[axes]\naugment = ["maybe"]', "is not a boolean"),
    ("nan", 'name = "g"\n[axes]\nlr = [nan]', "not a finite number"),
    ("seed axis", 'name = "g"\n[axes]\nseed = [1, 2]', "seeds"),
    ("device fixed", 'name = "g"\n[fixed]\ndevice = "cpu"\n[axes]\nloss = ["ce"]', "--device"),
    ("whole mapping", 'name = "g"\n[axes]\ntrigger_params = [1]', "trigger_params.NAME"),
    ("nested non-mapping", 'name = "g"\n[fixed.width]\nx = 1\n[axes]\nloss = ["ce"]',
     "not a mapping setting"),
    ("bad dotted key", 'name = "g"\n[axes]\n"width.x" = [1]', "is not a setting"),
    ("axis and fixed", 'name = "g"\n[fixed]\nloss = "ce"\n[axes]\nloss = ["dal"]',
     "loss and loss set the same"),
    ("count and rate", 'name = "g"\n[fixed]\nnum_poison = 5\n[axes]\npoison_rate = [0.1]',
     "poison_rate and num_poison set the same"),
    ("rate out of range", 'name = "g"\n[axes]\npoison_rate = [1.5]', "poison_rate=1.5"),
    ("bad noise", 'name = "g"\n[axes]\nnoise = ["symmetric"]', "is not KIND-RATE"),
    ("unknown attack", 'name = "g"\n[axes]\nattack = ["trojan"]', "unknown attack 'trojan'"),
    ("paper dataset", 'name = "g"\n[axes]\npaper_dataset = ["mnist"]', "cifar10, cifar100"),
    ("unknown preset", 'name = "g"\npreset = "big"\n[axes]\nloss = ["ce"]', "unknown preset"),
    ("seeds twice", 'name = "g"\nseeds = [1, 1]\n[axes]\nloss = ["ce"]', "twice"),
    ("negative seed", 'name = "g"\nseeds = [-1]\n[axes]\nloss = ["ce"]', "seeds=-1"),
    ("seed range", 'name = "g"\nseeds = "3-1"\n[axes]\nloss = ["ce"]', "seeds"),
    ("layout not an axis", 'name = "g"\n[axes]\nloss = ["ce"]\n[table]\nrows = ["width"]',
     "not an axis of g"),
    ("unknown metric", 'name = "g"\n[axes]\nloss = ["ce"]\n[table]\nmetrics = ["f1"]',
     "unknown table metric 'f1'"),
    ("unknown layout key", 'name = "g"\n[axes]\nloss = ["ce"]\n[table]\nsort = 1',
     "unknown key table.sort"),
    ("too many runs", 'name = "g"\nseeds = "0-999"\n[axes]\nwidth = ' + str(list(range(1, 200))),
     "at most 100000"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BAD_FILES],
                         ids=[c[0] for c in BAD_FILES])
def test_bad_grid_file_is_one_config_error(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        expand_user_grid(load_grid_file(path), "ci", device="cpu")
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_the_readme_example_grid_file(tmp_path: Path) -> None:
    grid = load_grid_file(REPO / "examples" / "loss_x_poisons.toml")
    specs = expand_user_grid(grid, grid.preset, device="cpu", data_root=str(tmp_path)).specs
    assert [(s.config.loss, s.config.num_poison) for s in specs] == [
        ("ce", 20), ("ce", 100), ("dal", 20), ("dal", 100)]
    assert {(s.config.dataset, s.config.train_subset, s.config.test_subset, s.config.epochs,
             s.config.width, s.config.trigger) for s in specs} == {
        ("fashion-mnist", 2000, 2000, 2, 4, "local")}


def test_missing_or_unreadable_grid_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_grid_file(tmp_path / "none.toml")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_grid_file(tmp_path)
    (tmp_path / "latin1.toml").write_bytes(b'name = "caf\xe9"')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_grid_file(tmp_path / "latin1.toml")
