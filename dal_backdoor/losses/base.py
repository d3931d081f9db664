"""What every loss module shares: the ``LossModule`` contract and ``FunctionalLoss``.

Losses are declared (name, factory, ``LossInfo``) in ``dal_backdoor.losses.catalog``; a factory
is ``factory(num_classes, hparams, *, total_epochs, seed) -> LossModule``. ``ParamSpec`` and
``LossInfo`` live in the torch-free ``dal_backdoor.losses.info`` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor, nn

from dal_backdoor.losses.info import LossInfo, ParamSpec
from dal_backdoor.validation import check_number

__all__ = ["FunctionalLoss", "LossInfo", "LossModule", "ParamSpec"]


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
