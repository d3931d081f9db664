"""The ``additive`` trigger: a user's pattern file added to the image interior, then clipped.

``triggered = clip(image + amplitude * p, 0, 1)`` on the ``(H - 2b) x (W - 2b)`` interior, a
``b``-pixel border (``border``) left untouched, where ``p`` is the pattern read from
``pattern_file`` (PNG or another Pillow image, ``.npy`` or a one-array ``.npz``; values in
[0, 1], see :mod:`triggers.patterns`), adapted to the image's channels (grey repeated, RGB to
BT.601 luminance on 1-channel images) and fitted to the interior by ``fit`` (default
``exact``: the pattern must have the interior's size). This is the mechanism of Weng et al.'s
global trigger (:mod:`triggers.weng`) with any pattern; the file's SHA-256 is part of the
trigger's parameters (``pattern_sha256``), so it is part of the run id.

Arithmetic: the additive image ``delta = p32 * float32(amplitude)`` is computed once in float32
(``p32`` = the fitted pattern rounded to float32), zero on the border, and stamped as
``(images + delta).clamp(0, 1)`` in the images' dtype. Dirty-label threat model: poisoned
training images carry the trigger and the target label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from dal_backdoor.errors import ConfigError
from dal_backdoor.validation import check_number
from triggers.base import Trigger
from triggers.patterns import FIT_MODES, adapt_pattern, check_recorded_sha256, load_pattern_file
from triggers.values import parse_fraction

DEFAULT_AMPLITUDE = 64 / 255


class AdditiveStamp(Trigger):
    """Shared mechanics of additive pattern triggers (``additive``, ``weng``); not registered."""


    def _setup(self, source: torch.Tensor, amplitude: float | str, border: int, fit: str,
               what: str) -> None:
        """Fit ``source`` (C, h, w) in [0, 1] to the interior and build the additive image."""
        h, w = self.image_size
        self.amplitude = parse_fraction(f"{self.name} trigger amplitude", amplitude)
        self.border = int(check_number(f"{self.name} trigger border", border, low=0,
                                       integer=True))
        if fit not in FIT_MODES:
            raise ConfigError(f"{self.name} trigger fit={fit!r} is unknown; allowed: "
                              + ", ".join(FIT_MODES))
        self.fit = fit
        b = self.border
        inner_h, inner_w = h - 2 * b, w - 2 * b
        if inner_h < 1 or inner_w < 1:
            raise ConfigError(f"{self.name} trigger border={b} leaves no interior in a {h}x{w} "
                              f"image; allowed: border <= {(min(h, w) - 1) // 2}")
        fitted = adapt_pattern(source, self.channels, inner_h, inner_w, fit, what)
        self._pattern32 = fitted.to(torch.float32)
        delta = torch.zeros(1, self.channels, h, w, dtype=torch.float32)
        delta[0, :, b:h - b, b:w - b] = self._pattern32 * torch.tensor(self.amplitude,
                                                                       dtype=torch.float32)
        self._delta32 = delta
        self._cache: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def pattern(self) -> torch.Tensor:
        """A copy of the fitted interior pattern ``(C, H - 2b, W - 2b)``, float32, in [0, 1]."""
        return self._pattern32.clone()

    def delta(self, device: torch.device | str = "cpu",
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The cached additive image ``(1, C, H, W)`` (zero on the border). Do not modify it."""
        key = (torch.device(device), dtype)
        if key not in self._cache:
            self._cache[key] = self._delta32.to(dtype=dtype).to(device=key[0])
        return self._cache[key]

    def _apply_float(self, images: torch.Tensor) -> torch.Tensor:
        return (images + self.delta(images.device, images.dtype)).clamp_(0.0, 1.0)


class AdditivePatternTrigger(AdditiveStamp):
    """A user's pattern file (PNG, .npy, .npz) times an amplitude, added inside a border, clipped.

    ``clip(x + amplitude * p, 0, 1)`` on the interior; p in [0, 1] from pattern_file.
    """

    name = "additive"  # declared with its TriggerInfo in triggers.catalog


    def __init__(
        self,
        image_size: int | Sequence[int],
        channels: int,
        pattern_file: str | None = None,
        pattern_sha256: str | None = None,
        amplitude: float | str = DEFAULT_AMPLITUDE,
        border: int = 2,
        fit: str = "exact",
    ) -> None:
        super().__init__(image_size, channels)
        if pattern_file is None:
            raise ConfigError("additive trigger needs pattern_file=PATH (a PNG, .npy or .npz "
                              "pattern with values in [0, 1])")
        loaded = load_pattern_file(pattern_file)
        check_recorded_sha256(loaded, pattern_sha256)
        self.pattern_file = loaded.path
        self.pattern_sha256 = loaded.sha256
        self._setup(loaded.pattern, amplitude, border, fit, f"pattern file {loaded.path!r}")

    def params(self) -> dict[str, Any]:
        return {"pattern_file": self.pattern_file, "pattern_sha256": self.pattern_sha256,
                "amplitude": self.amplitude, "border": self.border, "fit": self.fit}
