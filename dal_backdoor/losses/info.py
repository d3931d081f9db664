"""What describes a loss without building it: hyper-parameter specs and ``LossInfo``.

Torch-free, so the CLI lists losses (``--help``, ``click.Choice``) without importing torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dal_backdoor.errors import ConfigError
from dal_backdoor.validation import _fmt_interval, check_choice, check_number


@dataclass(frozen=True)
class ParamSpec:
    """One hyper-parameter: its name, default, allowed values and a one-line meaning.

    ``kind`` is "float", "int" (numbers in the interval given by low/high and the open flags)
    or "choice" (one of ``choices``).
    """

    name: str
    default: Any
    meaning: str
    kind: str = "float"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()

    def allowed(self) -> str:
        """The allowed values as text, e.g. ``(0, inf)``, ``integers in [1, 1000]``, ``a|b``."""
        if self.kind == "choice":
            return "|".join(self.choices)
        interval = _fmt_interval(self.low, self.high, self.low_open, self.high_open)
        return f"integers in {interval}" if self.kind == "int" else interval

    def validate(self, value: Any) -> Any:
        """The value as int/float/str if allowed, else ConfigError naming the value and range."""
        if self.kind == "choice":
            return check_choice(self.name, value, self.choices)
        return check_number(
            self.name, value, low=self.low, high=self.high, low_open=self.low_open,
            high_open=self.high_open, integer=self.kind == "int",
        )


@dataclass(frozen=True)
class LossInfo:
    """How a loss is documented and configured.

    ``formula`` is one line of plain text; ``reference`` the paper it comes from;
    ``scheduled`` says whether ``set_epoch`` changes its values; ``needs_total_epochs`` whether
    ``create_loss`` requires ``total_epochs`` (the DAL/DGCE schedules need T).
    """

    name: str
    title: str
    formula: str
    reference: str
    params: tuple[ParamSpec, ...] = ()
    scheduled: bool = False
    needs_total_epochs: bool = False
    notes: str = ""
    param_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "param_names", tuple(p.name for p in self.params))

    def defaults(self) -> dict[str, Any]:
        """Every hyper-parameter at its default."""
        return {p.name: p.default for p in self.params}

    def resolve(self, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overridden by ``hparams``, each validated; ConfigError for unknown names."""
        for key in hparams:
            if key not in self.param_names:
                allowed = ", ".join(self.param_names) or "(none)"
                raise ConfigError(f"unknown hyper-parameter {key!r}; allowed: {allowed}")
        merged = {**self.defaults(), **hparams}
        return {p.name: p.validate(merged[p.name]) for p in self.params}
