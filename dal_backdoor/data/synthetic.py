"""A seeded synthetic image-classification task, CIFAR-shaped by default.

Each class is a smooth periodic texture: per channel, a sum of three 2-D cosines whose integer
frequencies (cycles per image, so every pattern tiles the image exactly), phases and amplitudes
are drawn from the ``seed``, plus a per-class colour offset. A sample is its class texture
circularly shifted by a uniformly random offset (so no single pixel carries the class), scaled
by a random contrast, mixed with a faint texture of another random class and per-pixel Gaussian
noise. The class is therefore a property of the image's frequency content: a small CNN learns it
within a couple of epochs, a linear read-out of one pixel cannot.

The ``seed`` alone fixes the classes; ``train`` selects one of two independent sample streams of
the same distribution, so train and test sets of one seed belong to one task.
"""

from __future__ import annotations

import math

import numpy as np
import torch

_COMPONENTS = 3  # cosines per class and channel
_MAX_FREQ = 3  # |frequency| in cycles per image, per axis
_PIXEL_SCALE = 40.0  # uint8 units per unit of the (roughly unit-variance) signal
_NOISE = 0.5  # per-pixel Gaussian noise, in signal units
_MAX_DISTRACTOR = 0.4  # largest weight of the other-class texture

# Nominal per-channel statistics of the [0, 1] pixels under the constants above (measured over
# 10,000 samples for several seeds and shapes: mean 0.50 +- 0.03 (the class colour offsets move
# it per seed), std 0.158 +- 0.003); used as the normalisation of every seed. Declared with the
# data set's facts in ``dal_backdoor.data.catalog`` (0.5 and 0.16).


def _stream_generator(seed: int, stream: int) -> torch.Generator:
    """A CPU generator for one named stream of ``seed`` (0: classes, 1: train, 2: test)."""
    state = np.random.SeedSequence([int(seed), int(stream)]).generate_state(1, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0]) & 0x7FFF_FFFF_FFFF_FFFF)


def class_textures(num_classes: int, image_size: int, channels: int, seed: int) -> torch.Tensor:
    """The (K, C, S, S) float32 class textures (unit std each) plus colour offsets for ``seed``."""
    gen = _stream_generator(seed, 0)
    k, c, n = num_classes, channels, _COMPONENTS
    freqs = torch.randint(-_MAX_FREQ, _MAX_FREQ + 1, (k, c, n, 2), generator=gen)
    # (0, 0) would be a constant; move it to the lowest vertical frequency instead.
    zero = (freqs == 0).all(dim=-1)
    freqs[..., 0] = torch.where(zero, torch.ones_like(freqs[..., 0]), freqs[..., 0])
    phases = torch.rand((k, c, n), generator=gen) * (2 * math.pi)
    amps = 0.5 + 0.5 * torch.rand((k, c, n), generator=gen)
    offsets = torch.rand((k, c), generator=gen) - 0.5

    coords = torch.arange(image_size, dtype=torch.float32) * (2 * math.pi / image_size)
    fy = freqs[..., 0].float()[..., None, None]
    fx = freqs[..., 1].float()[..., None, None]
    arg = fy * coords[:, None] + fx * coords[None, :] + phases[..., None, None]
    tex = (amps[..., None, None] * torch.cos(arg)).sum(dim=2)  # (K, C, S, S)
    tex = tex / tex.flatten(1).std(dim=1).clamp_min(1e-6).view(k, 1, 1, 1)
    return tex + offsets[..., None, None]


def _shift_gather(
    textures: torch.Tensor, cls: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor
) -> torch.Tensor:
    """``textures[cls]`` circularly shifted by (dy, dx) per sample, as one batched gather."""
    _, c, s, _ = textures.shape
    ar = torch.arange(s)
    rows = (ar[None, :] + dy[:, None]) % s  # (N, S)
    cols = (ar[None, :] + dx[:, None]) % s
    chan = torch.arange(c)
    return textures[cls[:, None, None, None], chan[None, :, None, None],
                    rows[:, None, :, None], cols[:, None, None, :]]


def make_synthetic(
    num_samples: int, num_classes: int, image_size: int, channels: int, seed: int, train: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate ``(images uint8 (N, C, S, S), labels int64 (N,))``; class-balanced, shuffled."""
    textures = class_textures(num_classes, image_size, channels, seed)
    gen = _stream_generator(seed, 1 if train else 2)
    n, s = num_samples, image_size
    labels = torch.arange(n) % num_classes
    labels = labels[torch.randperm(n, generator=gen)]
    dy = torch.randint(0, s, (n,), generator=gen)
    dx = torch.randint(0, s, (n,), generator=gen)
    contrast = 0.6 + 0.4 * torch.rand((n, 1, 1, 1), generator=gen)
    other = torch.randint(0, num_classes, (n,), generator=gen)
    weight = _MAX_DISTRACTOR * torch.rand((n, 1, 1, 1), generator=gen)
    signal = _shift_gather(textures, labels, dy, dx).mul_(contrast)
    # the distractor texture reuses the offsets transposed: an independent-looking placement
    signal.add_(_shift_gather(textures, other, dx, dy).mul_(weight))
    noise = torch.randn((n, channels, s, s), generator=gen).mul_(_NOISE)
    pixels = signal.add_(noise).mul_(_PIXEL_SCALE).add_(127.5)
    images = pixels.round_().clamp_(0, 255).to(torch.uint8).contiguous()
    return images, labels.to(torch.int64)
