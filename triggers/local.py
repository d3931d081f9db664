"""The ``local`` trigger: a small checkerboard patch near the bottom-right corner.

Following Weng et al. 2020 ("On the trade-off between adversarial and backdoor robustness",
NeurIPS 2020; reference [41] of the DAL paper, whose Figure 5 shows it), the default is a 3x3
checkerboard ``[[1, 0, 1], [0, 1, 0], [1, 0, 1]]`` (1 = white, 0 = black) that REPLACES the
pixels at rows ``H-5 .. H-3`` and columns ``W-5 .. W-3`` on every channel, i.e. with a 2-pixel
margin from the bottom-right corner (BadNets-style patch).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch

from dal_backdoor.errors import ConfigError
from dal_backdoor.validation import check_number
from triggers.base import Trigger, TriggerParam, float_to_uint8, register_trigger

NAMED_PATTERNS = ("checkerboard", "inverted-checkerboard", "white", "black")


def named_pattern(name: str, size: int) -> list[list[float]]:
    """The ``size`` x ``size`` pattern called ``name`` (1.0 = white, 0.0 = black).

    ``checkerboard`` is 1 where ``row + col`` is even (white corners, as in Weng et al.),
    ``inverted-checkerboard`` its complement; ``white`` / ``black`` are uniform.
    """
    def value(i: int, j: int) -> float:
        if name == "white":
            return 1.0
        if name == "black":
            return 0.0
        even = (i + j) % 2 == 0
        return 1.0 if even == (name == "checkerboard") else 0.0

    return [[value(i, j) for j in range(size)] for i in range(size)]


def _explicit_pattern(pattern: Any, size: int) -> list[list[float]]:
    """Validate a user-given size x size grid of numbers in [0, 1] (or its JSON text)."""
    if isinstance(pattern, str):
        try:
            pattern = json.loads(pattern)
        except json.JSONDecodeError:
            raise ConfigError(f"unknown local trigger pattern {pattern!r}; allowed: "
                              f"{', '.join(NAMED_PATTERNS)} or a {size}x{size} grid of "
                              f"numbers in [0, 1]") from None
    rows_ok = isinstance(pattern, Sequence) and len(pattern) == size
    if rows_ok:
        rows_ok = all(isinstance(r, Sequence) and not isinstance(r, str) and len(r) == size
                      for r in pattern)
    if not rows_ok:
        raise ConfigError(f"local trigger pattern must be {size}x{size} (size={size}), got "
                          f"{pattern!r}")
    return [[check_number("local trigger pattern value", v, low=0, high=1) for v in row]
            for row in pattern]


@register_trigger("local")
class LocalTrigger(Trigger):
    """A small patch (default: 3x3 checkerboard) replacing pixels near the bottom-right corner.

    The patch covers rows ``top .. top+size-1`` and columns ``left .. left+size-1`` on every
    channel; by default ``top = H - margin - size`` and ``left = W - margin - size``.
    """

    THREAT_MODEL = ("dirty-label: poisoned training images (drawn from the other classes) get "
                    "the trigger and the target label")

    PARAMS = (
        TriggerParam("size", 3, "side of the square patch in pixels"),
        TriggerParam("margin", 2, "pixels between the patch and the bottom/right image edges"),
        TriggerParam("top", None, "explicit first row of the patch (overrides margin)"),
        TriggerParam("left", None, "explicit first column of the patch (overrides margin)"),
        TriggerParam("pattern", "checkerboard",
                     f"{', '.join(NAMED_PATTERNS)}, or a size x size grid in [0, 1] "
                     "(1 = white) as a list or JSON text"),
    )

    def __init__(
        self,
        image_size: int | Sequence[int],
        channels: int,
        size: int = 3,
        margin: int = 2,
        top: int | None = None,
        left: int | None = None,
        pattern: str | Sequence[Sequence[float]] = "checkerboard",
    ) -> None:
        super().__init__(image_size, channels)
        h, w = self.image_size
        self.size = int(check_number("local trigger size", size, low=1, integer=True))
        self.margin = int(check_number("local trigger margin", margin, low=0, integer=True))
        self.top = self._position("top", top, h)
        self.left = self._position("left", left, w)
        if isinstance(pattern, str) and pattern in NAMED_PATTERNS:
            self.pattern: str | list[list[float]] = pattern
            grid = named_pattern(pattern, self.size)
        else:
            grid = _explicit_pattern(pattern, self.size)
            self.pattern = grid
        # (1, 1, s, s): broadcast over batch and channels; float32 values and their uint8 image.
        self._grid = torch.tensor(grid, dtype=torch.float32).view(1, 1, self.size, self.size)
        self._grid_uint8 = float_to_uint8(self._grid)
        self._cache: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def _position(self, axis: str, value: int | None, extent: int) -> int:
        """Resolve ``top``/``left``: explicit, else from the margin; check that it fits."""
        s = self.size
        h, w = self.image_size
        if value is None:
            pos = extent - self.margin - s
            if pos < 0:
                raise ConfigError(
                    f"local trigger of size {s} with margin {self.margin} does not fit a "
                    f"{h}x{w} image (needs at least {s + self.margin}x{s + self.margin})")
            return pos
        pos = int(check_number(f"local trigger {axis}", value, integer=True))
        if not 0 <= pos <= extent - s:
            allowed = f"0..{extent - s}" if extent >= s else "none"
            raise ConfigError(f"local trigger {axis}={pos} puts the {s}x{s} patch outside the "
                              f"{h}x{w} image; allowed: {allowed}")
        return pos

    def params(self) -> dict[str, Any]:
        pattern = self.pattern if isinstance(self.pattern, str) else [
            list(row) for row in self.pattern]
        return {"size": self.size, "margin": self.margin, "top": self.top, "left": self.left,
                "pattern": pattern}

    def region(self) -> tuple[slice, slice]:
        """The (rows, columns) slices the patch replaces."""
        return (slice(self.top, self.top + self.size), slice(self.left, self.left + self.size))

    def _patch(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        key = (device, dtype)
        if key not in self._cache:
            source = self._grid_uint8 if dtype == torch.uint8 else self._grid
            self._cache[key] = source.to(device=device, dtype=dtype)
        return self._cache[key]

    def _stamp(self, images: torch.Tensor) -> torch.Tensor:
        rows, cols = self.region()
        out = images.clone()
        out[:, :, rows, cols] = self._patch(images.device, images.dtype)
        return out

    def _apply_float(self, images: torch.Tensor) -> torch.Tensor:
        return self._stamp(images)

    def apply_uint8(self, images: torch.Tensor) -> torch.Tensor:
        """Exact uint8 path: the patch pixels become ``round(value * 255)``, the rest is copied."""
        self._check_uint8(images)
        return self._stamp(images)
