"""Boundary checks with messages that say what is allowed (scikit-learn style)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from dal_backdoor.errors import ConfigError


def _fmt_interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
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
        raise ConfigError(f"{name}={value:g} is not in {interval}")
    return int(value) if integer else float(value)


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise ConfigError listing them."""
    allowed = list(allowed)
    if value not in allowed:
        shown = ", ".join(str(a) for a in allowed)
        raise ConfigError(f"unknown {name} {value!r}; allowed: {shown}")
    return value
