"""create_loss / list_losses / loss_info: round trips for every name, schedules, clear errors."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch

from dal_backdoor.errors import ConfigError
from dal_backdoor.losses import LossModule, create_loss, list_losses, loss_info
from dal_backdoor.losses import functional as F
from dal_backdoor.schedules import DALSchedule

ORDER = ["ce", "mae", "gce", "rce", "sce", "nce", "nce_rce", "agce", "nce_agce", "tce", "js",
         "poly1", "btl", "ce_sr", "nlnl", "dgce", "dal"]
SCHEDULED = {"ce_sr", "dgce", "dal"}


def data(k: int = 5, b: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(b, k, generator=gen), torch.randint(0, k, (b,), generator=gen)


def roundtrip_state(module: LossModule) -> dict:
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_list_losses_in_the_papers_order() -> None:
    assert list_losses() == ORDER


@pytest.mark.parametrize("name", ORDER)
def test_round_trip_every_loss(name: str) -> None:
    loss = create_loss(name, 5, total_epochs=10, seed=1)
    assert loss.name == name
    logits, targets = data()
    logits.requires_grad_(True)
    value = loss(logits, targets)
    assert value.shape == ()
    assert torch.isfinite(value)
    value.backward()
    assert torch.all(torch.isfinite(logits.grad))

    json.dumps(loss.hparams)  # JSON-serialisable
    again = create_loss(name, 5, total_epochs=10, seed=1, **loss.hparams)
    assert again.hparams == loss.hparams

    loss.set_epoch(7)
    values = loss.current_values()
    assert bool(values) == (name in SCHEDULED)
    restored = create_loss(name, 5, total_epochs=10, seed=1)
    restored.load_state_dict(roundtrip_state(loss))
    assert restored.epoch == 7
    assert restored.current_values() == values
    assert restored(logits, targets).item() == loss(logits, targets).item()


def test_static_losses_ignore_the_epoch() -> None:
    loss = create_loss("gce", 5, q=0.7)
    logits, targets = data()
    before = loss(logits, targets).item()
    loss.set_epoch(99)
    assert loss(logits, targets).item() == before
    assert loss.current_values() == {}


def test_defaults_are_the_table1_cifar10_values() -> None:
    assert create_loss("gce", 10).hparams == {"q": 0.9}
    assert create_loss("agce", 10).hparams == {"a": 1.0, "q": 2.0}
    assert create_loss("dal", 10, total_epochs=5).hparams == {
        "q_start": 0.8, "q_end": 1.5, "lambda_end": 1.0, "convention": "paper",
        "bootstrap": "max"}


def test_dal_module_follows_its_schedule() -> None:
    loss = create_loss("dal", 5, total_epochs=10, q_start=0.5, q_end=1.5, lambda_end=2.0)
    schedule = DALSchedule(0.5, 1.5, 2.0, 10)
    logits, targets = data()
    assert loss.current_values() == {"q": pytest.approx(0.6), "lam": 0.0}  # t = 1 by default
    for t in (1, 5, 6, 10):
        loss.set_epoch(t)
        q, lam = schedule.q(t), schedule.lam(t)
        assert loss.current_values() == {"q": q, "lam": lam}
        expected = F.dal(logits, targets, q, lam).item()
        assert loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)
    assert loss.current_values() == {"q": 1.5, "lam": 2.0}
    entropy = create_loss("dal", 5, total_epochs=10, bootstrap="entropy")
    entropy.set_epoch(10)
    assert entropy(logits, targets).item() == pytest.approx(
        F.dal(logits, targets, 1.5, 1.0, "entropy").item(), rel=1e-6)


def test_dgce_is_gce_with_the_q_schedule() -> None:
    loss = create_loss("dgce", 5, total_epochs=4, q_start=0.6, q_end=1.4, convention="reference")
    logits, targets = data()
    loss.set_epoch(3)  # reference convention: i = 2, q = 0.6 + 0.8 * 2 / 4
    assert loss.current_values() == {"q": pytest.approx(1.0)}
    assert loss(logits, targets).item() == pytest.approx(F.gce(logits, targets, 1.0).item())


def test_ce_sr_lambda_grows_by_rho_every_r_epochs() -> None:
    loss = create_loss("ce_sr", 5, lam=2.0, rho=1.1, r=2, tau=0.5, p=0.1)
    logits, targets = data()
    assert loss.current_values() == {"lam": 2.0}
    loss.set_epoch(5)  # floor(4 / 2) = 2 multiplications
    assert loss.current_values()["lam"] == pytest.approx(2.0 * 1.1**2)
    expected = F.ce_sr(logits, targets, 0.5, 2.0 * 1.1**2, 0.1).item()
    assert loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)


def test_forward_checks_the_number_of_classes() -> None:
    with pytest.raises(ValueError, match="built for 5 classes"):
        create_loss("ce", 5)(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("gce", {"q": 0}, "loss gce: q=0 is not in (0, inf)"),
        ("gce", {"q": -1.5}, "q=-1.5 is not in (0, inf)"),
        ("gce", {"foo": 1}, "loss gce: unknown hyper-parameter 'foo'; allowed: q"),
        ("ce", {"q": 1}, "unknown hyper-parameter 'q'; allowed: (none)"),
        ("js", {"pi": 1.0}, "pi=1 is not in (0, 1)"),
        ("js", {"pi": 0}, "pi=0 is not in (0, 1)"),
        ("tce", {"t": 0}, "t=0 is not in [1, 1000]"),
        ("tce", {"t": 2.5}, "t=2.5 is not an integer"),
        ("ce_sr", {"tau": 0}, "tau=0 is not in (0, inf)"),
        ("ce_sr", {"p": 1.5}, "p=1.5 is not in (0, 1]"),
        ("nlnl", {"num_negatives": 0}, "num_negatives=0 is not in [1, 1000]"),
        ("btl", {"t2": 0.5}, "t2=0.5 is not in [1, inf)"),
        ("btl", {"t1": 1.5}, "t1=1.5 is not in [0, 1]"),
        ("sce", {"alpha": -1}, "alpha=-1 is not in [0, inf)"),
        ("agce", {"a": 0}, "a=0 is not in (0, inf)"),
        ("poly1", {"epsilon": -2}, "epsilon=-2 is not in [-1, inf)"),
        ("dal", {"q_start": 0}, "loss dal: q_start=0 is not in (0, inf)"),
        ("dal", {"q_start": 0.9, "q_end": 0.5}, "q_end=0.5 is not in [q_start, inf)"),
        ("dal", {"lambda_end": -1}, "lambda_end=-1 is not in [0, inf)"),
        ("dal", {"convention": "foo"}, "unknown convention 'foo'; allowed: paper, reference"),
        ("dal", {"bootstrap": "mean"}, "unknown bootstrap 'mean'; allowed: max, entropy"),
        ("dgce", {"lambda_end": 1.0}, "unknown hyper-parameter 'lambda_end'"),
        ("gce", {"q": "abc"}, "q='abc' is not a number"),
    ],
)
def test_bad_hyper_parameters_name_param_and_value(name: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        create_loss(name, 10, total_epochs=10, **kwargs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_other_creation_errors() -> None:
    with pytest.raises(ConfigError, match="unknown loss 'foo'; allowed: ce, mae"):
        create_loss("foo", 10)
    with pytest.raises(ConfigError, match="loss dal needs total_epochs"):
        create_loss("dal", 10)
    with pytest.raises(ConfigError, match="loss dgce needs total_epochs"):
        create_loss("dgce", 10)
    with pytest.raises(ConfigError, match=r"num_classes=1 is not in \[2, inf\)"):
        create_loss("ce", 1)
    with pytest.raises(ConfigError, match=r"total_epochs=0 is not in \[1, inf\)"):
        create_loss("dal", 10, total_epochs=0)


def test_set_epoch_validation() -> None:
    with pytest.raises(ConfigError, match=r"epoch t=0 is not in \[1, inf\)"):
        create_loss("ce", 10).set_epoch(0)
    dal = create_loss("dal", 10, total_epochs=10)
    with pytest.raises(ConfigError, match=r"epoch t=11 is not in \[1, 10\]"):
        dal.set_epoch(11)
    assert dal.epoch == 1
    assert dal.current_values()["q"] == pytest.approx(0.87)  # unchanged


def test_loss_info_describes_every_parameter() -> None:
    for name in list_losses():
        info = loss_info(name)
        assert info.name == name
        assert info.formula
        assert info.reference
        for spec in info.params:
            assert spec.meaning
            assert spec.validate(spec.default) == spec.default
    specs = {p.name: p for p in loss_info("dal").params}
    assert specs["q_start"].allowed() == "(0, inf)"
    assert specs["convention"].allowed() == "paper|reference"
    assert {p.name: p.allowed() for p in loss_info("tce").params} == {"t": "integers in [1, 1000]"}
    assert math.isfinite(create_loss("btl", 3).hparams["t2"])
