"""Parsing of trigger parameter values shared by several triggers (no trigger lives here)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from dal_backdoor.errors import ConfigError
from dal_backdoor.validation import check_number


def parse_fraction(label: str, value: Any, *, low: float = 0.0, high: float = 1.0,
                   low_open: bool = True) -> float:
    """A number, or a fraction written as text (``"64/255"``), in ``(low, high]``.

    ``label`` names the parameter in the one-line error, e.g. ``"weng trigger amplitude"``.
    """
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
    if isinstance(value, str) and "/" in value:
        try:
            value = float(Fraction(value.strip()))
        except (ValueError, ZeroDivisionError):
            raise ConfigError(f"{label}={value!r} is not a number or a fraction like 64/255; "
                              f"allowed: {interval}") from None
    return float(check_number(label, value, low=low, high=high, low_open=low_open))
