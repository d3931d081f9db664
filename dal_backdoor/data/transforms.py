"""Tensor-level image conversions shared by the loader, the evaluator and the triggers' callers.

Images live as uint8 tensors (N, C, H, W); models see float32 tensors normalised per channel.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def normalize_uint8(
    images: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    channels_last: bool = False,
) -> torch.Tensor:
    """uint8 (B, C, H, W) in [0, 255] -> float32 ((x / 255) - mean) / std, on the same device."""
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {images.dtype}")
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(images.shape)}")
    c = images.shape[1]
    if len(mean) != c or len(std) != c:
        raise ValueError(f"mean/std have {len(mean)}/{len(std)} entries for {c} channels")
    dev = images.device
    mean_t = torch.tensor(mean, dtype=torch.float32, device=dev).view(1, c, 1, 1)
    # fold 1/255 into the scale: (x/255 - m)/s = x * (1/(255 s)) - m/s
    scale = (1.0 / (255.0 * torch.tensor(std, dtype=torch.float32, device=dev))).view(1, c, 1, 1)
    shift = (mean_t * scale * 255.0)
    out = images.to(torch.float32)
    if channels_last:
        out = out.contiguous(memory_format=torch.channels_last)
    return out.mul_(scale).sub_(shift)


def to_float01(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [0, 1]."""
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {images.dtype}")
    return images.to(torch.float32).div_(255.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [0, 1] -> uint8 [0, 255], rounding to nearest and clipping."""
    return images.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
