"""The ``npz`` data set: images and labels in one NumPy ``.npz`` archive.

Arrays (``PATH`` is ``--dataset-param path=FILE.npz``, default ``--root``):

- training split: ``images`` and ``labels`` (or Keras's ``x_train`` and ``y_train``);
- test split, optional: ``images_test`` and ``labels_test`` (or ``x_test`` and ``y_test``);
  without one, the training arrays are split per class by ``test_fraction`` (default 0.2)
  with ``split_seed`` (default 0), see ``dal_backdoor.data.user_files``;
- ``classes``, optional: a 1-D array of class names (label ``i`` is ``classes[i]``); without
  it, the classes are ``class0 .. class{K-1}`` with ``K`` = the largest label + 1.

Images are uint8 of shape ``(N, H, W)`` (grey-scale), ``(N, H, W, C)`` or ``(N, C, H, W)`` with
``C`` 1 or 3 (``(N, H, W, C)`` is tried first, as most libraries store images); labels are
integers in ``[0, K)`` of shape ``(N,)``. Pickled (object) arrays are refused.

Content hash (``sha256``, recorded in the run's config): SHA-256 of the file's bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dal_backdoor.data.catalog import DatasetInfo
from dal_backdoor.data.datasets import ImageDataset
from dal_backdoor.data.user_files import (
    FileData,
    check_classes,
    describe,
    load_split,
    resolve_params,
)
from dal_backdoor.errors import ConfigError

NAME = "npz"
TRAIN_KEYS = (("images", "labels"), ("x_train", "y_train"))
TEST_KEYS = (("images_test", "labels_test"), ("x_test", "y_test"))
CLASSES_KEY = "classes"


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise ConfigError(f"data set {NAME}: {path} does not exist; allowed: an .npz file "
                          "(--dataset-param path=FILE.npz or --root FILE.npz)")
    if not path.is_file():
        raise ConfigError(f"data set {NAME}: {path} is not a file; allowed: an .npz file "
                          "(for a folder of images use --dataset folder)")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"data set {NAME}: {path} cannot be read ({exc.strerror})") from None


def _arrays(data: bytes, path: Path) -> dict[str, np.ndarray]:
    """Every array of the archive (no pickles)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, AttributeError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"data set {NAME}: {path} is not a readable .npz archive of plain "
                          f"arrays ({reason})") from None


def _pair(arrays: dict[str, np.ndarray], choices: tuple[tuple[str, str], ...], path: Path,
          required: bool) -> tuple[str, str] | None:
    """The (images, labels) keys of one split present in the archive."""
    present = [pair for pair in choices if pair[0] in arrays or pair[1] in arrays]
    names = " or ".join(f"{a}/{b}" for a, b in choices)
    if len(present) > 1:
        raise ConfigError(f"data set {NAME}: {path} has both {names}; allowed: one of them")
    if not present:
        if required:
            raise ConfigError(f"data set {NAME}: {path} has no {names} arrays (it has "
                              f"{', '.join(sorted(arrays)) or 'none'})")
        return None
    missing = [k for k in present[0] if k not in arrays]
    if missing:
        raise ConfigError(f"data set {NAME}: {path} has {present[0][0]}/{present[0][1]} without "
                          f"{missing[0]}")
    return present[0]


def _nchw(images: np.ndarray, key: str, path: Path) -> np.ndarray:
    """uint8 (N, H, W) | (N, H, W, C) | (N, C, H, W), C in {1, 3} -> (N, C, H, W)."""
    where = f"data set {NAME}: {path} array {key!r}"
    if images.dtype != np.uint8:
        raise ConfigError(f"{where} has dtype {images.dtype}; allowed: uint8 (0-255)")
    if images.ndim == 3:
        out = images[:, None]
    elif images.ndim == 4 and images.shape[-1] in (1, 3):
        out = images.transpose(0, 3, 1, 2)
    elif images.ndim == 4 and images.shape[1] in (1, 3):
        out = images
    else:
        raise ConfigError(f"{where} has shape {images.shape}; allowed: (N, H, W), (N, H, W, C) "
                          "or (N, C, H, W) with C 1 or 3")
    if min(out.shape) < 1:
        raise ConfigError(f"{where} has shape {images.shape}; allowed: no empty axis")
    return np.ascontiguousarray(out)


def _labels(labels: np.ndarray, key: str, n: int, path: Path) -> np.ndarray:
    where = f"data set {NAME}: {path} array {key!r}"
    if labels.dtype.kind not in "iu" or labels.ndim != 1:
        raise ConfigError(f"{where} is {labels.dtype} {labels.shape}; allowed: integers of "
                          f"shape ({n},)")
    if labels.shape[0] != n:
        raise ConfigError(f"{where} has {labels.shape[0]} labels for {n} images; allowed: one "
                          "label per image")
    if labels.min() < 0:
        raise ConfigError(f"{where} has label {int(labels.min())}; allowed: integers >= 0")
    return labels.astype(np.int64)


def _split(arrays: dict[str, np.ndarray], keys: tuple[str, str], path: Path
           ) -> tuple[np.ndarray, np.ndarray]:
    images = _nchw(arrays[keys[0]], keys[0], path)
    return images, _labels(arrays[keys[1]], keys[1], images.shape[0], path)


def _classes(arrays: dict[str, np.ndarray], labels: list[np.ndarray], path: Path
             ) -> tuple[str, ...]:
    top = max(int(y.max()) for y in labels) + 1
    if CLASSES_KEY not in arrays:
        return tuple(f"class{i}" for i in range(top))
    names = arrays[CLASSES_KEY]
    if names.ndim != 1 or names.dtype.kind not in "US":
        raise ConfigError(f"data set {NAME}: {path} array 'classes' is {names.dtype} "
                          f"{names.shape}; allowed: a 1-D array of names")
    classes = tuple(str(n) for n in names.tolist())
    if top > len(classes):
        raise ConfigError(f"data set {NAME}: {path} has label {top - 1} but {len(classes)} "
                          f"class names; allowed: labels in [0, {len(classes) - 1}]")
    return classes


def read_npz(path: Path) -> FileData:
    """Read, check and hash the .npz archive at ``path`` (see the module docstring)."""
    data = _read_bytes(path)
    arrays = _arrays(data, path)
    train = _split(arrays, _pair(arrays, TRAIN_KEYS, path, required=True), path)
    test_keys = _pair(arrays, TEST_KEYS, path, required=False)
    test = None if test_keys is None else _split(arrays, test_keys, path)
    if test is not None and test[0].shape[1:] != train[0].shape[1:]:
        raise ConfigError(f"data set {NAME}: {path} test images are {test[0].shape[1:]} (C, H, "
                          f"W), training images {train[0].shape[1:]}; allowed: the same shape")
    classes = _classes(arrays, [train[1]] + ([] if test is None else [test[1]]), path)
    check_classes(NAME, str(path), classes, train[1])
    return FileData(hashlib.sha256(data).hexdigest(), classes, train[0], train[1], test)


def signature(path: Path) -> tuple[Any, ...]:
    """The file's size and mtime (the read cache's key)."""
    try:
        st = os.stat(path)
    except OSError:
        return ()
    return (st.st_size, st.st_mtime_ns)


def resolve_npz_params(params: Mapping[str, Any], root: str | os.PathLike[str]
                       ) -> dict[str, Any]:
    """The run's recorded options: absolute ``path``, ``sha256``, split options."""
    return resolve_params(NAME, read_npz, signature, params, root)


def describe_npz(params: Mapping[str, Any]) -> DatasetInfo:
    """The facts (classes, size, channels, normalisation) of the archive ``params`` name."""
    return describe(NAME, read_npz, signature, params)


def load_npz(  # download: the loader signature of every data set
    root: Path,
    train: bool,
    download: bool,  # noqa: ARG001
    *,
    path: str | None = None,
    sha256: str | None = None,
    test_fraction: float | None = None,
    split_seed: int | None = None,
) -> ImageDataset:
    """The ``train`` or test split of an .npz archive (see the module docstring)."""
    params = {"path": path, "sha256": sha256, "test_fraction": test_fraction,
              "split_seed": split_seed}
    return load_split(NAME, read_npz, signature, root, train, params)
