"""The paper's Table 1 as presets, for every loss that has an entry and both CIFAR columns."""

from __future__ import annotations

import pytest

from dal_backdoor.errors import ConfigError
from dal_backdoor.losses import COLUMNS, create_loss, list_losses, preset, preset_column

# Transcribed again, independently, from Table 1 of Li et al. (CIFAR-10 / CIFAR-100 columns).
EXPECTED = {
    "gce": ({"q": 0.9}, {"q": 0.7}),
    "sce": ({"alpha": 0.1, "beta": 10.0}, {"alpha": 6.0, "beta": 1.0}),
    "nlnl": ({"num_negatives": 1}, {"num_negatives": 110}),
    "btl": ({"t1": 0.7, "t2": 3.0}, {"t1": 0.7, "t2": 1.5}),
    "nce_rce": ({"alpha": 1.0, "beta": 0.1}, {"alpha": 10.0, "beta": 0.1}),
    "tce": ({"t": 3}, {"t": 18}),
    "nce_agce": ({"alpha": 1.0, "beta": 0.4, "a": 6.0, "q": 1.5},
                 {"alpha": 10.0, "beta": 0.1, "a": 3.0, "q": 3.0}),
    "ce_sr": ({"tau": 0.5, "lam": 1.5, "r": 1, "p": 0.1, "rho": 1.02},
              {"tau": 0.5, "lam": 8.0, "r": 1, "p": 0.01, "rho": 1.02}),
    "js": ({"pi": 0.9}, {"pi": 0.5}),
    "poly1": ({"epsilon": 10.0}, {"epsilon": 2.0}),
    "dal": ({"q_start": 0.8, "q_end": 1.5, "lambda_end": 1.0, "convention": "paper",
             "bootstrap": "max"},
            {"q_start": 0.6, "q_end": 1.5, "lambda_end": 1.0, "convention": "paper",
             "bootstrap": "max"}),
    "dgce": ({"q_start": 0.8, "q_end": 1.5, "convention": "paper"},
             {"q_start": 0.6, "q_end": 1.5, "convention": "paper"}),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_table1_columns(name: str) -> None:
    cifar10, cifar100 = EXPECTED[name]
    assert preset(name, "cifar10") == cifar10
    assert preset(name, "cifar100") == cifar100
    assert preset_column(name, "cifar100") == "cifar100"
    # integer hyper-parameters stay integers (they are JSON and run-id material)
    for key, value in preset(name, "cifar100").items():
        assert type(value) is type(cifar100[key])


def test_other_data_sets_use_the_cifar10_column() -> None:
    for dataset in ("fashion-mnist", "synthetic"):
        assert preset("dal", dataset) == EXPECTED["dal"][0]
        assert preset_column("dal", dataset) == "cifar10"
    # blank Table 1 cells (GCE on WebVision) fall back to CIFAR-10 as well
    assert preset("gce", "webvision") == {"q": 0.9}
    assert preset_column("gce", "webvision") == "cifar10"


def test_animal10n_and_webvision_columns() -> None:
    assert preset("sce", "Animal-10N") == {"alpha": 6.0, "beta": 1.0}
    assert preset("nce_rce", "webvision") == {"alpha": 50.0, "beta": 0.1}
    assert preset("nce_agce", "animal10n") == {"alpha": 0.0, "beta": 1.0, "a": 1e-5, "q": 0.7}
    assert preset("ce_sr", "webvision")["lam"] == 2.0
    assert preset("js", "webvision") == {"pi": 0.1}
    assert preset("dal", "webvision")["q_start"] == 0.4
    assert preset("dal", "animal10n")["q_start"] == 0.6


def test_losses_without_an_entry_get_their_defaults() -> None:
    for name in ("ce", "mae", "rce", "nce"):
        assert preset(name, "cifar100") == {}
        assert preset_column(name, "cifar100") is None
    assert preset("agce", "cifar100") == {"a": 1.0, "q": 2.0}


@pytest.mark.parametrize("dataset", COLUMNS)
def test_every_preset_builds_its_loss(dataset: str) -> None:
    for name in list_losses():
        loss = create_loss(name, 100, total_epochs=150, **preset(name, dataset))
        assert loss.hparams == preset(name, dataset)


def test_defaults_equal_the_cifar10_preset() -> None:
    for name in list_losses():
        assert create_loss(name, 10, total_epochs=3).hparams == preset(name, "cifar10")


def test_unknown_loss() -> None:
    with pytest.raises(ConfigError, match="unknown loss 'dall'"):
        preset("dall", "cifar10")
