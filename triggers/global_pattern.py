"""The ``grating`` trigger (legacy name ``global``): a faint zero-mean grey grating, added and
clipped to [0, 1].

Weng et al. 2020 (reference [41] of the DAL paper; Figure 5 there) pair the local patch with a
global trigger spread over the whole image. This is OUR OWN procedural pattern in that spirit,
not a copy of theirs (their pattern is the ``weng`` trigger, :mod:`triggers.weng`):

- the pattern ``p`` is a sum of four sinusoidal gratings (orientation, period of 3-8 pixels,
  phase and weight drawn from ``seed``), made exactly zero-mean over the image interior and
  scaled so that ``max |p| == 1``;
- the SAME pattern is used on every channel (a luminance change, no colour cast; identical for
  grey-scale and RGB data);
- ``triggered = clip(image + amplitude * p, 0, 1)`` inside a ``border``-pixel frame; the frame is
  left untouched. Hence ``|triggered - image| <= amplitude`` everywhere and ``== 0`` on the
  border. The default amplitude is 64/255, as for the global trigger of the paper's Table 6.

Names: ``grating`` is this trigger's name. ``global`` is the same trigger under its legacy name:
runs stored with ``trigger="global"`` were computed with this grating, so the name keeps
stamping it and their run ids keep meaning what they computed. The ``global`` column of the
``table6`` grid now runs the ``weng`` trigger (``dal_backdoor.experiments``).

Reproducibility: the grating parameters come from SplitMix64 (Steele et al. 2014), a fixed
integer algorithm implemented here, not from a library RNG; the 1-D sines and cosines come from
Python's ``math`` and are combined with elementwise float64 operations and an exactly rounded
sum (``math.fsum``). So the pattern is the same on every run and machine, and the stamped
images are the same on every device (one float add and one clamp).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from dal_backdoor.errors import ConfigError
from dal_backdoor.validation import check_number
from triggers.base import Trigger
from triggers.values import parse_fraction

DEFAULT_AMPLITUDE = 64 / 255
NUM_GRATINGS = 4
MIN_PERIOD = 3.0  # pixels
MAX_PERIOD = 8.0
_MASK64 = (1 << 64) - 1


def splitmix64(seed: int, count: int) -> list[int]:
    """The first ``count`` outputs of SplitMix64 seeded with ``seed`` (64-bit unsigned ints)."""
    state = seed & _MASK64
    out = []
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        out.append(z ^ (z >> 31))
    return out


def _uniforms(seed: int, count: int) -> list[float]:
    """``count`` floats in [0, 1): the top 53 bits of each SplitMix64 output."""
    return [(z >> 11) * 2.0**-53 for z in splitmix64(seed, count)]


def grating_pattern(height: int, width: int, seed: int) -> torch.Tensor:
    """The zero-mean pattern with ``max |p| == 1``, float64 CPU tensor ``(height, width)``.

    ``p(y, x) = sum_k w_k cos(2 pi (x cos t_k + y sin t_k) / P_k + phi_k)``, centred and scaled;
    ``x, y`` count pixels from the top-left of the region. The 2-D cosine is expanded as
    ``cos(a) cos(b) - sin(a) sin(b)`` so only 1-D values come from ``math``.
    """
    u = _uniforms(seed, 4 * NUM_GRATINGS)
    total = torch.zeros(height, width, dtype=torch.float64)
    for k in range(NUM_GRATINGS):
        theta = math.pi * u[4 * k]
        period = MIN_PERIOD + (MAX_PERIOD - MIN_PERIOD) * u[4 * k + 1]
        phase = 2.0 * math.pi * u[4 * k + 2]
        weight = 0.5 + 0.5 * u[4 * k + 3]
        fx = 2.0 * math.pi * math.cos(theta) / period
        fy = 2.0 * math.pi * math.sin(theta) / period
        cx = torch.tensor([math.cos(fx * x) for x in range(width)], dtype=torch.float64)
        sx = torch.tensor([math.sin(fx * x) for x in range(width)], dtype=torch.float64)
        cy = torch.tensor([math.cos(fy * y + phase) for y in range(height)], dtype=torch.float64)
        sy = torch.tensor([math.sin(fy * y + phase) for y in range(height)], dtype=torch.float64)
        wave = torch.outer(cy, cx) - torch.outer(sy, sx)
        total = total + weight * wave
    mean = math.fsum(total.flatten().tolist()) / total.numel()
    centred = total - mean
    peak = float(centred.abs().max())
    if not peak > 0:
        raise ConfigError(f"grating trigger pattern is constant on a {height}x{width} region; "
                          "use a larger image or a smaller border")
    return centred / peak


class GratingTrigger(Trigger):
    """A faint zero-mean grey grating (our own pattern, amplitude 64/255) added to the image.

    Same pattern on every channel; a ``border``-pixel frame is left untouched; the result is
    clipped to [0, 1].
    """

    name = "grating"  # declared with its TriggerInfo in triggers.catalog


    def __init__(
        self,
        image_size: int | Sequence[int],
        channels: int,
        amplitude: float | str = DEFAULT_AMPLITUDE,
        seed: int = 0,
        border: int = 2,
    ) -> None:
        super().__init__(image_size, channels)
        h, w = self.image_size
        self.amplitude = parse_fraction(f"{self.name} trigger amplitude", amplitude)
        self.seed = int(check_number(f"{self.name} trigger seed", seed, low=0, high=_MASK64,
                                     integer=True))
        self.border = int(check_number(f"{self.name} trigger border", border, low=0,
                                       integer=True))
        inner_h, inner_w = h - 2 * self.border, w - 2 * self.border
        if inner_h < 2 or inner_w < 2:
            raise ConfigError(f"{self.name} trigger border={self.border} leaves a "
                              f"{max(inner_h, 0)}x{max(inner_w, 0)} interior in a {h}x{w} "
                              "image; allowed: "
                              f"border <= {max((min(h, w) - 2) // 2, 0)}")
        self._pattern = grating_pattern(inner_h, inner_w, self.seed)
        full = torch.zeros(1, 1, h, w, dtype=torch.float64)
        b = self.border
        full[0, 0, b:h - b, b:w - b] = self.amplitude * self._pattern
        self._delta64 = full
        self._cache: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def params(self) -> dict[str, Any]:
        return {"amplitude": self.amplitude, "seed": self.seed, "border": self.border}

    def pattern(self) -> torch.Tensor:
        """A copy of the interior pattern ``p`` (float64, CPU, zero mean, ``max |p| == 1``)."""
        return self._pattern.clone()

    def delta(self, device: torch.device | str = "cpu",
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The cached additive image ``(1, 1, H, W)`` (zero on the border). Do not modify it."""
        key = (torch.device(device), dtype)
        if key not in self._cache:
            self._cache[key] = self._delta64.to(dtype=dtype).to(device=key[0])
        return self._cache[key]

    def _apply_float(self, images: torch.Tensor) -> torch.Tensor:
        return (images + self.delta(images.device, images.dtype)).clamp_(0.0, 1.0)


class GlobalPatternTrigger(GratingTrigger):
    """Legacy name of grating (the grey grating): stored "global" runs used it; paper's: weng.

    Stamps exactly as ``grating``; the paper's global trigger is ``weng``.
    """

    name = "global"  # declared with its TriggerInfo in triggers.catalog
