"""NLNL's negative learning as a module with a seeded, checkpointable label generator.

Kim et al., "NLNL: Negative Learning for Noisy Labels" (ICCV 2019); the DAL paper (and its
authors' code) trains with the negative-learning step only, N complementary labels per
sample (Table 1: N = 1 on CIFAR-10, 110 on CIFAR-100). See ``functional.nlnl`` for the loss.

The complementary labels come from a ``torch.Generator`` seeded with ``seed`` and created on
the logits' device at the first forward. Its state (and the optional class weights) travel in
``state_dict()`` so a resumed run draws the same labels as an uninterrupted one. A generator
state can only be restored on the same kind of device (CPU and CUDA generators differ);
otherwise loading raises CheckpointError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from dal_backdoor.errors import CheckpointError
from dal_backdoor.losses import functional as F
from dal_backdoor.losses.base import LossModule


class NLNLLoss(LossModule):
    """Negative learning with ``num_negatives`` complementary labels per sample."""

    def __init__(self, num_classes: int, hparams: Mapping[str, Any], seed: int) -> None:
        super().__init__("nlnl", num_classes, hparams)
        self.seed = int(seed)
        self.class_weights: Tensor | None = None
        self._generator: torch.Generator | None = None
        self._pending: tuple[str, Tensor] | None = None  # restored state awaiting a device

    def set_class_weights(self, weights: Tensor | None) -> None:
        """Weight each sample's loss by ``weights[y]`` (e.g. ``inverse_frequency_weights``,
        what the authors' code uses); None restores uniform weights."""
        if weights is not None:
            weights = torch.as_tensor(weights, dtype=torch.float32).detach().cpu()
            if weights.shape != (self.num_classes,):
                raise ValueError(f"class weights must have shape ({self.num_classes},); "
                                 f"got {tuple(weights.shape)}")
        self.class_weights = weights

    def generator(self, device: torch.device) -> torch.Generator:
        """The label generator on ``device`` (created and seeded, or restored, on first use)."""
        if self._generator is not None and self._generator.device.type == device.type:
            return self._generator
        if self._generator is not None:
            raise RuntimeError(f"NLNL generator lives on {self._generator.device}; logits are "
                               f"on {device}: move the loss before the first batch")
        gen = torch.Generator(device=device).manual_seed(self.seed)
        if self._pending is not None:
            kind, state = self._pending
            if kind != device.type:
                raise CheckpointError(f"NLNL generator state is for device {kind}; cannot "
                                      f"resume it on {device.type}; allowed: {kind}")
            gen.set_state(state)
            self._pending = None
        self._generator = gen
        return gen

    def compute(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.nlnl(logits, targets, self.hparams["num_negatives"],
                      self.generator(logits.device), self.class_weights)

    def get_extra_state(self) -> dict[str, Any]:
        state = super().get_extra_state()
        if self._generator is not None:
            state["generator_device"] = self._generator.device.type
            state["generator_state"] = self._generator.get_state()
        elif self._pending is not None:
            state["generator_device"], state["generator_state"] = self._pending
        state["class_weights"] = self.class_weights
        return state

    def set_extra_state(self, state: Any) -> None:
        super().set_extra_state(state)
        self.set_class_weights(state.get("class_weights"))
        self._generator, self._pending = None, None
        if state.get("generator_state") is not None:
            self._pending = (str(state["generator_device"]), state["generator_state"].clone())


def create_nlnl(  # every loss factory takes total_epochs and seed
    num_classes: int, hparams: Mapping[str, Any], *, total_epochs: int | None, seed: int  # noqa: ARG001
) -> LossModule:
    return NLNLLoss(num_classes, hparams, seed)
