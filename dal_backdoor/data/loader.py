"""A device-resident batch loader with batched crop + flip augmentation (airbench's idea).

The whole uint8 data set is moved to ``device`` once; each batch is gathered there with one
advanced-indexing op that performs the random crop and the horizontal flip together, then
normalised to float32. No worker processes, no per-image Python loop, no host copy per epoch.

Augmentation follows the paper's recipe and torchvision's semantics:
``RandomCrop(size, padding=p)`` (zero padding, i.e. pixel value 0 in uint8 space before
normalisation, as on PIL images; crop offsets uniform over ``0..2p`` in each axis) followed by
``RandomHorizontalFlip(p=0.5)``. All randomness (shuffling, offsets, flips) comes from one
``torch.Generator`` on the loader's device; its state is saved by :meth:`DeviceLoader.state_dict`
so a resumed run continues the same stream.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from dal_backdoor.data.transforms import normalize_uint8
from dal_backdoor.errors import ConfigError
from dal_backdoor.validation import check_number

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class DeviceLoader:
    """Yields ``(x, y, idx)`` batches from a uint8 image set kept on ``device``.

    ``x`` is float32 ``(B, C, H, W)`` normalised with ``mean``/``std`` (channels-last memory
    format if ``channels_last``), ``y`` int64 labels, ``idx`` int64 positions of the samples in
    ``images`` (for per-sample bookkeeping of noisy / poisoned samples). Each ``iter()`` is one
    epoch: a fresh permutation if ``shuffle``, fresh crops/flips if ``augment``.

    Randomness comes from ``generator`` (must live on ``device``) or, if None, from a new
    generator on ``device`` seeded with ``seed``; one of them is required when ``shuffle`` or
    ``augment`` is on.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        device: torch.device | str,
        augment: bool,
        shuffle: bool,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        channels_last: bool = False,
        drop_last: bool = False,
        padding: int = 4,
    ) -> None:
        _check_data(images, labels, mean, std)
        self.batch_size = check_number("batch_size", batch_size, low=1, integer=True)
        self.padding = check_number("padding", padding, low=0, integer=True)
        self.device = torch.device(device)
        self.augment, self.shuffle = bool(augment), bool(shuffle)
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        self.channels_last, self.drop_last = bool(channels_last), bool(drop_last)
        self.generator = _make_generator(generator, seed, self.device,
                                         needed=self.augment or self.shuffle)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device, torch.int64)
        self._ar_h = torch.arange(images.shape[2], device=self.device)
        self._ar_w = torch.arange(images.shape[3], device=self.device)
        self._padded = self._pad(self.images) if self.augment and self.padding else None

    @classmethod
    def for_eval(
        cls,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        device: torch.device | str,
        channels_last: bool = False,
    ) -> DeviceLoader:
        """The evaluation loader: every sample once, in order, no augmentation, no randomness."""
        return cls(images, labels, batch_size=batch_size, mean=mean, std=std, device=device,
                   augment=False, shuffle=False, channels_last=channels_last)

    @classmethod
    def from_dataset(cls, dataset: Any, **kwargs: Any) -> DeviceLoader:
        """A loader over an ``ImageDataset`` with its own ``mean``/``std`` (kwargs as __init__)."""
        return cls(dataset.images, dataset.labels, mean=dataset.mean, std=dataset.std, **kwargs)

    # -- iteration ------------------------------------------------------------------------

    @property
    def num_samples(self) -> int:
        return int(self.labels.shape[0])

    def __len__(self) -> int:
        """Number of batches per epoch."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        n = self.num_samples
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator, device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            raw = self._augment(idx) if self.augment else self.images[idx]
            x = normalize_uint8(raw, self.mean, self.std, channels_last=self.channels_last)
            yield x, self.labels[idx], idx

    def _pad(self, images: torch.Tensor) -> torch.Tensor:
        p = self.padding
        n, c, h, w = images.shape
        padded = torch.zeros((n, c, h + 2 * p, w + 2 * p), dtype=images.dtype,
                             device=images.device)
        padded[:, :, p:p + h, p:p + w] = images
        return padded

    def _augment(self, idx: torch.Tensor) -> torch.Tensor:
        """Random crop (zero padding) + horizontal flip of ``images[idx]`` in one gather."""
        b = idx.numel()
        span = 2 * self.padding + 1
        dy = torch.randint(0, span, (b,), generator=self.generator, device=self.device)
        dx = torch.randint(0, span, (b,), generator=self.generator, device=self.device)
        flip = torch.rand((b,), generator=self.generator, device=self.device) < 0.5
        rows = dy[:, None] + self._ar_h[None, :]
        cols = torch.where(flip[:, None], self._ar_w.flip(0)[None, :], self._ar_w[None, :])
        cols = cols + dx[:, None]
        source = self._padded if self._padded is not None else self.images
        chans = torch.arange(source.shape[1], device=self.device)
        return source[idx[:, None, None, None], chans[None, :, None, None],
                      rows[:, None, :, None], cols[:, None, None, :]]

    # -- resumable state --------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The generator state (CPU ByteTensor), so a resumed run continues the same stream.

        Take it between epochs: an epoch draws its permutation when iteration starts and its
        crops/flips batch by batch, so a state taken mid-epoch resumes mid-stream.
        """
        state = None if self.generator is None else self.generator.get_state()
        return {"generator": state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("generator")
        if (saved is None) != (self.generator is None):
            raise ConfigError("loader state does not match this loader (one of them has no "
                              "random generator: shuffle/augment differ)")
        if self.generator is not None:
            self.generator.set_state(saved.cpu() if isinstance(saved, torch.Tensor) else saved)


def _check_data(
    images: torch.Tensor, labels: torch.Tensor, mean: Sequence[float], std: Sequence[float]
) -> None:
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ConfigError(f"images must be uint8 (N, C, H, W), got {images.dtype} "
                          f"{tuple(images.shape)}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ConfigError(f"labels must have shape ({images.shape[0]},), got "
                          f"{tuple(labels.shape)}")
    if images.shape[0] == 0:
        raise ConfigError("cannot load an empty data set (0 samples)")
    if len(mean) != images.shape[1] or len(std) != images.shape[1]:
        raise ConfigError(f"mean/std have {len(mean)}/{len(std)} entries for "
                          f"{images.shape[1]} channels")


def _make_generator(
    generator: torch.Generator | None, seed: int | None, device: torch.device, *, needed: bool
) -> torch.Generator | None:
    if generator is not None:
        if generator.device.type != device.type:
            raise ConfigError(f"generator lives on {generator.device}, loader on {device}; "
                              f"create it with torch.Generator(device={str(device)!r})")
        return generator
    if seed is None:
        if needed:
            raise ConfigError("a shuffling or augmenting loader needs seed= or generator= "
                              "(randomness only through explicit seeds)")
        return None
    seed = check_number("seed", seed, low=0, integer=True)
    return torch.Generator(device=device).manual_seed(seed)
