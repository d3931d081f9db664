"""The ``sig`` trigger: Barni et al. 2019's horizontal sinusoidal signal, a clean-label attack.

Barni, Kallas and Tondi, "A New Backdoor Attack in CNNs by Training Set Corruption Without
Label Poisoning", ICIP 2019: ``x'(i, j) = clip(x(i, j) + v(j), 0, 1)`` with
``v(j) = delta * sin(2 pi j f / m)``, ``j`` the column (0-based), ``m`` the image width, the
same on every row and channel. Defaults ``delta = 20/255`` (as in TrojanZoo) and ``f = 6``.

``v`` is computed per column in float64 with ``math.sin`` and rounded once to float32, so the
signal is the same on every machine. Threat model: clean-label; the poisons are training
images of the target class, their labels unchanged, and the ASR set excludes the target class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from dal_backdoor.validation import check_number
from triggers.base import Trigger
from triggers.values import parse_fraction

DEFAULT_DELTA = 20 / 255
DEFAULT_FREQUENCY = 6.0


def sig_signal(width: int, delta: float, frequency: float) -> torch.Tensor:
    """``v(j) = delta * sin(2 pi j f / width)`` for ``j = 0 .. width-1``, float64."""
    return torch.tensor([delta * math.sin(2.0 * math.pi * j * frequency / width)
                         for j in range(width)], dtype=torch.float64)


class SigTrigger(Trigger):
    """Barni et al. 2019's horizontal sinusoid x' = clip(x + delta sin(2 pi j f / m)), clean-label.

    Default delta 20/255, frequency 6 periods across the width; every row and channel.
    """

    name = "sig"  # declared with its TriggerInfo in triggers.catalog


    def __init__(
        self,
        image_size: int | Sequence[int],
        channels: int,
        delta: float | str = DEFAULT_DELTA,
        frequency: float = DEFAULT_FREQUENCY,
    ) -> None:
        super().__init__(image_size, channels)
        self.delta = parse_fraction("sig trigger delta", delta)
        self.frequency = float(check_number("sig trigger frequency", frequency, low=0,
                                            low_open=True))
        _, w = self.image_size
        self._signal32 = sig_signal(w, self.delta, self.frequency).to(torch.float32)
        self._cache: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def params(self) -> dict[str, Any]:
        return {"delta": self.delta, "frequency": self.frequency}

    def signal(self) -> torch.Tensor:
        """A copy of ``v`` (one value per column), float32."""
        return self._signal32.clone()

    def _apply_float(self, images: torch.Tensor) -> torch.Tensor:
        key = (images.device, images.dtype)
        if key not in self._cache:
            self._cache[key] = self._signal32.view(1, 1, 1, -1).to(dtype=images.dtype,
                                                                   device=images.device)
        return (images + self._cache[key]).clamp_(0.0, 1.0)
