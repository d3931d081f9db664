from __future__ import annotations

from pathlib import Path

import pytest

from dal_backdoor.errors import ConfigError
from dal_backdoor.experiments import cells_without, expand, get_grid, parse_only


def test_grid_sizes_match_the_paper() -> None:
    assert get_grid("table6").size == 2 * 3 * 2 * 3
    assert get_grid("table2").size == 13 * 8 * 3
    assert get_grid("table3").size == 13 * 8 * 3


def test_paper_preset_expands_every_cell_with_table1_params() -> None:
    exp = expand("table6", "paper", device="cpu")
    assert len(exp.specs) == 36 and not exp.skipped
    assert len({s.run_id for s in exp.specs}) == 36
    c100_dal = next(s for s in exp.specs
                    if s.cell == {"dataset": "cifar100", "loss": "dal", "trigger": "local",
                                  "seed": 1})
    cfg = c100_dal.config
    assert (cfg.dataset, cfg.epochs, cfg.width, cfg.lr, cfg.augment) == ("cifar100", 150, 64,
                                                                         0.01, True)
    assert cfg.loss_params["q_start"] == 0.6 and cfg.num_poison == 100 and cfg.target_class == 7
    gce10 = next(s for s in exp.specs if s.cell["loss"] == "gce" and s.cell["dataset"] ==
                 "cifar10")
    assert gce10.config.loss_params == {"q": 0.9}
    assert len(cells_without(exp.specs, "seed")) == 12


def test_run_ids_are_stable_across_expansions_and_roots(tmp_path: Path) -> None:
    a = [s.run_id for s in expand("table2", "paper", device="cpu").specs]
    b = [s.run_id for s in expand("table2", "paper", device="cpu",
                                  data_root=str(tmp_path)).specs]
    assert a == b and len(set(a)) == 312


def test_noise_cells_become_noise_fields() -> None:
    exp = expand("table2", "paper", device="cpu",
                 only=parse_only("loss=dal,noise=asymmetric-0.4,seed=0"))
    (spec,) = exp.specs
    assert (spec.config.noise_kind, spec.config.noise_rate) == ("asymmetric", 0.4)
    assert spec.config.trigger == "none"


def test_small_and_ci_presets_substitute_fashion_mnist_without_cifar(tmp_path: Path) -> None:
    exp = expand("table6", "small", data_root=str(tmp_path), device="cpu")
    assert len(exp.specs) == 18 and len(exp.skipped) == 18  # CIFAR-100 row needs CIFAR-100
    cfg = exp.specs[0].config
    assert cfg.dataset == "fashion-mnist" and cfg.train_subset == 10_000
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
    assert specs[1].cell["trigger"] == "global" and legacy.run_id != specs[1].run_id
