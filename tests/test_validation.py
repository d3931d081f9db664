from __future__ import annotations

import math

import pytest

from dal_backdoor.errors import ConfigError
from dal_backdoor.validation import check_choice, check_number


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
