"""Boundary checks with messages that say what is allowed (scikit-learn style)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from dal_backdoor.errors import ConfigError


def _fmt(x: float) -> str:
    """A bound as text: whole numbers below 1e15 in full (1000000000, not 1e+09), others %g."""
    if math.isfinite(x) and float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:g}"


def _fmt_interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    lo = "-inf" if low is None else _fmt(low)
    hi = "inf" if high is None else _fmt(high)
    return f"{left}{lo}, {hi}{right}"


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> float:
    """Return ``value`` if it is a finite number inside the interval, else raise ConfigError.

    ``low_open``/``high_open`` make the corresponding bound exclusive. The message names the
    parameter, its value and the allowed interval, e.g. ``q=0 is not in (0, inf)``.
    """
    interval = _fmt_interval(low, high, low_open, high_open)
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} is not {kind}; allowed: {interval}")
    if not isinstance(value, (int, float)):
        try:
            value = float(value) if not integer else int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}={value!r} is not {kind}; allowed: {interval}") from None
    if integer and int(value) != value:
        raise ConfigError(f"{name}={value!r} is not an integer; allowed: integers in {interval}")
    if not math.isfinite(float(value)):
        raise ConfigError(f"{name}={value!r} is not finite; allowed: {interval}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        shown = str(value) if isinstance(value, int) else _fmt(value)  # as given, in full
        raise ConfigError(f"{name}={shown} is not in {interval}")
    return int(value) if integer else float(value)


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise ConfigError listing them."""
    allowed = list(allowed)
    if value not in allowed:
        shown = ", ".join(str(a) for a in allowed)
        raise ConfigError(f"unknown {name} {value!r}; allowed: {shown}")
    return value


#: Upper bound of integer options that size something (epochs, widths, subsets, batch sizes):
#: far above any real run, low enough that no allocation or C integer overflows first.
MAX_COUNT = 10**9
#: Upper bound of seeds (torch generators take 64-bit seeds).
MAX_SEED = 2**63 - 1

_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool: True/False, 1/0 or the words true/false/yes/no/1/0 (any case);
    anything else (e.g. ``maybe``, 2, 0.5) raises ConfigError."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{name}={value!r} is not a boolean; allowed: true, false (or yes, no, "
                      "1, 0)")


def check_finite(name: str, value: Any) -> Any:
    """``value`` unchanged unless it is a float NaN or infinity (ConfigError); -0.0 -> 0.0."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{name}={value!r} is not a finite number; allowed: finite "
                              "numbers")
        if value == 0.0:
            return 0.0
    return value
