"""The ``blended`` trigger: Chen et al. 2017's blended injection, ``x' = (1 - alpha) x + alpha k``.

Chen, Liu, Li, Lu and Song, "Targeted Backdoor Attacks on Deep Learning Systems Using Data
Poisoning", 2017: the key pattern ``k`` is alpha-blended into the whole image. Poisoned training
images use ``alpha``; test images (ASR) use ``test_alpha`` (default: ``alpha``), through
:meth:`Trigger.for_evaluation`, since the paper shows a larger test-time alpha strengthens the
attack.

The key ``k`` (values in [0, 1], shape ``(C, H, W)``):

- default: a seeded uniform-noise key (Chen et al.'s "random noise" pattern): pixel value
  ``(z >> 56) / 255`` for the successive outputs ``z`` of SplitMix64 seeded with ``seed``, in
  C-order over ``(C, H, W)``, so the key is a uint8 image, the same on every machine;
- ``pattern_file``: any image or array (:mod:`triggers.patterns`), its channels adapted (grey
  repeated, RGB -> BT.601 luminance) and fitted to ``H x W`` by ``fit`` (default ``resize``,
  bilinear, as attacks resize their key image to the input size); its SHA-256 is recorded.

Arithmetic (float32 for float32 images): ``images * float32(1 - alpha) + float32(alpha) * k``,
then clipped to [0, 1] (a no-op but for rounding). Threat model: dirty-label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from dal_backdoor.errors import ConfigError
from dal_backdoor.validation import check_number
from triggers.base import Trigger
from triggers.global_pattern import splitmix64
from triggers.patterns import FIT_MODES, adapt_pattern, check_recorded_sha256, load_pattern_file
from triggers.values import parse_fraction

DEFAULT_ALPHA = 0.2
_MASK64 = (1 << 64) - 1


def noise_key(channels: int, height: int, width: int, seed: int) -> torch.Tensor:
    """The default key: float64 ``(C, H, W)`` of uint8 levels ``(z >> 56) / 255`` (SplitMix64)."""
    values = [z >> 56 for z in splitmix64(seed, channels * height * width)]
    return torch.tensor(values, dtype=torch.float64).view(channels, height, width) / 255.0


class BlendedTrigger(Trigger):
    """Chen et al. 2017's blend x' = (1 - alpha) x + alpha k of a key k (seeded noise or a file).

    alpha for poisoned training images, test_alpha for test images (default: alpha).
    """

    name = "blended"  # declared with its TriggerInfo in triggers.catalog


    def __init__(
        self,
        image_size: int | Sequence[int],
        channels: int,
        alpha: float | str = DEFAULT_ALPHA,
        test_alpha: float | str | None = None,
        seed: int = 0,
        pattern_file: str | None = None,
        pattern_sha256: str | None = None,
        fit: str = "resize",
    ) -> None:
        super().__init__(image_size, channels)
        self.alpha = parse_fraction("blended trigger alpha", alpha)
        self.test_alpha = (self.alpha if test_alpha is None
                           else parse_fraction("blended trigger test_alpha", test_alpha))
        self.seed = int(check_number("blended trigger seed", seed, low=0, high=_MASK64,
                                     integer=True))
        if fit not in FIT_MODES:
            raise ConfigError(f"blended trigger fit={fit!r} is unknown; allowed: "
                              + ", ".join(FIT_MODES))
        self.fit = fit
        self.pattern_file: str | None = None
        self.pattern_sha256: str | None = None
        self._key32 = self._make_key(pattern_file, pattern_sha256).to(torch.float32)
        self._cache: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, float]] = {}

    def _make_key(self, pattern_file: str | None, pattern_sha256: str | None) -> torch.Tensor:
        h, w = self.image_size
        if pattern_file is None:
            if pattern_sha256 is not None:
                raise ConfigError("blended trigger pattern_sha256 needs a pattern_file")
            return noise_key(self.channels, h, w, self.seed)
        loaded = load_pattern_file(pattern_file)
        check_recorded_sha256(loaded, pattern_sha256)
        self.pattern_file, self.pattern_sha256 = loaded.path, loaded.sha256
        return adapt_pattern(loaded.pattern, self.channels, h, w, self.fit,
                             f"pattern file {loaded.path!r}")

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "test_alpha": self.test_alpha, "seed": self.seed,
                "pattern_file": self.pattern_file, "pattern_sha256": self.pattern_sha256,
                "fit": self.fit}

    def key(self) -> torch.Tensor:
        """A copy of the key ``k`` ``(C, H, W)``, float32, in [0, 1]."""
        return self._key32.clone()

    def for_evaluation(self) -> BlendedTrigger:
        """The same trigger with ``alpha = test_alpha`` (stamped on test images)."""
        if self.test_alpha == self.alpha:
            return self
        params = {**self.params(), "alpha": self.test_alpha}
        h, w = self.image_size
        return BlendedTrigger((h, w), self.channels, **params)

    def _blend_terms(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, float]:
        """``(alpha * k, 1 - alpha)``: the key term in float32 then ``dtype``; the scale."""
        key = (device, dtype)
        if key not in self._cache:
            a32 = torch.tensor(self.alpha, dtype=torch.float32)
            term = (self._key32 * a32).unsqueeze(0).to(dtype=dtype).to(device=device)
            keep = float(torch.tensor(1.0 - self.alpha, dtype=torch.float32))
            self._cache[key] = (term, keep)
        return self._cache[key]

    def _apply_float(self, images: torch.Tensor) -> torch.Tensor:
        term, keep = self._blend_terms(images.device, images.dtype)
        return images.mul(keep).add_(term).clamp_(0.0, 1.0)
