"""What the ``folder`` and ``npz`` data sets (a researcher's own files) share.

A reader (``dal_backdoor.data.folder``, ``dal_backdoor.data.npz``) turns a path into
:class:`FileData`: uint8 images ``(N, C, H, W)``, int64 labels, class names, the content hash,
and the file's own test split when it has one. This module then

- resolves the data-set options of a run (:func:`resolve_params`): the absolute ``path``
  (default: the data root), the content ``sha256`` (so the run id changes when the data
  change), and, for data without a test split, ``test_fraction`` and ``split_seed``;
- splits data without a test split (:func:`fraction_split`): per class ``c`` with ``n_c``
  images, ``min(n_c - 1, round_half_up(test_fraction * n_c))`` images chosen by a seeded
  permutation go to the test split, the rest to training;
- computes the normalisation from the training images (:func:`channel_stats`: per-channel
  mean and population standard deviation of ``pixels / 255``, exact from a histogram);
- builds the :class:`ImageDataset` of a split and the :class:`DatasetInfo` of the data.

Reads are cached in the process (keyed by the path and every file's size and mtime), so
resolving a config, describing the data and loading both splits read the files once.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dal_backdoor.data.catalog import DATASETS, DatasetInfo
from dal_backdoor.data.datasets import ImageDataset
from dal_backdoor.errors import ConfigError
from dal_backdoor.validation import MAX_SEED, check_number

log = logging.getLogger(__name__)

#: The options of a data set read from files (``--dataset-param K=V``).
OPTIONS = ("path", "sha256", "test_fraction", "split_seed")
SPLIT_DEFAULTS: dict[str, Any] = {"test_fraction": 0.2, "split_seed": 0}


@dataclass(frozen=True, eq=False)
class FileData:
    """A data set as read from its files; ``test`` is the files' own test split, or None."""

    sha256: str
    classes: tuple[str, ...]
    images: np.ndarray  # uint8 (N, C, H, W)
    labels: np.ndarray  # int64 (N,)
    test: tuple[np.ndarray, np.ndarray] | None = None


Reader = Callable[[Path], FileData]
Signature = Callable[[Path], tuple[Any, ...]]


def data_path(name: str, params: Mapping[str, Any], root: str | os.PathLike[str]) -> Path:
    """The absolute path of the data: ``params["path"]``, else the data root."""
    given = params.get("path")
    text = str(root) if given is None else str(given)
    if not text:
        raise ConfigError(f"data set {name}: empty path; allowed: --dataset-param path=... "
                          "or --root ...")
    return Path(text).expanduser().absolute()


@functools.lru_cache(maxsize=2)
def _cached(reader: Reader, path: Path, signature: tuple[Any, ...]) -> FileData:  # noqa: ARG001
    return reader(path)  # ``signature`` is the cache key: sizes and mtimes of the files


def read(reader: Reader, signature: Signature, path: Path) -> FileData:
    """``reader(path)``, cached while no file under ``path`` changes size or mtime."""
    return _cached(reader, path, signature(path))


def check_sha256(name: str, path: Path, data: FileData, recorded: Any) -> None:
    """ConfigError when the run recorded another content hash than the files have now."""
    if recorded is not None and recorded != data.sha256:
        raise ConfigError(f"data set {name} at {path} changed: its sha256 is {data.sha256}, "
                          f"the run recorded {recorded}; allowed: the data the run was "
                          "configured with")


def _check_option_names(name: str, params: Mapping[str, Any]) -> None:
    unknown = sorted(set(params) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} of data set {name}; "
                          f"allowed: {', '.join(OPTIONS)}")


def split_options(name: str, data: FileData, params: Mapping[str, Any]) -> dict[str, Any]:
    """``test_fraction`` and ``split_seed`` (checked, defaults filled in) for data without a
    test split; {} for data with one (where giving them is an error)."""
    given = {k: params[k] for k in SPLIT_DEFAULTS if params.get(k) is not None}
    if data.test is not None:
        if given:
            raise ConfigError(f"data set {name}: {', '.join(sorted(given))} only apply to data "
                              "without a test split; this data has one")
        return {}
    out = {**SPLIT_DEFAULTS, **given}
    out["test_fraction"] = float(check_number("test_fraction", out["test_fraction"], low=0,
                                              high=1, low_open=True, high_open=True))
    out["split_seed"] = int(check_number("split_seed", out["split_seed"], low=0, high=MAX_SEED,
                                         integer=True))
    return out


def resolve_params(name: str, reader: Reader, signature: Signature,
                   params: Mapping[str, Any], root: str | os.PathLike[str]) -> dict[str, Any]:
    """The recorded options of a run: absolute ``path``, ``sha256`` and the split options.

    The data are read and checked here, once, so bad data are one error before anything runs.
    """
    _check_option_names(name, params)
    path = data_path(name, params, root)
    data = read(reader, signature, path)
    check_sha256(name, path, data, params.get("sha256"))
    return {"path": str(path), "sha256": data.sha256, **split_options(name, data, params)}


def fraction_split(labels: np.ndarray, fraction: float, seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, test indices), each sorted: per class, ``min(n - 1,
    round_half_up(fraction * n))`` of its ``n`` samples (a seeded permutation) are test."""
    gen = torch.Generator().manual_seed(int(seed))
    train, test = [], []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        n = members.size
        k = min(n - 1, int(fraction * n + 0.5))
        order = members[torch.randperm(n, generator=gen).numpy()]
        test.append(order[:k])
        train.append(order[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def splits(name: str, data: FileData, params: Mapping[str, Any]
           ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((train images, labels), (test images, labels)) of ``data`` under ``params``."""
    if data.test is not None:
        return (data.images, data.labels), data.test
    options = split_options(name, data, params)
    train_idx, test_idx = fraction_split(data.labels, options["test_fraction"],
                                         options["split_seed"])
    if test_idx.size == 0:
        raise ConfigError(f"data set {name}: test_fraction={options['test_fraction']:g} leaves "
                          "no test images (each class keeps at least one training image); "
                          "allowed: more images or a larger test_fraction")
    return ((data.images[train_idx], data.labels[train_idx]),
            (data.images[test_idx], data.labels[test_idx]))


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population std of ``images / 255`` (uint8 ``(N, C, H, W)``),
    computed exactly from each channel's histogram."""
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(images.shape[1]):
        counts = np.bincount(images[:, c].ravel(), minlength=256).astype(np.float64)
        n = counts.sum()
        mean = float((counts * values).sum() / n)
        var = float((counts * (values - mean) ** 2).sum() / n)
        means.append(mean)
        stds.append(var ** 0.5)
    return tuple(means), tuple(stds)


def _stats(name: str, images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mean, std = channel_stats(images)
    flat = [c for c, s in enumerate(std) if s == 0.0]
    if flat:
        raise ConfigError(f"data set {name}: every training pixel of channel {flat[0]} has the "
                          "same value, so it cannot be normalised; allowed: images that vary")
    return mean, std


def load_split(name: str, reader: Reader, signature: Signature, root: Path, train: bool,
               params: Mapping[str, Any]) -> ImageDataset:
    """The ``train`` or test split as an :class:`ImageDataset`, normalised with the
    statistics of the training images."""
    _check_option_names(name, params)
    path = data_path(name, params, root)
    data = read(reader, signature, path)
    check_sha256(name, path, data, params.get("sha256"))
    (train_x, train_y), (test_x, test_y) = splits(name, data, params)
    mean, std = _stats(name, train_x)
    images, labels = (train_x, train_y) if train else (test_x, test_y)
    # copies: the cached arrays stay as read whatever a caller does to the tensors
    return ImageDataset(name, torch.from_numpy(np.array(images, dtype=np.uint8, order="C")),
                        torch.from_numpy(labels.astype(np.int64)), data.classes, mean, std)


def describe(name: str, reader: Reader, signature: Signature,
             params: Mapping[str, Any]) -> DatasetInfo:
    """The facts of the data under ``params`` (which must name the path)."""
    if params.get("path") is None:
        raise ConfigError(f"data set {name} needs its path: --dataset-param path=... (or "
                          "--root ...)")
    train = load_split(name, reader, signature, Path(params["path"]), True, params)
    info = DATASETS.info(name)
    return replace(info, num_classes=train.num_classes, image_size=train.image_size,
                   channels=train.channels, mean=train.mean, std=train.std,
                   classes=train.classes)


def check_class_count(name: str, where: str, classes: tuple[str, ...]) -> None:
    """At least two classes."""
    if len(classes) < 2:
        raise ConfigError(f"data set {name}: {where} has {len(classes)} class(es) "
                          f"({', '.join(classes) or 'none'}); allowed: at least 2")


def check_classes(name: str, where: str, classes: tuple[str, ...],
                  train_labels: np.ndarray) -> None:
    """At least two classes, and a warning for a class without training images."""
    check_class_count(name, where, classes)
    counts = np.bincount(train_labels, minlength=len(classes))
    empty = [classes[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        log.warning("data set %s: class(es) %s have no training images", name,
                    ", ".join(empty))
