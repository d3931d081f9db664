"""Builders of tiny fake data-set files in the real on-disk layouts, for tests.

- CIFAR-10 / CIFAR-100: python-pickle batches as in the official archives
  (``cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta``;
  ``cifar-100-python/train, test, meta``), so ``create_dataset("cifar10", root, ...)`` reads
  them through the real code.
- Fashion-MNIST: IDX files (``train-images-idx3-ubyte`` etc.), gzipped or raw.
- CIFAR-N: a ``torch.save``d dict of numpy label arrays like ``CIFAR-10_human.pt``.

Every builder returns what it wrote (as tensors), so tests can compare values exactly.
"""

from __future__ import annotations

import gzip
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dal_backdoor.data.datasets import CIFAR10_CLASSES, CIFAR100_FINE_TO_COARSE


@dataclass(frozen=True, eq=False)
class FakeSplit:
    """Images uint8 (N, C, H, W), labels int64 (N,), coarse labels int64 (N,) or None."""

    images: torch.Tensor
    labels: torch.Tensor
    coarse_labels: torch.Tensor | None = None


def _images(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def _dump(path: Path, obj: object, protocol: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=protocol))


def write_fake_cifar10(
    root: str | Path, n_train: int = 50, n_test: int = 20, seed: int = 0, protocol: int = 2
) -> dict[str, FakeSplit]:
    """Write ``root/cifar-10-batches-py`` with ``n_train`` images over 5 batches, ``n_test``."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "cifar-10-batches-py"
    out = {}
    for split, n, files in (("train", n_train, [f"data_batch_{i}" for i in range(1, 6)]),
                            ("test", n_test, ["test_batch"])):
        data = _images(rng, n, (3 * 32 * 32,))
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        for name, rows in zip(files, np.array_split(np.arange(n), len(files)), strict=True):
            _dump(base / name, {
                "batch_label": f"fake {name}",
                "labels": [int(v) for v in labels[rows]],
                "data": data[rows],
                "filenames": [f"img_{i}.png" for i in rows],
            }, protocol)
        out[split] = FakeSplit(torch.from_numpy(data.reshape(n, 3, 32, 32).copy()),
                               torch.from_numpy(labels.astype(np.int64)))
    _dump(base / "batches.meta", {"label_names": list(CIFAR10_CLASSES),
                                  "num_cases_per_batch": 10000, "num_vis": 3072}, protocol)
    return out


def write_fake_cifar100(
    root: str | Path,
    n_train: int = 200,
    n_test: int = 100,
    seed: int = 0,
    fine_to_coarse: tuple[int, ...] = CIFAR100_FINE_TO_COARSE,
    protocol: int = 2,
) -> dict[str, FakeSplit]:
    """Write ``root/cifar-100-python`` (train, test, meta) with the given superclass layout."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "cifar-100-python"
    mapping = np.asarray(fine_to_coarse, dtype=np.int64)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        data = _images(rng, n, (3 * 32 * 32,))
        fine = np.arange(n) % 100
        rng.shuffle(fine)
        coarse = mapping[fine]
        _dump(base / split, {
            "filenames": [f"img_{i}.png" for i in range(n)],
            "batch_label": f"fake {split}",
            "fine_labels": [int(v) for v in fine],
            "coarse_labels": [int(v) for v in coarse],
            "data": data,
        }, protocol)
        out[split] = FakeSplit(torch.from_numpy(data.reshape(n, 3, 32, 32).copy()),
                               torch.from_numpy(fine.astype(np.int64)),
                               torch.from_numpy(coarse))
    _dump(base / "meta", {"fine_label_names": [f"fine{i}" for i in range(100)],
                          "coarse_label_names": [f"coarse{i}" for i in range(20)]}, protocol)
    return out


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic 0x0000 08 <ndim>, big-endian dims, data."""
    header = bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzipped when ``compress`` (default: name ends in .gz)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = idx_bytes(array)
    if compress if compress is not None else path.suffix == ".gz":
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


def write_fake_fashion_mnist(
    directory: str | Path,
    n_train: int = 30,
    n_test: int = 10,
    seed: int = 0,
    compress: bool = True,
) -> dict[str, FakeSplit]:
    """Write the four Fashion-MNIST IDX files (``.gz`` if ``compress``) into ``directory``."""
    rng = np.random.default_rng(seed)
    suffix = ".gz" if compress else ""
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = _images(rng, n, (28, 28))
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        write_idx(Path(directory) / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(Path(directory) / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        out[split] = FakeSplit(torch.from_numpy(images.copy()).unsqueeze(1),
                               torch.from_numpy(labels.astype(np.int64)))
    return out


CIFAR10N_KEYS = ("aggre_label", "worse_label", "random_label1", "random_label2",
                 "random_label3")


def write_fake_cifar_n(
    path: str | Path,
    clean_labels: torch.Tensor,
    num_classes: int = 10,
    keys: tuple[str, ...] = CIFAR10N_KEYS,
    flip_fraction: float = 0.3,
    seed: int = 0,
    legacy_numpy_names: bool = False,
) -> dict[str, torch.Tensor]:
    """Write a CIFAR-N style ``.pt``: ``clean_label`` plus one noisy array per key.

    Each noisy array flips a ``flip_fraction`` of the samples (chosen at random) to another
    class. ``legacy_numpy_names`` writes the pickle as numpy 1 did (the official files name
    ``numpy.core.multiarray._reconstruct``), using torch's legacy (non-zip) format.
    """
    rng = np.random.default_rng(seed)
    clean = clean_labels.numpy().astype(np.int64)
    table = {"clean_label": clean}
    for key in keys:
        noisy = clean.copy()
        rows = rng.choice(clean.size, size=round(flip_fraction * clean.size), replace=False)
        noisy[rows] = (clean[rows] + rng.integers(1, num_classes, size=rows.size)) % num_classes
        table[key] = noisy
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if legacy_numpy_names:
        buf = io.BytesIO()
        torch.save(table, buf, _use_new_zipfile_serialization=False)
        path.write_bytes(buf.getvalue().replace(b"numpy._core.multiarray",
                                                b"numpy.core.multiarray"))
    else:
        torch.save(table, path)
    return {key: torch.from_numpy(value) for key, value in table.items()}


# -- a researcher's own files: an image folder, an .npz archive ---------------------------------

#: Images per class of :func:`write_image_folder`'s default folder (3 classes).
FOLDER_COUNTS = {"cat": 6, "dog": 5, "emu": 4}


def write_image_folder(root: Path, counts: dict[str, int] | None = None, size: int = 8,
                       grey: bool = False, seed: int = 0) -> dict[str, torch.Tensor]:
    """PNGs ``root/CLASS/NNN.png`` of ``size x size`` random pixels (RGB unless ``grey``);
    returns each class's images as uint8 ``(n, C, H, W)`` in file order."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = {}
    for name, n in (counts or FOLDER_COUNTS).items():
        (root / name).mkdir(parents=True, exist_ok=True)
        shape = (n, size, size) if grey else (n, size, size, 3)
        pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
        for i in range(n):
            Image.fromarray(pixels[i]).save(root / name / f"{i:03d}.png")
        chw = pixels[:, None] if grey else pixels.transpose(0, 3, 1, 2)
        out[name] = torch.from_numpy(np.ascontiguousarray(chw))
    return out


def write_npz(path: Path, n: int = 30, num_classes: int = 3, size: int = 8, seed: int = 0,
              **extra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An archive with grey ``images`` (n, size, size) and ``labels`` ``i % num_classes``
    (plus ``extra`` arrays); returns (images, labels)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
    labels = np.arange(n) % num_classes
    np.savez(path, images=images, labels=labels, **extra)
    return images, labels


#: A researcher's model module (:func:`write_model_module`): ``build`` is a small CNN,
#: ``with_init`` records the ``init`` it gets, the others are wrong in one way each.
MODEL_MODULE = '''
from torch import nn


def build(num_classes, *, in_channels, width, hidden=None):
    hidden = hidden or width
    return nn.Sequential(nn.Conv2d(in_channels, hidden, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(hidden, num_classes))


def with_init(num_classes, *, in_channels, width, init):
    net = build(num_classes, in_channels=in_channels, width=width)
    net.init_name = init
    return net


def not_a_module(num_classes, *, in_channels, width):
    return "a network"


def wrong_shape(num_classes, *, in_channels, width):
    return nn.Flatten()


def raises(num_classes, *, in_channels, width):
    raise RuntimeError("out of ideas")
'''


def write_model_module(folder: Path, name: str, source: str = MODEL_MODULE) -> Path:
    """``folder/name.py`` holding ``source`` (default: :data:`MODEL_MODULE`)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(source)
    return path
