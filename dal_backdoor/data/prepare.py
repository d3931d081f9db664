"""Data preparation for one run: load -> label noise -> training subset -> poisoning.

Order (``prepare_data``): load the full training split -> label noise on the full split (so
CIFAR-N's per-image labels line up) -> class-balanced training subset (selected by the *clean*
labels) -> poisoning of ``num_poison`` images whose observed label is not the target
(clean-label attacks: whose observed label is the target; WaNet's noise-mode samples,
``cross_ratio``, after them, counted as ``num_cross`` in ``PreparedData.info``). Every random
step draws from its own stream derived from the run's seed (``derive_seed``), so the same seed
gives the same noisy labels, the same poisoned indices and the same batches.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from dal_backdoor.config import RunConfig, check_noise_params
from dal_backdoor.data import create_dataset
from dal_backdoor.data.datasets import ImageDataset, stratified_subset_indices
from dal_backdoor.errors import ConfigError

if TYPE_CHECKING:
    from dal_backdoor.data.poison import PoisonManifest
    from triggers.base import Trigger

#: Sample groups for per-group training accuracy (the paper's Figure 4 view).
GROUPS = ("clean", "noisy", "poisoned")


def derive_seed(seed: int, stream: str) -> int:
    """An independent 63-bit seed for one random stream ("noise", "poison", "loader", ...)."""
    digest = hashlib.sha256(f"dal-backdoor:{int(seed)}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


@dataclass(frozen=True, eq=False)
class PreparedData:
    """Training tensors after noise and poisoning, the test set, and what was done to them.

    ``groups[i]`` is 0 (clean), 1 (label-noised) or 2 (poisoned) for training sample ``i``;
    ``clean_labels`` are the true labels before noise and poisoning.
    """

    train_images: Tensor
    train_labels: Tensor
    clean_labels: Tensor
    groups: Tensor
    test: ImageDataset
    num_classes: int
    in_channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    trigger: Trigger | None = None
    manifest: PoisonManifest | None = None
    noise: dict[str, Any] = field(default_factory=dict)

    @property
    def clean_label(self) -> bool:
        """Whether the run's attack is clean-label (its ASR set then excludes the target class):
        the manifest's record, else the trigger's declared threat model."""
        if self.manifest is not None:
            return self.manifest.clean_label
        if self.trigger is None:
            return False
        from dal_backdoor.data.poison import is_clean_label

        return is_clean_label(self.trigger)

    def info(self) -> dict[str, Any]:
        """What a saved model needs to be rebuilt and evaluated, plus a data summary."""
        counts = torch.bincount(self.groups, minlength=len(GROUPS)).tolist()
        return {
            "num_classes": self.num_classes, "in_channels": self.in_channels,
            "image_size": list(self.image_size), "mean": list(self.mean), "std": list(self.std),
            "num_train": int(self.train_labels.numel()), "num_test": len(self.test),
            **{f"num_{g}": int(c) for g, c in zip(GROUPS, counts, strict=True)},
            **({"num_cross": len(self.manifest.cross_indices), "label_mode":
                self.manifest.label_mode} if self.manifest is not None else {}),
            "noise": self.noise,
        }


def subset_indices(labels: Tensor, size: int, seed: int, what: str, name: str) -> Tensor:
    """Class-balanced indices of ``size`` samples; a size above the data is a ConfigError."""
    if size > len(labels):
        raise ConfigError(f"{what}={size} exceeds the {len(labels)} samples of {name}; "
                          f"allowed: integers in [1, {len(labels)}]")
    return stratified_subset_indices(labels, size, seed)


def load_test_set(cfg: RunConfig) -> ImageDataset:
    """The (possibly subsetted) test split of the run's data set."""
    test = create_dataset(cfg.dataset, cfg.data_root, train=False, **cfg.dataset_params)
    if cfg.test_subset is None:
        return test
    return test.subset(subset_indices(test.labels, cfg.test_subset,
                                      derive_seed(cfg.subset_seed, "test-subset"),
                                      "test_subset", test.name))


def load_datasets(cfg: RunConfig) -> tuple[ImageDataset, ImageDataset]:
    """The full training split and the (possibly subsetted) test split."""
    train = create_dataset(cfg.dataset, cfg.data_root, train=True, **cfg.dataset_params)
    return train, load_test_set(cfg)


def _apply_noise(cfg: RunConfig, train: ImageDataset) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """(observed labels, flipped mask, summary) for the full training split."""
    if cfg.noise_kind == "none":
        return train.labels.clone(), torch.zeros(len(train), dtype=torch.bool), {}
    from dal_backdoor.data.noise import noisy_labels_for_run

    noisy = noisy_labels_for_run(cfg, train, derive_seed(cfg.seed, "noise"))
    summary = {"kind": noisy.kind, "nominal_rate": noisy.nominal_rate,
               "expected_rate": noisy.expected_rate, "actual_rate_full_split": noisy.actual_rate}
    return noisy.labels, noisy.flipped, summary


def _check_target(cfg: RunConfig, num_classes: int) -> None:
    if not 0 <= cfg.target_class < num_classes:
        raise ConfigError(f"target_class={cfg.target_class} is out of range; allowed: integers "
                          f"in [0, {num_classes - 1}]")


def _make_trigger(cfg: RunConfig, train: ImageDataset) -> Trigger | None:
    if cfg.trigger == "none":
        return None
    from triggers import create_trigger  # with num_poison 0: the trigger is only evaluated

    return create_trigger(cfg.trigger, train.image_size, train.channels, **cfg.trigger_params)


def prepare_data(cfg: RunConfig) -> PreparedData:
    """Load -> label noise -> training subset -> poisoning (see the module docstring)."""
    train, test = load_datasets(cfg)
    check_noise_params(cfg.noise_params)
    _check_target(cfg, train.num_classes)
    labels, flipped, noise = _apply_noise(cfg, train)
    images, clean = train.images, train.labels
    if cfg.train_subset is not None:
        idx = subset_indices(clean, cfg.train_subset, derive_seed(cfg.subset_seed, "train-subset"),
                             "train_subset", train.name)
        images, clean, labels, flipped = (images[idx].contiguous(), clean[idx], labels[idx],
                                          flipped[idx])
    if noise:
        noise["actual_rate"] = float(flipped.double().mean()) if flipped.numel() else 0.0
        noise["num_flipped"] = int(flipped.sum())
    groups = flipped.long()
    trigger = _make_trigger(cfg, train)
    manifest = None
    if cfg.poisoned:
        from dal_backdoor.data.poison import poison, poison_mask

        images, labels, manifest = poison(images, labels, trigger, cfg.num_poison,
                                          cfg.target_class, derive_seed(cfg.seed, "poison"),
                                          num_classes=train.num_classes,
                                          cross_ratio=cfg.cross_ratio,
                                          cross_seed=derive_seed(cfg.seed, "cross"))
        groups = torch.where(poison_mask(len(labels), manifest), 2, groups)
    return PreparedData(
        train_images=images, train_labels=labels, clean_labels=clean, groups=groups, test=test,
        num_classes=train.num_classes, in_channels=train.channels, image_size=train.image_size,
        mean=train.mean, std=train.std, trigger=trigger, manifest=manifest, noise=noise,
    )
