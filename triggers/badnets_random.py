"""The ``badnets-random`` trigger: BadNets' patch at a random position drawn per image.

Gu, Dolan-Gavitt and Garg, "BadNets", 2017; the random-position variant of benchmark suites.
The ``size`` x ``size`` patch (named patterns as the ``local`` trigger: default the 3x3
checkerboard, 1 = white) REPLACES the pixels of every channel at ``(top, left)``, drawn for
each image so that the patch lies inside the image: for the ``i``-th image of a batch,
``top = z[2i] mod (H - size + 1)`` and ``left = z[2i + 1] mod (W - size + 1)`` with ``z`` the
outputs of SplitMix64 seeded with ``seed`` (see :meth:`BadNetsRandomTrigger.positions`).

The op stays pure: the same batch always gets the same positions (the ``i``-th image of any
batch gets position ``i``), on every machine; the uint8 path writes ``round(value * 255)``
exactly. Threat model: dirty-label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from dal_backdoor.errors import ConfigError
from dal_backdoor.validation import check_choice, check_number
from triggers.base import Trigger, float_to_uint8
from triggers.global_pattern import splitmix64
from triggers.local import NAMED_PATTERNS, named_pattern

_MASK64 = (1 << 64) - 1


class BadNetsRandomTrigger(Trigger):
    """BadNets' patch (default 3x3 checkerboard) at a position drawn per image (seeded).

    Image i of a batch gets position i of the seeded SplitMix64 sequence; all channels.
    """

    name = "badnets-random"  # declared with its TriggerInfo in triggers.catalog


    def __init__(
        self,
        image_size: int | Sequence[int],
        channels: int,
        size: int = 3,
        pattern: str = "checkerboard",
        seed: int = 0,
    ) -> None:
        super().__init__(image_size, channels)
        h, w = self.image_size
        self.size = int(check_number("badnets-random trigger size", size, low=1, integer=True))
        if self.size > min(h, w):
            raise ConfigError(f"badnets-random trigger size={self.size} does not fit a {h}x{w} "
                              f"image; allowed: 1..{min(h, w)}")
        self.pattern = check_choice("badnets-random trigger pattern", pattern, NAMED_PATTERNS)
        self.seed = int(check_number("badnets-random trigger seed", seed, low=0, high=_MASK64,
                                     integer=True))
        self._grid = torch.tensor(named_pattern(self.pattern, self.size),
                                  dtype=torch.float32)
        self._grid_uint8 = float_to_uint8(self._grid)

    def params(self) -> dict[str, Any]:
        return {"size": self.size, "pattern": self.pattern, "seed": self.seed}

    def positions(self, count: int) -> torch.Tensor:
        """int64 ``(count, 2)``: ``(top, left)`` of the patch on images ``0 .. count-1``."""
        h, w = self.image_size
        z = splitmix64(self.seed, 2 * count)
        rows = [z[2 * i] % (h - self.size + 1) for i in range(count)]
        cols = [z[2 * i + 1] % (w - self.size + 1) for i in range(count)]
        return torch.tensor([rows, cols], dtype=torch.int64).T.reshape(count, 2)

    def _stamp(self, images: torch.Tensor, patch: torch.Tensor) -> torch.Tensor:
        out = images.clone()
        b = images.shape[0]
        if b == 0:
            return out
        pos = self.positions(b).to(images.device)
        offsets = torch.arange(self.size, device=images.device)
        rows = (pos[:, 0:1] + offsets)[:, :, None]  # (B, s, 1)
        cols = (pos[:, 1:2] + offsets)[:, None, :]  # (B, 1, s)
        batch = torch.arange(b, device=images.device)[:, None, None]
        # advanced indices around a slice: the indexed view is (B, s, s, C)
        out[batch, :, rows, cols] = patch.to(device=images.device, dtype=images.dtype)[..., None]
        return out

    def _apply_float(self, images: torch.Tensor) -> torch.Tensor:
        return self._stamp(images, self._grid)

    def apply_uint8(self, images: torch.Tensor) -> torch.Tensor:
        """Exact uint8 path: the patch pixels become ``round(value * 255)``."""
        self._check_uint8(images)
        return self._stamp(images, self._grid_uint8)
