"""The ``wanet`` trigger: Nguyen and Tran 2021's smooth warping field ("WaNet", ICLR 2021).

The trigger is an imperceptible warp of the whole image. With ``k`` (default 4) and strength
``s`` (default 0.5):

1. a control field ``P`` of shape ``(2, k, k)``, uniform in [-1, 1) (``2 u - 1`` with ``u`` the
   SplitMix64 uniforms of ``seed``, C-order), divided by its mean absolute value;
2. upsampled to ``(2, H, W)`` with bicubic interpolation (``align_corners=True``), float64;
3. the warp grid ``G = clamp(I + s * P_up / (W, H), -1, 1)``: ``I`` the identity grid of
   ``grid_sample`` (x = ``linspace(-1, 1, W)``, y = ``linspace(-1, 1, H)``); channel 0 of
   ``P_up`` moves x (divided by ``W``), channel 1 moves y (divided by ``H``); the original
   divides both by the side of its square images, which is the same there;
4. ``x' = grid_sample(x, G, mode="bilinear", padding_mode="zeros", align_corners=True)``,
   clipped to [0, 1].

Noise mode (a poisoning concern, wired by the poisoning code, not by :meth:`apply`): WaNet
trains on extra "noise" samples, ``cross_ratio`` (2 in the paper) times as many as the
poisons, warped with a randomly perturbed grid ``clamp(G + (2 r - 1) / (W, H), -1, 1)``, ``r``
uniform per pixel and sample, and keeping their true labels, so that the network learns the
exact warp rather than any warp: :meth:`WaNetTrigger.warp_with_noise`.

Threat model: dirty-label (poisoned images are warped and relabelled to the target; noise-mode
samples keep their labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from dal_backdoor.errors import ConfigError
from dal_backdoor.validation import check_number
from triggers.base import Trigger
from triggers.global_pattern import splitmix64

_MASK64 = (1 << 64) - 1


def control_field(k: int, seed: int) -> torch.Tensor:
    """``P``: float64 ``(2, k, k)``, ``2 u - 1`` from SplitMix64, divided by mean ``|P|``."""
    u = [(z >> 11) * 2.0**-53 for z in splitmix64(seed, 2 * k * k)]
    field = torch.tensor(u, dtype=torch.float64).view(2, k, k) * 2.0 - 1.0
    return field / field.abs().mean()


def warp_grid(height: int, width: int, k: int, s: float, seed: int) -> torch.Tensor:
    """``G``: float64 ``(1, H, W, 2)`` (x, y in [-1, 1]) as ``grid_sample`` takes it."""
    up = F.interpolate(control_field(k, seed)[None], size=(height, width), mode="bicubic",
                       align_corners=True)[0]  # (2, H, W)
    ys = torch.linspace(-1.0, 1.0, height, dtype=torch.float64)
    xs = torch.linspace(-1.0, 1.0, width, dtype=torch.float64)
    gx = xs.view(1, width).expand(height, width) + s * up[0] / width
    gy = ys.view(height, 1).expand(height, width) + s * up[1] / height
    return torch.stack([gx, gy], dim=-1).clamp_(-1.0, 1.0).unsqueeze(0)


class WaNetTrigger(Trigger):
    """Nguyen and Tran 2021's smooth warp (k=4 control points, strength s=0.5), grid_sample.

    Noise-mode samples (random extra warps that keep their labels): warp_with_noise.
    """

    name = "wanet"  # declared with its TriggerInfo in triggers.catalog


    def __init__(
        self,
        image_size: int | Sequence[int],
        channels: int,
        k: int = 4,
        s: float = 0.5,
        seed: int = 0,
    ) -> None:
        super().__init__(image_size, channels)
        h, w = self.image_size
        if min(h, w) < 2:
            raise ConfigError(f"wanet trigger needs images of at least 2x2, got {h}x{w}")
        self.k = int(check_number("wanet trigger k", k, low=2, high=min(h, w), integer=True))
        self.s = float(check_number("wanet trigger s", s, low=0, low_open=True))
        self.seed = int(check_number("wanet trigger seed", seed, low=0, high=_MASK64,
                                     integer=True))
        self._grid64 = warp_grid(h, w, self.k, self.s, self.seed)
        self._cache: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def params(self) -> dict[str, Any]:
        return {"k": self.k, "s": self.s, "seed": self.seed}

    def grid(self, device: torch.device | str = "cpu",
             dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The cached warp grid ``(1, H, W, 2)``. Do not modify it."""
        key = (torch.device(device), dtype)
        if key not in self._cache:
            self._cache[key] = self._grid64.to(dtype=dtype).to(device=key[0])
        return self._cache[key]

    def _sample(self, images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=True)
        return out.clamp_(0.0, 1.0)

    def _apply_float(self, images: torch.Tensor) -> torch.Tensor:
        grid = self.grid(images.device, images.dtype)
        return self._sample(images, grid.expand(images.shape[0], -1, -1, -1))

    def noise_grid(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """``count`` perturbed grids ``clamp(G + (2 r - 1) / (W, H), -1, 1)``, float64 CPU;
        ``r = torch.rand(count, H, W, 2, generator=generator)``."""
        h, w = self.image_size
        r = torch.rand(count, h, w, 2, generator=generator, dtype=torch.float64)
        scale = torch.tensor([1.0 / w, 1.0 / h], dtype=torch.float64)
        return (self._grid64 + (2.0 * r - 1.0) * scale).clamp_(-1.0, 1.0)

    def warp_with_noise(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """WaNet's noise mode: float images warped with a fresh random perturbation of the
        grid each (:meth:`noise_grid`, drawn from the CPU ``generator``). Such samples keep
        their labels in training. Pure given the generator's state."""
        self.check_images(images)
        if not images.is_floating_point():
            raise ConfigError(f"wanet warp_with_noise expects float images in [0, 1], got "
                              f"{images.dtype}")
        grids = self.noise_grid(images.shape[0], generator)
        return self._sample(images, grids.to(dtype=images.dtype, device=images.device))
