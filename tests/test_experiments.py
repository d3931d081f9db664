from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from dal_backdoor.errors import ConfigError
from dal_backdoor.experiments import cells_without, check_specs, expand, get_grid, parse_only


def test_grid_sizes_match_the_paper() -> None:
    assert get_grid("table6").size == 2 * 3 * 2 * 3
    assert get_grid("table2").size == 13 * 8 * 3
    assert get_grid("table3").size == 13 * 8 * 3


def test_paper_preset_expands_every_cell_with_table1_params() -> None:
    exp = expand("table6", "paper", device="cpu")
    assert len(exp.specs) == 36
    assert not exp.skipped
    assert len({s.run_id for s in exp.specs}) == 36
    c100_dal = next(s for s in exp.specs
                    if s.cell == {"dataset": "cifar100", "loss": "dal", "trigger": "local",
                                  "seed": 1})
    cfg = c100_dal.config
    assert (cfg.dataset, cfg.epochs, cfg.width, cfg.lr, cfg.augment) == ("cifar100", 150, 64,
                                                                         0.01, True)
    assert cfg.loss_params["q_start"] == 0.6
    assert cfg.num_poison == 100
    assert cfg.target_class == 7
    gce10 = next(s for s in exp.specs if s.cell["loss"] == "gce" and s.cell["dataset"] ==
                 "cifar10")
    assert gce10.config.loss_params == {"q": 0.9}
    assert len(cells_without(exp.specs, "seed")) == 12


def test_run_ids_are_stable_across_expansions_and_roots(tmp_path: Path) -> None:
    a = [s.run_id for s in expand("table2", "paper", device="cpu").specs]
    b = [s.run_id for s in expand("table2", "paper", device="cpu",
                                  data_root=str(tmp_path)).specs]
    assert a == b
    assert len(set(a)) == 312


def test_noise_cells_become_noise_fields() -> None:
    exp = expand("table2", "paper", device="cpu",
                 only=parse_only("loss=dal,noise=asymmetric-0.4,seed=0"))
    (spec,) = exp.specs
    assert (spec.config.noise_kind, spec.config.noise_rate) == ("asymmetric", 0.4)
    assert spec.config.trigger == "none"


def test_small_and_ci_presets_substitute_fashion_mnist_without_cifar(tmp_path: Path) -> None:
    exp = expand("table6", "small", data_root=str(tmp_path), device="cpu")
    assert len(exp.specs) == 18
    assert len(exp.skipped) == 18  # CIFAR-100 row needs CIFAR-100
    cfg = exp.specs[0].config
    assert cfg.dataset == "fashion-mnist"
    assert cfg.train_subset == 10_000
    # hyper-parameters still come from the paper's CIFAR-10 column
    dal = next(s for s in exp.specs if s.cell["loss"] == "dal")
    assert dal.config.loss_params["q_start"] == 0.8
    ci = expand("table6", "ci", data_root=str(tmp_path), device="cpu")
    assert all(s.config.dataset == "fashion-mnist" for s in ci.specs)


def test_overrides_change_run_ids() -> None:
    base = expand("table6", "ci", device="cpu", only=parse_only("loss=ce,seed=0")).specs
    quick = expand("table6", "ci", device="cpu", only=parse_only("loss=ce,seed=0"),
                   overrides={"epochs": 1}).specs
    assert [s.config.epochs for s in quick] == [1, 1]
    assert {s.run_id for s in base}.isdisjoint({s.run_id for s in quick})


@pytest.mark.parametrize(("only", "match"), [
    ("loss=focal", "loss=focal is not in table6; allowed: ce, gce, dal"),
    ("noise=sym", "'noise' is not an axis of table6"),
    ("loss", "not key=value"),
])
def test_bad_only_is_a_clear_error(only: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        expand("table6", "paper", device="cpu", only=parse_only(only))


# -- paper fidelity: fp32, the authors' label files --------------------------------------------

@pytest.mark.parametrize("grid", ["table6", "table2"])
def test_paper_preset_pins_fp32(grid: str) -> None:
    specs = expand(grid, "paper", device="cpu").specs
    assert len(specs) in (36, 312)
    assert {s.config.precision for s in specs} == {"fp32"}


def test_paper_preset_stays_fp32_where_auto_would_pick_bf16(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    from dal_backdoor import accel

    # what ``auto`` resolves to on a CUDA GPU with native bf16
    monkeypatch.setattr(accel, "auto_precision", lambda _device: "bf16")
    only = parse_only("dataset=cifar10,loss=ce,trigger=local,seed=0")
    (paper,) = expand("table6", "paper", device="cpu", only=only).specs
    assert paper.config.precision == "fp32"
    (small,) = expand("table6", "small", device="cpu", only=only).specs
    assert small.config.precision == "bf16"  # a preset without a pin follows auto
    (explicit,) = expand("table6", "paper", device="cpu", only=only,
                         overrides={"precision": "bf16"}).specs  # explicit choice: honoured
    assert explicit.config.precision == "bf16"


def _put_label_file(root: Path, kind: str, name: str, values: np.ndarray) -> Path:
    path = root / "dal-labels" / kind / name
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, values)
    return path


def test_paper_preset_uses_the_authors_labels_when_present(tmp_path: Path) -> None:
    labels = np.arange(50_000, dtype=np.int64) % 10
    path = _put_label_file(tmp_path / "a", "symmetric", "cifar10_40.npy", labels)
    only = parse_only("loss=dal,noise=symmetric-0.4|symmetric-0.2")
    specs = expand("table2", "paper", device="cpu", data_root=str(tmp_path / "a"),
                   only=only).specs
    assert len(specs) == 6
    from_file = [s for s in specs if s.cell["noise"] == "symmetric-0.4"]
    drawn = [s for s in specs if s.cell["noise"] == "symmetric-0.2"]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    for spec in from_file:
        assert (spec.config.noise_kind, spec.config.noise_rate) == ("file", 0.4)
        assert spec.config.noise_params == {"labels_path": str(path), "labels_sha256": digest}
    for spec in drawn:
        assert (spec.config.noise_kind, spec.config.noise_params) == ("symmetric", {})
        assert spec.config.noise_seed == 0  # one draw shared by the three seeds
    # the same file elsewhere: same run ids (a label file is identified by its content)
    _put_label_file(tmp_path / "b", "symmetric", "cifar10_40.npy", labels)
    again = expand("table2", "paper", device="cpu", data_root=str(tmp_path / "b"),
                   only=only).specs
    assert [s.run_id for s in again] == [s.run_id for s in specs]
    moved = next(s for s in again if s.cell["noise"] == "symmetric-0.4")
    assert moved.config.noise_params["labels_path"] != str(path)
    # other content: other run ids; no file: drawn noise
    _put_label_file(tmp_path / "b", "symmetric", "cifar10_40.npy", labels[::-1].copy())
    changed = expand("table2", "paper", device="cpu", data_root=str(tmp_path / "b"),
                     only=parse_only("loss=dal,noise=symmetric-0.4,seed=0")).specs
    assert changed[0].run_id not in {s.run_id for s in specs}
    bare = expand("table2", "paper", device="cpu", data_root=str(tmp_path / "none"),
                  only=parse_only("loss=dal,noise=symmetric-0.4,seed=0")).specs
    assert bare[0].config.noise_kind == "symmetric"


def test_small_preset_draws_noise_even_with_the_authors_labels(tmp_path: Path) -> None:
    _put_label_file(tmp_path, "symmetric", "cifar10_40.npy", np.zeros(50_000, dtype=np.int64))
    specs = expand("table2", "small", device="cpu", data_root=str(tmp_path),
                   only=parse_only("loss=dal,noise=symmetric-0.4,seed=0")).specs
    assert specs[0].config.noise_kind == "symmetric"  # Fashion-MNIST: no authors' file


def test_report_says_which_noise_source_each_column_used(tmp_path: Path) -> None:
    from dal_backdoor.report import RunRow, build_report

    path = _put_label_file(tmp_path, "symmetric", "cifar10_40.npy",
                           np.arange(50_000, dtype=np.int64) % 10)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    specs = expand("table2", "paper", device="cpu", data_root=str(tmp_path),
                   only=parse_only("loss=dal,noise=symmetric-0.4|symmetric-0.2")).specs
    runs = [RunRow(s.run_id, s.cell, "finished", {"clean_acc": 0.8}, [], s.config.to_dict())
            for s in specs]
    notes = build_report("table2", "paper", runs).notes
    (note,) = [n for n in notes if n.startswith("noise source:")]
    assert note == ("noise source: symmetric-0.2: drawn with noise seed 0; symmetric-0.4: "
                    f"label file cifar10_40.npy (sha256 {digest[:12]})")


def test_sweep_set_accepts_the_new_fields() -> None:
    only = parse_only("loss=dal,trigger=local,seed=0")
    (spec,) = expand("table6", "ci", device="cpu", only=only,
                     overrides={"init": "torchvision", "noise_seed": 4}).specs
    assert (spec.config.init, spec.config.noise_seed) == ("torchvision", 4)
    (default,) = expand("table6", "ci", device="cpu", only=only).specs
    assert (default.config.init, default.config.noise_seed) == ("pytorch", 0)
    with pytest.raises(ConfigError, match=r"unknown init 'he'; allowed: pytorch, torchvision"):
        expand("table6", "ci", device="cpu", only=only, overrides={"init": "he"})


def test_set_one_option_of_a_mapping_field(tmp_path: Path) -> None:
    only = parse_only("loss=gce,trigger=global,seed=0")
    (base,) = expand("table6", "small", data_root=str(tmp_path), device="cpu", only=only).specs
    (spec,) = expand("table6", "small", data_root=str(tmp_path), device="cpu", only=only,
                     overrides={"trigger_params.amplitude": 0.125,
                                "loss_params.q": 0.5}).specs
    # the trigger's defaults are not recorded; the option set is
    assert (base.config.trigger_params, spec.config.trigger_params) == ({}, {"amplitude": 0.125})
    # the loss option replaces its Table 1 value (GCE on CIFAR-10: q = 0.9)
    assert base.config.loss_params == {"q": 0.9}
    assert spec.config.loss_params == {**base.config.loss_params, "q": 0.5}
    assert spec.run_id != base.run_id
    # the same settings as an --axis on the built-in grid: the same run (one run id)
    from dal_backdoor.grid_file import expand_user_grid, grid_from_axes

    user = grid_from_axes("table6", {"trigger_params.amplitude": (0.125,),
                                     "loss_params.q": (0.5,)})
    (same,) = expand_user_grid(user, "small", data_root=str(tmp_path), device="cpu",
                               only=parse_only("loss=gce,trigger=weng,seed=0")).specs
    assert same.run_id == spec.run_id


@pytest.mark.parametrize(("overrides", "match"), [
    ({"trigger_params": 3}, r"--set trigger_params=3: trigger_params is a mapping of options; "
                            r"set one option as trigger_params.NAME=VALUE"),
    ({"loss_params": 3}, r"as loss_params.NAME=VALUE \(e.g. --set loss_params.q=0.5\)"),
    ({"width.size": 3}, r"--set width.size: not a run setting; allowed with a dot: "
                        r"dataset_params.NAME, loss_params.NAME, model_params.NAME"),
    ({"trigger_params.a.b": 3}, r"--set trigger_params.a.b: not a run setting"),
    ({"trigger_params.size": [3]}, r"is not a single value"),
    ({"colour": 3}, r"--set colour: unknown run setting; allowed: .*width, dataset_params.NAME"),
    ({"loss_params.qq": 0.5}, r"loss gce: unknown hyper-parameter 'qq'; allowed: q"),
])
def test_set_of_a_mapping_field_is_a_clear_error(overrides: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        expand("table6", "ci", device="cpu", only=parse_only("loss=gce,trigger=local,seed=0"),
               overrides=overrides)


def test_set_trigger_option_on_both_triggers_names_the_trigger_without_it() -> None:
    specs = expand("table6", "ci", device="cpu", only=parse_only("loss=ce,seed=0"),
                   overrides={"trigger_params.amplitude": 0.1}).specs
    with pytest.raises(ConfigError, match=r"local trigger has no parameter 'amplitude'; "
                                          r"allowed: size, margin, top, left, pattern"):
        check_specs(specs)


def test_table6_global_column_runs_the_weng_trigger() -> None:
    specs = expand("table6", "paper", device="cpu", only=parse_only("loss=ce,seed=0")).specs
    by_column = {(s.cell["dataset"], s.cell["trigger"]): s.config.trigger for s in specs}
    assert by_column == {("cifar10", "local"): "local", ("cifar10", "global"): "weng",
                         ("cifar100", "local"): "local", ("cifar100", "global"): "weng"}
    grid = get_grid("table6")
    assert grid.run_fields({"dataset": "cifar10", "loss": "gce", "trigger": "global",
                            "seed": 2}) == {"loss": "gce", "seed": 2, "trigger": "weng"}
    # a run of the legacy trigger name keeps its own (older) run id: it is another experiment
    legacy = specs[1].config.replace(trigger="global")
    assert specs[1].cell["trigger"] == "global"
    assert legacy.run_id != specs[1].run_id


def test_attacks_grid_is_losses_by_attacks_by_seeds(tmp_path: Path) -> None:
    grid = get_grid("attacks")
    assert grid.size == 6 * 7 * 3
    exp = expand("attacks", "small", data_root=str(tmp_path), device="cpu")
    assert len(exp.specs) == 126
    assert not exp.skipped
    assert len({s.run_id for s in exp.specs}) == 126
    by_attack = {s.cell["attack"]: s.config for s in exp.specs
                 if s.cell["loss"] == "ce" and s.cell["seed"] == 0}
    assert {a: c.trigger for a, c in by_attack.items()} == {
        "badnets": "local", "badnets-random": "badnets-random", "weng": "weng",
        "grating": "grating", "blended": "blended", "sig": "sig", "wanet": "wanet"}
    assert {a: c.cross_ratio for a, c in by_attack.items() if c.cross_ratio} == {"wanet": 2.0}
    assert all((c.num_poison, c.target_class, c.dataset, c.train_subset, c.epochs,
                c.test_subset, c.width) == (100, 7, "fashion-mnist", 10_000, 5, 1_000, 8)
               for c in by_attack.values())
    # the badnets and weng columns are the dose grid's 100-poison cells: the same runs, shared
    # by both grids in one store (table6 small trains 18 epochs, so its runs are others)
    dose = expand("dose", "small", data_root=str(tmp_path), device="cpu",
                  only=parse_only("loss=ce,num_poison=100,seed=0")).specs
    assert {s.cell["trigger"]: s.run_id for s in dose} == {
        "local": by_attack["badnets"].run_id, "global": by_attack["weng"].run_id}
    table6 = expand("table6", "small", data_root=str(tmp_path), device="cpu",
                    only=parse_only("loss=ce,trigger=local,seed=0")).specs
    assert table6[0].config.epochs == 18
    assert by_attack["badnets"].run_id != table6[0].run_id
    paper = expand("attacks", "paper", device="cpu", only=parse_only("loss=dal,attack=sig"))
    assert [s.config.dataset for s in paper.specs] == ["cifar10"] * 3
    again = expand("attacks", "small", data_root=str(tmp_path), device="cpu")
    assert [s.run_id for s in again.specs] == [s.run_id for s in exp.specs]


def test_dose_grid_scales_the_budget_to_the_preset(tmp_path: Path) -> None:
    assert get_grid("dose").size == 3 * 2 * 7 * 3
    small = expand("dose", "small", data_root=str(tmp_path), device="cpu")
    assert len(small.specs) == 126
    assert len({s.run_id for s in small.specs}) == 126
    counts = {s.cell["num_poison"]: s.config.num_poison for s in small.specs}
    assert counts == {b: b for b in (10, 25, 50, 100, 200, 400, 800)}  # 10,000 images
    paper = expand("dose", "paper", device="cpu", only=parse_only("loss=ce,seed=0"))
    counts = {(s.cell["trigger"], s.cell["num_poison"]): (s.config.trigger, s.config.num_poison)
              for s in paper.specs}
    assert counts[("local", 10)] == ("local", 50)
    assert counts[("global", 800)] == ("weng", 4000)
    assert {(s.config.epochs, s.config.test_subset) for s in small.specs} == {(5, 1_000)}
    # the 100-poison global cell is the attacks grid's weng cell
    attacks = expand("attacks", "small", data_root=str(tmp_path), device="cpu",
                     only=parse_only("loss=gce,attack=weng,seed=1")).specs
    (same,) = [s for s in small.specs if s.cell == {"dataset": "cifar10", "loss": "gce",
                                                     "trigger": "global", "num_poison": 100,
                                                     "seed": 1}]
    assert same.run_id == attacks[0].run_id


def test_scaled_budget_never_rounds_to_zero() -> None:
    from dal_backdoor.experiments import scaled_budget

    assert scaled_budget(10, {"dataset": "synthetic", "train_subset": 500}) == 1  # 0.5
    assert scaled_budget(25, {"dataset": "cifar10", "train_subset": None}) == 125
    assert scaled_budget(800, {"dataset": "fashion-mnist"}) == 4800
    with pytest.raises(ConfigError, match="a num_poison axis needs the training-set size of "
                                          "synthetic; set train_subset"):
        scaled_budget(10, {"dataset": "synthetic"})


def test_new_grid_axes_own_their_fields() -> None:
    with pytest.raises(ConfigError, match="--set num_poison=5: num_poison is set by the "
                                          "'num_poison' axis of grid dose"):
        expand("dose", "ci", device="cpu", overrides={"num_poison": 5})
    with pytest.raises(ConfigError, match="--set cross_ratio=1: cross_ratio is set by the "
                                          "'attack' axis of grid attacks"):
        expand("attacks", "ci", device="cpu", overrides={"cross_ratio": 1})
    with pytest.raises(ConfigError, match="cross_ratio=1 needs a trigger with a noise mode, "
                                          "not local; allowed: wanet"):
        expand("table6", "ci", device="cpu", overrides={"cross_ratio": 1})


@pytest.mark.parametrize(("grid", "only", "runs"), [
    ("attacks", "loss=ce,attack=sig|wanet,seed=0", 2),
    ("dose", "loss=dal,trigger=global,num_poison=10|800,seed=1", 2),
    ("table2-small", "loss=ce|dal,noise=clean|symmetric-0.8,seed=0", 4),
])
def test_new_grids_dry_run_through_the_sweep(tmp_path: Path, grid: str, only: str,
                                             runs: int) -> None:
    from click.testing import CliRunner

    from dal_backdoor.cli import cli

    args = ["sweep", grid, "--preset", "ci", "--only", only, "--set", "dataset=synthetic",
            "--set", "train_subset=2000", "--set", "test_subset=100", "--device", "cpu",
            "--db", str(tmp_path / "r.db"), "--dry-run"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"{grid} / ci: {runs} runs" in result.output
    specs = expand(grid, "ci", device="cpu", only=parse_only(only),
                   overrides={"dataset": "synthetic", "train_subset": 2000,
                              "test_subset": 100}).specs
    assert all(s.run_id[:12] in result.output for s in specs)
    if grid == "dose":  # 10 and 800 per 10,000 on 2,000 images
        assert [s.config.num_poison for s in specs] == [2, 160]
    assert not (tmp_path / "r.db").exists()


def test_table2_small_grid_is_six_losses_by_five_noise_settings(tmp_path: Path) -> None:
    grid = get_grid("table2-small")
    assert grid.kind == "noise"
    assert grid.size == 6 * 5 * 3
    specs = expand("table2-small", "small", device="cpu", data_root=str(tmp_path)).specs
    assert len(specs) == 90
    by_noise = {s.cell["noise"]: (s.config.noise_kind, s.config.noise_rate) for s in specs}
    assert by_noise == {"clean": ("none", 0.0), "symmetric-0.4": ("symmetric", 0.4),
                        "symmetric-0.8": ("symmetric", 0.8),
                        "asymmetric-0.4": ("asymmetric", 0.4),
                        "instance-0.4": ("instance", 0.4)}
    # the grid's own CPU scale replaces the small preset's epochs and test subset
    table6 = expand("table6", "small", device="cpu", data_root=str(tmp_path)).specs[0].config
    for spec in specs:
        assert spec.config.dataset == "fashion-mnist"
        assert (spec.config.epochs, spec.config.test_subset, spec.config.train_subset) == (
            8, 1_000, 7_000)
        assert (spec.config.width, spec.config.lr, spec.config.augment) == (
            table6.width, table6.lr, table6.augment)
    # the paper preset is the paper's recipe; a clean cell never reads a label file
    paper = expand("table2-small", "paper", device="cpu", data_root=str(tmp_path),
                   only=parse_only("noise=clean,loss=dal,seed=0")).specs
    assert [(s.config.epochs, s.config.noise_kind) for s in paper] == [(150, "none")]
