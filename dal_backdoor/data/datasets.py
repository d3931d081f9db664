"""Image data sets as uint8 tensors: CIFAR-10, CIFAR-100, Fashion-MNIST and a synthetic task.

Every data set is an :class:`ImageDataset` (uint8 images ``(N, C, H, W)`` on the CPU, int64
labels, class names, per-channel normalisation) made by :func:`create_dataset` through a
registry (``dal_backdoor.data.catalog`` declares each one with its facts).

Files are read by our own readers that follow torchvision's on-disk layouts
(``cifar-10-batches-py/``, ``cifar-100-python/``, ``FashionMNIST/raw/``); torchvision is used
only to download when ``download=True``. This avoids torchvision's md5 checks on every load,
lets tiny fake files exercise the real reading code, and gives the CIFAR-100 superclass
(coarse) labels, which torchvision does not expose. CIFAR pickles are read with an unpickler
that accepts numpy arrays and plain Python containers only.
"""

from __future__ import annotations

import codecs
import gzip
import inspect
import logging
import os
import pickle
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dal_backdoor.data.catalog import (
    CIFAR10_CLASSES,
    CIFAR10_FOLDER,
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_FINE_TO_COARSE,
    CIFAR100_FOLDER,
    CIFAR100_MEAN,
    CIFAR100_STD,
    DATASETS,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    FASHION_MNIST_SYSTEM_DIR,
    SYNTHETIC_MEAN,
    SYNTHETIC_STD,
    fashion_mnist_dirs,
    find_fashion_mnist,
    list_datasets,
)
from dal_backdoor.data.synthetic import make_synthetic
from dal_backdoor.errors import ConfigError, DataNotFoundError
from dal_backdoor.validation import MAX_SEED, check_number

log = logging.getLogger(__name__)

# Per-channel (mean, std) of each named data set of fixed shape, for code that gets only the name.
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    info.name: (info.mean, info.std) for info in DATASETS.infos() if not info.options
}


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """A labelled image set held in memory as tensors.

    ``images`` is uint8 ``(N, C, H, W)`` (CPU, contiguous), ``labels`` int64 ``(N,)``,
    ``coarse_labels`` int64 ``(N,)`` (CIFAR-100 superclasses) or None; ``mean``/``std`` are
    the per-channel normalisation constants for pixels scaled to [0, 1].
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    coarse_labels: torch.Tensor | None = None

    def __post_init__(self) -> None:
        imgs, labels = self.images, self.labels
        if imgs.dtype != torch.uint8 or imgs.ndim != 4:
            raise ConfigError(f"{self.name}: images must be uint8 (N, C, H, W), got "
                              f"{imgs.dtype} {tuple(imgs.shape)}")
        if labels.dtype != torch.int64 or labels.shape != (imgs.shape[0],):
            raise ConfigError(f"{self.name}: labels must be int64 ({imgs.shape[0]},), got "
                              f"{labels.dtype} {tuple(labels.shape)}")
        if len(self.mean) != imgs.shape[1] or len(self.std) != imgs.shape[1]:
            raise ConfigError(f"{self.name}: mean/std need {imgs.shape[1]} entries")
        if labels.numel() and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise ConfigError(f"{self.name}: labels must be in [0, {len(self.classes)}), got "
                              f"[{int(labels.min())}, {int(labels.max())}]")
        coarse = self.coarse_labels
        if coarse is not None and (coarse.dtype != torch.int64 or coarse.shape != labels.shape):
            raise ConfigError(f"{self.name}: coarse_labels must be int64 like labels")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: torch.Tensor | Sequence[int]) -> ImageDataset:
        """The samples at ``indices`` (in that order), as a new data set with copied tensors."""
        idx = torch.as_tensor(indices, dtype=torch.int64)
        if idx.ndim != 1:
            raise ConfigError(f"subset indices must be 1-D, got shape {tuple(idx.shape)}")
        n = len(self)
        if idx.numel() and (idx.min() < -n or idx.max() >= n):
            raise ConfigError(f"subset indices must be in [0, {n}); got "
                              f"[{int(idx.min())}, {int(idx.max())}]")
        coarse = None if self.coarse_labels is None else self.coarse_labels[idx].contiguous()
        return replace(self, images=self.images[idx].contiguous(),
                       labels=self.labels[idx].contiguous(), coarse_labels=coarse)


def stratified_subset_indices(
    labels: torch.Tensor, n: int, seed: int
) -> torch.Tensor:
    """``n`` sample indices, as class-balanced as the class sizes allow, sorted ascending.

    Each class gets ``n // K`` samples (K = classes present); classes too small to fill their
    share give all they have and the rest is spread over the larger classes ("water-filling");
    the few leftover samples go to classes picked at random. Deterministic given ``seed``.
    """
    labels = torch.as_tensor(labels)
    total = int(labels.numel())
    n = check_number("subset size n", n, low=1, high=max(total, 1), integer=True)
    if total == 0:
        raise ConfigError("cannot take a subset of an empty data set")
    gen = torch.Generator().manual_seed(int(seed))
    present = torch.unique(labels)
    counts = torch.stack([(labels == c).sum() for c in present])
    quota = _water_fill(counts, n, gen)
    picks = []
    for cls, q in zip(present.tolist(), quota.tolist(), strict=True):
        members = torch.nonzero(labels == cls).flatten()
        order = torch.randperm(members.numel(), generator=gen)
        picks.append(members[order[:q]])
    return torch.sort(torch.cat(picks)).values


def _water_fill(counts: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """Per-class quotas summing to ``n``, each <= its count, as equal as possible."""
    quota = torch.zeros_like(counts)
    remaining, left = n, counts.numel()
    order = torch.argsort(counts, stable=True).tolist()
    for pos, k in enumerate(order):
        if int(counts[k]) <= remaining // left:
            quota[k] = counts[k]
            remaining -= int(counts[k])
            left -= 1
            continue
        rest = torch.tensor(order[pos:])
        base, extra = divmod(remaining, rest.numel())
        quota[rest] = base
        lucky = rest[torch.randperm(rest.numel(), generator=gen)[:extra]]
        quota[lucky] += 1
        break
    return quota


# -- creation ------------------------------------------------------------------------------

def create_dataset(
    name: str, root: str | os.PathLike[str], train: bool, download: bool = False, **kwargs: Any
) -> ImageDataset:
    """Load (or generate) the ``train`` or test split of data set ``name`` under ``root``.

    ``download=True`` fetches a missing data set through torchvision; otherwise a missing one
    raises :class:`DataNotFoundError` naming where we looked and how to get it.
    """
    factory = DATASETS.get(name)
    _check_options(name, factory, kwargs)
    return factory(Path(root).expanduser(), bool(train), bool(download), **kwargs)


def _check_options(name: str, factory: Any, kwargs: dict[str, Any]) -> None:
    """Unknown keyword options are a ConfigError listing the allowed ones (not a TypeError)."""
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return  # the factory checks its own options
    allowed = [k for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} of data set {name}; "
                          f"allowed: {', '.join(allowed) or '(none)'}")


def _no_options(name: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise ConfigError(f"data set {name} takes no options; got {', '.join(sorted(kwargs))}")


# -- CIFAR ---------------------------------------------------------------------------------

_NUMPY_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts/lists/strings/numbers and numpy arrays; refuses every other global.

    The official batches were written by Python 2 (protocol 2); numpy 1 names its array
    constructor ``numpy.core.multiarray._reconstruct``, numpy 2 ``numpy._core...``.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,
        ("numpy._core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # protocol-2 pickles written by Python 3 encode raw bytes as _codecs.encode(str, enc)
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}") from None


def _load_pickle(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            obj = _ArrayUnpickler(fh, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, UnicodeDecodeError) as exc:
        raise ConfigError(f"corrupt CIFAR pickle {path}: {exc or type(exc).__name__}") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"corrupt CIFAR pickle {path}: expected a dict, got "
                          f"{type(obj).__name__}")
    return obj


@dataclass(frozen=True)
class _CifarLayout:
    name: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    names_key: str
    label_key: str
    coarse_key: str | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    url: str


_CIFAR10 = _CifarLayout(
    "cifar10", CIFAR10_FOLDER, tuple(f"data_batch_{i}" for i in range(1, 6)),
    ("test_batch",), "batches.meta", "label_names", "labels", None, CIFAR10_MEAN, CIFAR10_STD,
    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
)
_CIFAR100 = _CifarLayout(
    "cifar100", CIFAR100_FOLDER, ("train",), ("test",), "meta", "fine_label_names",
    "fine_labels", "coarse_labels", CIFAR100_MEAN, CIFAR100_STD,
    "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
)


def _cifar_missing(layout: _CifarLayout, root: Path, train: bool) -> list[Path]:
    base = root / layout.folder
    files = (*(layout.train_files if train else layout.test_files), layout.meta_file)
    return [base / f for f in files if not (base / f).is_file()]


def _download_cifar(layout: _CifarLayout, root: Path, train: bool) -> None:
    from torchvision import datasets as tvd

    cls = tvd.CIFAR10 if layout.name == "cifar10" else tvd.CIFAR100
    log.info("downloading %s to %s", layout.name, root)
    root.mkdir(parents=True, exist_ok=True)
    cls(str(root), train=train, download=True)


def _column(batch: dict[str, Any], key: str, path: Path) -> Any:
    if key not in batch:
        raise ConfigError(f"corrupt CIFAR pickle {path}: no {key!r} entry "
                          f"(has {', '.join(sorted(map(str, batch)))})")
    return batch[key]


def _read_cifar_batch(path: Path, layout: _CifarLayout) -> tuple[np.ndarray, ...]:
    batch = _load_pickle(path)
    data = np.asarray(_column(batch, "data", path))
    labels = np.asarray(_column(batch, layout.label_key, path), dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ConfigError(f"corrupt CIFAR pickle {path}: 'data' must be uint8 (N, 3072), got "
                          f"{data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise ConfigError(f"corrupt CIFAR pickle {path}: {data.shape[0]} images but "
                          f"{labels.size} labels")
    if layout.coarse_key is None:
        return data, labels
    coarse = np.asarray(_column(batch, layout.coarse_key, path), dtype=np.int64)
    if coarse.shape != labels.shape:
        raise ConfigError(f"corrupt CIFAR pickle {path}: {labels.size} labels but "
                          f"{coarse.size} coarse labels")
    return data, labels, coarse


def _load_cifar(
    layout: _CifarLayout, root: Path, train: bool, download: bool, kwargs: dict[str, Any]
) -> ImageDataset:
    _no_options(layout.name, kwargs)
    missing = _cifar_missing(layout, root, train)
    if missing and download:
        _download_cifar(layout, root, train)
        missing = _cifar_missing(layout, root, train)
    if missing:
        raise DataNotFoundError(
            f"{layout.name} not found: {root / layout.folder}/ lacks "
            f"{', '.join(p.name for p in missing)}; pass --download (download=True) to fetch "
            f"{layout.url}, or extract that archive under {root}/"
        )
    base = root / layout.folder
    parts = [_read_cifar_batch(base / f, layout)
             for f in (layout.train_files if train else layout.test_files)]
    meta = _load_pickle(base / layout.meta_file)
    classes = tuple(str(c) for c in _column(meta, layout.names_key, base / layout.meta_file))
    data = np.concatenate([p[0] for p in parts])
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    coarse = None
    if layout.coarse_key is not None:
        coarse = torch.from_numpy(np.concatenate([p[2] for p in parts]))
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return ImageDataset(layout.name, images, labels, classes, layout.mean, layout.std, coarse)


def load_cifar10(root: Path, train: bool, download: bool, **kwargs: Any) -> ImageDataset:
    """CIFAR-10: 50,000 / 10,000 RGB 32x32 images of 10 classes."""
    return _load_cifar(_CIFAR10, root, train, download, kwargs)


def load_cifar100(root: Path, train: bool, download: bool, **kwargs: Any) -> ImageDataset:
    """CIFAR-100: 50,000 / 10,000 RGB 32x32 images of 100 classes in 20 superclasses."""
    return _load_cifar(_CIFAR100, root, train, download, kwargs)


# -- Fashion-MNIST -------------------------------------------------------------------------

_IDX_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes (LeCun's MNIST format), gzipped or raw."""
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise ConfigError(f"corrupt IDX file {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE or raw[3] != ndim:
        raise ConfigError(f"corrupt IDX file {path}: magic number {raw[:4].hex() or 'missing'}"
                          f" is not 000008{ndim:02x} (unsigned bytes, {ndim} dimensions)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ConfigError(f"corrupt IDX file {path}: truncated header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise ConfigError(f"corrupt IDX file {path}: header says {dims} = {expected} bytes of "
                          f"data, file has {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_fashion_mnist(root: Path, train: bool, download: bool, **kwargs: Any) -> ImageDataset:
    """Fashion-MNIST (Xiao et al. 2017): 60,000 / 10,000 grey 28x28 images of 10 classes."""
    _no_options("fashion-mnist", kwargs)
    prefix = "train" if train else "t10k"
    found = find_fashion_mnist(root, prefix)
    if found is None and download:
        from torchvision import datasets as tvd

        log.info("downloading fashion-mnist to %s", root)
        root.mkdir(parents=True, exist_ok=True)
        tvd.FashionMNIST(str(root), train=train, download=True)
        found = find_fashion_mnist(root, prefix)
    if found is None:
        looked = ", ".join(str(d) for d in fashion_mnist_dirs(root))
        raise DataNotFoundError(
            f"fashion-mnist not found: no {prefix}-images-idx3-ubyte[.gz] and "
            f"{prefix}-labels-idx1-ubyte[.gz] in {looked}; pass --download (download=True), "
            f"or install the Debian package (apt-get install dataset-fashion-mnist)"
        )
    images = _read_idx(found[0], 3)
    labels = _read_idx(found[1], 1)
    if labels.shape[0] != images.shape[0]:
        raise ConfigError(f"fashion-mnist files disagree: {images.shape[0]} images in "
                          f"{found[0]} but {labels.shape[0]} labels in {found[1]}")
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise ConfigError(f"corrupt IDX file {found[1]}: label {int(labels.max())} is not in "
                          f"[0, {len(FASHION_MNIST_CLASSES)})")
    return ImageDataset(
        "fashion-mnist", torch.from_numpy(images.copy()).unsqueeze(1).contiguous(),
        torch.from_numpy(labels.astype(np.int64)), FASHION_MNIST_CLASSES,
        FASHION_MNIST_MEAN, FASHION_MNIST_STD,
    )


# -- synthetic -----------------------------------------------------------------------------

_SYNTHETIC_BYTES_PER_PIXEL = 13  # peak while generating: float32 signal, noise, temporaries


def _check_fits_memory(needed: int, what: str) -> None:
    """ConfigError before allocating what cannot fit in the memory available now."""
    available = _available_memory()
    if available is not None and needed > available:
        raise ConfigError(f"{what} needs about {needed / 2**30:.1f} GiB of memory; "
                          f"{available / 2**30:.1f} GiB are available (use fewer num_samples "
                          "or a smaller image_size)")


def _available_memory() -> int | None:
    """MemAvailable of /proc/meminfo in bytes (free + reclaimable cache), None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def load_synthetic(  # root and download: the loader signature of every data set
    root: Path,  # noqa: ARG001
    train: bool,
    download: bool,  # noqa: ARG001
    *,
    num_samples: int | None = None,
    num_classes: int = 10,
    image_size: int = 32,
    channels: int = 3,
    seed: int = 0,
) -> ImageDataset:
    """A seeded synthetic task (see ``dal_backdoor.data.synthetic``); needs no files.

    ``num_samples`` defaults to 10,000 for the training split and 2,000 for the test split.
    """
    if num_samples is None:
        num_samples = 10_000 if train else 2_000
    n = check_number("num_samples", num_samples, low=1, integer=True)  # memory checked below
    k = check_number("num_classes", num_classes, low=2, high=1000, integer=True)
    size = check_number("image_size", image_size, low=4, high=512, integer=True)
    c = check_number("channels", channels, low=1, high=4, integer=True)
    s = check_number("seed", seed, low=0, high=MAX_SEED, integer=True)
    _check_fits_memory(n * c * size * size * _SYNTHETIC_BYTES_PER_PIXEL,
                       f"synthetic data set of {n} images of {c}x{size}x{size}")
    images, labels = make_synthetic(n, k, size, c, s, train)
    return ImageDataset("synthetic", images, labels, tuple(f"class{i}" for i in range(k)),
                        (SYNTHETIC_MEAN,) * c, (SYNTHETIC_STD,) * c)


__all__ = [
    "CIFAR100_FINE_TO_COARSE",
    "CIFAR10_CLASSES",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_SYSTEM_DIR",
    "NORMALIZATION",
    "ImageDataset",
    "create_dataset",
    "list_datasets",
    "stratified_subset_indices",
]
