"""The ``weng`` trigger: the global ("complex watermark") trigger of Weng et al. 2020.

Weng, Lee and Wu, "On the Trade-off between Adversarial and Backdoor Robustness", NeurIPS 2020
(reference [41] of the DAL paper, whose Section 5.6 and Table 6 use it). The pattern ships with
this package (``triggers/assets/weng2020_trigger0.npy``: ``triggers[0]`` of the authors'
``cifar10/triggers64.npz`` at commit a9e7b737, float32, unchanged; provenance in the ``.json``
beside it). ``t = 1 - triggers[0]`` (float32, HWC (1, 32, 32, 3), in [0, 1]); non-negative and
colourful (the channels differ).

Recipe on 3 x 32 x 32 images in [0, 1] (exactly the authors' code)::

    x[:, 2:-2, 2:-2] = clip(x[:, 2:-2, 2:-2] + (64/255) * t[:, 2:-2, 2:-2], 0, 1)

i.e. the 28 x 28 interior of ``t`` is added with amplitude 64/255 (computed in float32 as
``float32(64/255) * t``) and a 2-pixel border is left untouched.

Other shapes (documented adaptation, not in the paper):

- 1-channel images: the pattern is the luminance of ``t`` with the ITU-R BT.601 weights
  ``0.299 R + 0.587 G + 0.114 B`` (float64, then float32);
- the source is always the 28 x 28 interior of ``t``; it is fitted to the image's interior
  ``(H - 2b) x (W - 2b)`` (``b = border``, default 2) by ``fit`` (default ``auto``): a centred
  crop when the interior is at most 28 x 28 (e.g. 28 x 28 Fashion-MNIST: its 24 x 24 interior
  gets rows and columns 4..27 of ``t``), a bilinear resize (antialiased) when it is larger in
  either direction; see :mod:`triggers.patterns`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import torch

from dal_backdoor.errors import ConfigError
from triggers.additive import DEFAULT_AMPLITUDE, AdditiveStamp

ASSET = "weng2020_trigger0.npy"
ASSET_METADATA = "weng2020_trigger0.json"
SOURCE_BORDER = 2  # the authors add only the 28 x 28 interior of t


@lru_cache(maxsize=1)
def _stored() -> np.ndarray:
    data = resources.files("triggers").joinpath("assets", ASSET).read_bytes()
    array = np.load(io.BytesIO(data), allow_pickle=False)
    if array.dtype != np.float32 or array.shape != (1, 32, 32, 3):
        raise ConfigError(f"the shipped {ASSET} is damaged: {array.dtype} {array.shape}; "
                          "reinstall dal-backdoor")
    array.setflags(write=False)
    return array


def weng_pattern() -> np.ndarray:
    """``t = 1 - triggers[0]``: float32 ``(1, 32, 32, 3)`` (HWC) in [0, 1], as the authors."""
    return np.float32(1) - _stored()


def weng_source() -> torch.Tensor:
    """The 28 x 28 interior of ``t`` as a float64 ``(3, 28, 28)`` tensor (exact float32 values)."""
    t = weng_pattern()[0, SOURCE_BORDER:-SOURCE_BORDER, SOURCE_BORDER:-SOURCE_BORDER]
    return torch.from_numpy(np.ascontiguousarray(t.transpose(2, 0, 1))).to(torch.float64)


class WengTrigger(AdditiveStamp):
    """Weng et al. 2020's colourful global trigger (the paper's), amplitude 64/255, border 2.

    3x32x32: x[:, 2:-2, 2:-2] = clip(x[:, 2:-2, 2:-2] + a * t[:, 2:-2, 2:-2], 0, 1), t = 1 -
    triggers[0] of their triggers64.npz; grey images get its BT.601 luminance, other sizes a
    centre crop (or bilinear resize) of its 28x28 interior.
    """

    name = "weng"  # declared with its TriggerInfo in triggers.catalog


    def __init__(
        self,
        image_size: int | Sequence[int],
        channels: int,
        amplitude: float | str = DEFAULT_AMPLITUDE,
        border: int = 2,
        fit: str = "auto",
    ) -> None:
        super().__init__(image_size, channels)
        self._setup(weng_source(), amplitude, border, fit, "the weng pattern")

    def params(self) -> dict[str, Any]:
        return {"amplitude": self.amplitude, "border": self.border, "fit": self.fit}
