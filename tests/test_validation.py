from __future__ import annotations

import math

import pytest

from dal_backdoor.errors import ConfigError
from dal_backdoor.validation import (
    MAX_COUNT,
    check_bool,
    check_choice,
    check_finite,
    check_number,
)


def test_check_number_accepts_inside_and_bounds() -> None:
    assert check_number("q", 0.5, low=0, low_open=True) == 0.5
    assert check_number("rate", 0.0, low=0, high=1, high_open=True) == 0.0
    assert check_number("n", 3, low=1, integer=True) == 3
    assert isinstance(check_number("n", 3.0, low=1, integer=True), int)


@pytest.mark.parametrize(
    ("kwargs", "value", "message"),
    [
        ({"low": 0, "low_open": True}, 0, "q=0 is not in (0, inf)"),
        ({"low": 0, "high": 1, "high_open": True}, 1.0, "q=1 is not in [0, 1)"),
        ({"low": 1, "integer": True}, 2.5, "q=2.5 is not an integer"),
        ({"low": 0}, math.nan, "q=nan is not finite"),
        ({"low": 0}, "abc", "q='abc' is not a number"),
        ({"low": 0}, True, "q=True is not a number"),
    ],
)
def test_check_number_messages(kwargs: dict, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_number("q", value, **kwargs)
    assert message in str(info.value)


def test_check_choice() -> None:
    assert check_choice("loss", "ce", ["ce", "gce"]) == "ce"
    with pytest.raises(ConfigError, match="unknown loss 'foo'; allowed: ce, gce"):
        check_choice("loss", "foo", ["ce", "gce"])


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), (False, False), (1, True), (0, False), ("true", True), ("False", False),
    ("YES", True), ("no", False), ("1", True), ("0", False), (" yes ", True)])
def test_check_bool_accepts_only_booleans(value: object, expected: bool) -> None:
    assert check_bool("exclude_true", value) is expected


@pytest.mark.parametrize("value", ["maybe", "", "on", 2, -1, 0.5, None, "nope"])
def test_check_bool_refuses_anything_else(value: object) -> None:
    with pytest.raises(ConfigError, match=r"exclude_true=.* is not a boolean; allowed: true, "
                                          "false"):
        check_bool("exclude_true", value)


def test_check_finite() -> None:
    assert check_finite("a", 1.5) == 1.5
    assert check_finite("a", "text") == "text"
    zero = check_finite("a", -0.0)
    assert zero == 0.0
    assert math.copysign(1.0, zero) == 1.0
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ConfigError, match="is not a finite number"):
            check_finite("amplitude", bad)


def test_out_of_range_integers_are_shown_in_full() -> None:
    with pytest.raises(ConfigError, match=r"^width=100000000000000000000 is not in \[1, "
                                          r"4096\]$"):
        check_number("width", 10**20, low=1, high=4096, integer=True)
    with pytest.raises(ConfigError, match=r"^epochs=0 is not in \[1, 1000000000\]$"):
        check_number("epochs", 0, low=1, high=MAX_COUNT, integer=True)
    with pytest.raises(ConfigError, match=r"^q=1.5 is not in \(0, 1\]$"):
        check_number("q", 1.5, low=0, high=1, low_open=True)
