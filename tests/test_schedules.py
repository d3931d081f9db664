"""DAL's q(t)/lambda(t) (Algorithm 1 and the authors' code) and CE+SR's lambda(t)."""

from __future__ import annotations

import pytest

from dal_backdoor.errors import ConfigError
from dal_backdoor.schedules import DALSchedule, SRLambdaSchedule


def test_paper_convention_at_1_t0_and_T() -> None:
    s = DALSchedule(q_start=0.5, q_end=1.5, lambda_end=1.0, total_epochs=10)
    assert s.t0 == 5.0  # (1 - 0.5) / (1.5 - 0.5) * 10
    assert s.q(1) == pytest.approx(0.6)
    assert s.q(5) == pytest.approx(1.0)
    assert s.q(10) == 1.5  # exactly q_end
    assert [s.lam(t) for t in (1, 4, 5)] == [0.0, 0.0, 0.0]
    assert s.lam(6) == pytest.approx(0.2)  # (6 - 5) / (10 - 5)
    assert s.lam(10) == 1.0  # exactly lambda_end
    assert s.values(6) == {"q": s.q(6), "lam": s.lam(6)}


def test_reference_convention_uses_epoch_index_t_minus_1() -> None:
    s = DALSchedule(0.5, 1.5, 2.0, 10, convention="reference")
    assert s.q(1) == 0.5  # i = 0
    assert s.q(10) == pytest.approx(1.4)  # i = 9
    assert s.lam(6) == 0.0  # i = 5 = t0
    assert s.lam(7) == pytest.approx(2.0 * 1 / 5)
    assert s.lam(10) == pytest.approx(2.0 * 4 / 5)


def test_paper_defaults_cifar10() -> None:
    s = DALSchedule(0.8, 1.5, 1.0, 150)
    assert s.t0 == pytest.approx(0.2 / 0.7 * 150)  # 42.857...
    assert s.lam(42) == 0.0
    assert s.lam(43) == pytest.approx((43 - s.t0) / (150 - s.t0))
    assert s.q(150) == 1.5
    assert s.lam(150) == 1.0
    # the bootstrap term is on exactly when q(t) > 1
    for t in range(1, 151):
        assert (s.lam(t) > 0) == (s.q(t) > 1)
    qs = [s.q(t) for t in range(1, 151)]
    lams = [s.lam(t) for t in range(1, 151)]
    assert qs == sorted(qs)
    assert lams == sorted(lams)


@pytest.mark.parametrize("convention", ["paper", "reference"])
def test_constant_q_below_one_never_bootstraps(convention: str) -> None:
    s = DALSchedule(0.7, 0.7, 1.0, 20, convention=convention)
    assert s.t0 == float("inf")
    assert all(s.q(t) == pytest.approx(0.7) and s.lam(t) == 0.0 for t in range(1, 21))


def test_constant_q_at_or_above_one_bootstraps_from_the_start() -> None:
    for q in (1.0, 1.2):
        paper = DALSchedule(q, q, 1.0, 20)
        assert paper.t0 == 0.0
        assert paper.lam(1) == pytest.approx(1 / 20)
        assert paper.lam(20) == 1.0
        reference = DALSchedule(q, q, 1.0, 20, convention="reference")
        assert reference.lam(1) == 0.0
        assert reference.lam(20) == pytest.approx(19 / 20)


@pytest.mark.parametrize("convention", ["paper", "reference"])
@pytest.mark.parametrize("q_end", [1.0, 0.9])
def test_q_end_at_most_one_keeps_lambda_zero(convention: str, q_end: float) -> None:
    # t0 == T (0/0 at t = T) and t0 > T (the authors' formula would turn positive there)
    s = DALSchedule(0.5, q_end, 1.0, 10, convention=convention)
    assert s.t0 >= 10
    assert [s.lam(t) for t in range(1, 11)] == [0.0] * 10


def test_q_start_at_least_one_bootstraps_from_the_first_epoch() -> None:
    s = DALSchedule(1.2, 1.5, 1.0, 30)
    assert s.t0 == pytest.approx(-20.0)
    assert s.lam(1) == pytest.approx((1 + 20) / (30 + 20))
    assert s.lam(30) == 1.0
    r = DALSchedule(1.2, 1.5, 1.0, 30, convention="reference")
    assert r.lam(1) == pytest.approx(20 / 50)


def test_single_epoch() -> None:
    assert DALSchedule(0.8, 1.5, 1.0, 1).values(1) == {"q": 1.5, "lam": 1.0}
    assert DALSchedule(0.8, 1.5, 1.0, 1, convention="reference").values(1) == {
        "q": 0.8, "lam": 0.0}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"q_start": 0.0}, "q_start=0 is not in (0, inf)"),
        ({"q_end": 0.5}, "q_end=0.5 is not in [q_start, inf) = [0.8, inf)"),
        ({"lambda_end": -0.1}, "lambda_end=-0.1 is not in [0, inf)"),
        ({"total_epochs": 0}, "total_epochs=0 is not in [1, inf)"),
        ({"total_epochs": 2.5}, "total_epochs=2.5 is not an integer"),
        ({"convention": "code"}, "unknown convention 'code'; allowed: paper, reference"),
    ],
)
def test_invalid_dal_schedules(kwargs: dict, message: str) -> None:
    args = {"q_start": 0.8, "q_end": 1.5, "lambda_end": 1.0, "total_epochs": 10, **kwargs}
    with pytest.raises(ConfigError) as info:
        DALSchedule(**args)
    assert message in str(info.value)


@pytest.mark.parametrize("convention", ["paper", "reference"])
def test_epochs_outside_1_to_T_are_rejected(convention: str) -> None:
    s = DALSchedule(0.8, 1.5, 1.0, 10, convention=convention)
    for t in (0, 11):
        with pytest.raises(ConfigError, match=rf"epoch t={t} is not in \[1, 10\]"):
            s.q(t)
        with pytest.raises(ConfigError, match=rf"epoch t={t} is not in \[1, 10\]"):
            s.lam(t)


def test_sr_lambda_schedule() -> None:
    s = SRLambdaSchedule(lam0=1.5, rho=1.02, r=1)
    assert s.lam(1) == 1.5
    assert s.lam(2) == pytest.approx(1.53)
    assert s.lam(150) == pytest.approx(1.5 * 1.02**149)
    every3 = SRLambdaSchedule(2.0, 2.0, r=3)
    assert [every3.lam(t) for t in range(1, 8)] == [2.0, 2.0, 2.0, 4.0, 4.0, 4.0, 8.0]


def test_sr_lambda_schedule_errors() -> None:
    with pytest.raises(ConfigError, match=r"rho=0 is not in \(0, inf\)"):
        SRLambdaSchedule(1.0, 0.0)
    with pytest.raises(ConfigError, match=r"r=0 is not in \[1, inf\)"):
        SRLambdaSchedule(1.0, 1.02, r=0)
    with pytest.raises(ConfigError, match=r"lam=-1 is not in \[0, inf\)"):
        SRLambdaSchedule(-1.0, 1.02)
    with pytest.raises(ConfigError, match=r"epoch t=0 is not in \[1, inf\)"):
        SRLambdaSchedule(1.0, 1.02).lam(0)
    with pytest.raises(ConfigError, match="overflow"):
        SRLambdaSchedule(1.0, 10.0).lam(400)
