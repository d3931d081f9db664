"""What every loss module shares: hyper-parameter specs, the module contract and the registry.

A loss is registered with ``@register_loss(LossInfo(...))`` on a factory
``factory(num_classes, hparams, *, total_epochs, seed) -> LossModule``; the ``LossInfo``
describes its formula and hyper-parameters (name, default, allowed range, meaning) and is what
validates user input, fills defaults and feeds the ``dal-backdoor losses`` table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from dal_backdoor.errors import ConfigError
from dal_backdoor.registry import Registry
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


class LossModule(nn.Module):
    """Base class: ``forward(logits, targets) -> scalar`` batch mean, plus the epoch contract.

    * ``set_epoch(t)``: t is the paper's 1-based epoch index t = 1..T, called by the trainer
      before each epoch; a no-op for static losses (it only records t). Before any call the
      module behaves as at t = 1.
    * ``hparams``: the resolved hyper-parameters (JSON-serialisable; ``create_loss(name, K,
      **module.hparams)`` rebuilds the same loss).
    * ``current_values()``: the scheduled values right now ({} for static losses).
    * The epoch (and any other resumable state) travels in ``state_dict()`` as extra state of
      plain Python values and tensors, readable by ``torch.load(weights_only=True)``.
    """

    def __init__(self, name: str, num_classes: int, hparams: Mapping[str, Any]) -> None:
        super().__init__()
        self.name = name
        self.num_classes = int(num_classes)
        self.hparams: dict[str, Any] = dict(hparams)
        self.epoch = 1

    # -- epoch contract -----------------------------------------------------------------------
    def set_epoch(self, t: int) -> None:
        """Move to the paper's 1-based epoch t (validated: an integer >= 1)."""
        self.epoch = check_number("epoch t", t, low=1, integer=True)

    def current_values(self) -> dict[str, float]:
        """The scheduled hyper-parameter values at the current epoch ({} when static)."""
        return {}

    # -- forward ------------------------------------------------------------------------------
    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        if logits.dim() != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(
                f"loss {self.name} was built for {self.num_classes} classes; "
                f"got logits of shape {tuple(logits.shape)}"
            )
        return self.compute(logits, targets)

    def compute(self, logits: Tensor, targets: Tensor) -> Tensor:
        """The batch-mean loss; subclasses implement it."""
        raise NotImplementedError

    # -- checkpoint state ---------------------------------------------------------------------
    def get_extra_state(self) -> dict[str, Any]:
        return {"epoch": int(self.epoch)}

    def set_extra_state(self, state: Any) -> None:
        self.set_epoch(int(state["epoch"]))

    def extra_repr(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.hparams.items())
        return f"name={self.name}, num_classes={self.num_classes}" + (f", {shown}" if shown
                                                                        else "")


class FunctionalLoss(LossModule):
    """A static loss: ``fn(logits, targets, **hparams)`` from ``losses.functional``."""

    def __init__(
        self,
        name: str,
        num_classes: int,
        hparams: Mapping[str, Any],
        fn: Callable[..., Tensor],
        fixed: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name, num_classes, hparams)
        self._fn = fn
        self._kwargs = {**self.hparams, **(fixed or {})}

    def compute(self, logits: Tensor, targets: Tensor) -> Tensor:
        return self._fn(logits, targets, **self._kwargs)


Factory = Callable[..., LossModule]

LOSSES: Registry[LossModule] = Registry("loss")
_INFOS: dict[str, LossInfo] = {}


def register_loss(info: LossInfo) -> Callable[[Factory], Factory]:
    """Register a factory ``(num_classes, hparams, *, total_epochs, seed) -> LossModule``."""

    def decorator(factory: Factory) -> Factory:
        LOSSES.register(info.name)(factory)
        _INFOS[info.name] = info
        return factory

    return decorator


def list_losses() -> list[str]:
    """Every registered loss name, in the paper's order (static baselines, then DGCE, DAL)."""
    return LOSSES.names()


def loss_info(name: str) -> LossInfo:
    """The description of loss ``name`` (ConfigError listing the names if unknown)."""
    check_choice("loss", name, LOSSES.names())
    return _INFOS[name]


def create_loss(
    name: str,
    num_classes: int,
    *,
    total_epochs: int | None = None,
    seed: int = 0,
    **hparams: Any,
) -> LossModule:
    """Build loss ``name`` for ``num_classes`` classes as an ``nn.Module``.

    Missing hyper-parameters take their defaults (``loss_info(name)``; for the Table 1 losses
    these are the paper's CIFAR-10 values, see ``presets.preset``). ``total_epochs`` (T) is
    required by the scheduled DAL/DGCE and ignored by the others; ``seed`` seeds NLNL's
    complementary-label generator and is ignored by the others. Every problem raises a
    ConfigError naming the loss, the parameter, its value and what is allowed.
    """
    info = loss_info(name)
    num_classes = check_number("num_classes", num_classes, low=2, integer=True)
    seed = check_number("seed", seed, low=0, high=2**64 - 1, integer=True)
    if info.needs_total_epochs:
        if total_epochs is None:
            raise ConfigError(
                f"loss {name} needs total_epochs (the number of training epochs T) for its "
                "schedule; allowed: integers in [1, inf)"
            )
        total_epochs = check_number("total_epochs", total_epochs, low=1, integer=True)
    try:
        resolved = info.resolve(hparams)
        return LOSSES.create(name, num_classes, resolved, total_epochs=total_epochs, seed=seed)
    except ConfigError as exc:
        raise ConfigError(f"loss {name}: {exc}") from None

