"""Data: image sets as uint8 tensors, a device-resident loader, seeded label noise.

``dal_backdoor.data.catalog`` declares every data set (with its facts: ``dataset_info``) and
noise kind; ``create_dataset(name, root, train)`` loads CIFAR-10/100, Fashion-MNIST or the
synthetic task; ``DeviceLoader`` serves normalised (optionally augmented) batches from the
chosen device; ``make_noisy_labels`` corrupts labels. Poisoning lives in
``dal_backdoor.data.poison``. Importing this package imports no torch: the torch-using names
load on first access.
"""

from __future__ import annotations

from dal_backdoor.data.catalog import (
    DATASETS,
    NOISE_KINDS,
    DatasetInfo,
    dataset_info,
    dataset_present,
    list_datasets,
    list_noise_kinds,
)
from dal_backdoor.registry import lazy_getattr

_LAZY = {
    "DeviceLoader": "dal_backdoor.data.loader",
    "ImageDataset": "dal_backdoor.data.datasets",
    "NoisyLabels": "dal_backdoor.data.noise",
    "create_dataset": "dal_backdoor.data.datasets",
    "make_noisy_labels": "dal_backdoor.data.noise",
    "stratified_subset_indices": "dal_backdoor.data.datasets",
}

__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = [
    "DATASETS",
    "NOISE_KINDS",
    "DatasetInfo",
    "DeviceLoader",
    "ImageDataset",
    "NoisyLabels",
    "create_dataset",
    "dataset_info",
    "dataset_present",
    "list_datasets",
    "list_noise_kinds",
    "make_noisy_labels",
    "stratified_subset_indices",
]
