"""Data: image sets as uint8 tensors, a device-resident loader, seeded label noise.

``create_dataset(name, root, train)`` loads CIFAR-10/100, Fashion-MNIST or the synthetic task;
``DeviceLoader`` serves normalised (optionally augmented) batches from the chosen device;
``make_noisy_labels`` corrupts labels. Poisoning lives in ``dal_backdoor.data.poison``.
"""

from __future__ import annotations

from dal_backdoor.data.datasets import (
    ImageDataset,
    create_dataset,
    list_datasets,
    stratified_subset_indices,
)
from dal_backdoor.data.loader import DeviceLoader
from dal_backdoor.data.noise import NoisyLabels, list_noise_kinds, make_noisy_labels

__all__ = [
    "DeviceLoader",
    "ImageDataset",
    "NoisyLabels",
    "create_dataset",
    "list_datasets",
    "list_noise_kinds",
    "make_noisy_labels",
    "stratified_subset_indices",
]
