"""Every data set and label-noise kind, declared once with its facts (torch-free).

A data set's :class:`DatasetInfo` holds what other modules need to know without loading it:
number of classes, image size, channels, normalisation, class names and how to tell that its
files are present under a data root. Nothing outside ``dal_backdoor/data/`` hard-codes these.
Factories are ``"module:attribute"`` references imported on first use, so listing data sets
and noise kinds (``--help``, ``click.Choice``) imports no torch.

Adding a data set: a loader ``(root, train, download, **options) -> ImageDataset`` (in
``datasets.py`` or a new module) and one ``DATASETS.add`` line here with its ``DatasetInfo``.

Data sets read from a researcher's own files (``folder``: an ImageFolder directory, ``npz``:
an archive) have no fixed facts: their info declares a ``resolver`` (the options a run
records: absolute path, content hash, split) and a ``describer`` (the facts derived from the
data: classes, image size, channels, normalisation of the training images), and
``dataset_info(name, params)`` / :func:`resolve_dataset_params` use them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dal_backdoor.registry import Registry, load_reference
from dal_backdoor.validation import check_number

if TYPE_CHECKING:  # torch-free at run time
    import torch

    from dal_backdoor.data.datasets import ImageDataset

# Normalisation constants of the authors' code (XiuchuanLi/DAL), per channel.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
CIFAR100_MEAN = (0.5071, 0.4867, 0.4408)
CIFAR100_STD = (0.2675, 0.2565, 0.2761)
# Computed once over the 60,000 Fashion-MNIST training images (pixels / 255):
# mean 0.28604, std 0.35302.
FASHION_MNIST_MEAN = (0.2860,)
FASHION_MNIST_STD = (0.3530,)
# Nominal per-channel statistics of the synthetic task's pixels (measured in
# ``dal_backdoor.data.synthetic``: mean 0.50 +- 0.03, std 0.158 +- 0.003).
SYNTHETIC_MEAN = 0.5
SYNTHETIC_STD = 0.16

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
# The fine label names of the official ``meta`` pickle, in label order.
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone",
    "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm",
)
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

# The superclass (coarse label, 0..19) of each CIFAR-100 fine class 0..99, as stored in the
# ``coarse_labels`` key of the official python pickles (Krizhevsky 2009).
CIFAR100_FINE_TO_COARSE = (
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
    6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
    5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
)

# torchvision's on-disk layouts, and where the Debian package ``dataset-fashion-mnist`` puts
# the gzipped IDX files.
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR100_FOLDER = "cifar-100-python"
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


def fashion_mnist_dirs(root: Path) -> list[Path]:
    """Where Fashion-MNIST's IDX files are looked for, in order."""
    return [root, root / "FashionMNIST" / "raw", FASHION_MNIST_SYSTEM_DIR]


def idx_file(directory: Path, stem: str) -> Path | None:
    """``directory/stem`` or ``directory/stem.gz``, whichever is a file (None if neither)."""
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_fashion_mnist(root: Path, prefix: str) -> tuple[Path, Path] | None:
    """The (images, labels) IDX files of split ``prefix`` ("train" or "t10k"), or None."""
    for directory in fashion_mnist_dirs(root):
        images = idx_file(directory, f"{prefix}-images-idx3-ubyte")
        labels = idx_file(directory, f"{prefix}-labels-idx1-ubyte")
        if images is not None and labels is not None:
            return images, labels
    return None


@dataclass(frozen=True)
class DatasetInfo:
    """The facts of one data set, known without loading it.

    ``options`` are the keyword options its loader accepts (``dataset_params``); for the
    synthetic task ``num_classes``, ``image_size`` and ``channels`` are such options, and
    :meth:`with_options` gives the facts under them.

    A data set read from the user's files (``from_files``) declares ``resolver``
    (``"module:function"``, ``(params, root) -> params`` as the run records them) and
    ``describer`` (``(params) -> DatasetInfo``, the facts read from the data); its own facts
    are empty (0 classes, size 0x0, 0 channels) until :meth:`with_options` reads the data.
    """

    name: str
    title: str
    num_classes: int
    image_size: tuple[int, int]
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...]
    present: Callable[[Path], bool]
    options: tuple[str, ...] = ()
    resolver: str | None = None
    describer: str | None = None

    @property
    def from_files(self) -> bool:
        """Whether the facts come from the user's files (``folder``, ``npz``)."""
        return self.describer is not None

    def _option(self, params: Mapping[str, Any], name: str, default: int, low: int,
                high: int) -> int:
        """A shape option checked with the loader's bounds (a ConfigError, never an overflow)."""
        if name not in self.options or name not in params:
            return default
        return int(check_number(name, params[name], low=low, high=high, integer=True))

    def with_options(self, params: Mapping[str, Any]) -> DatasetInfo:
        """The facts for ``dataset_params`` (the synthetic task's shape options; for a data
        set read from files, the facts of the data that ``params["path"]`` names)."""
        if self.describer is not None:
            return load_reference(self.describer)(params)  # type: ignore[return-value]
        k = self._option(params, "num_classes", self.num_classes, 2, 1000)
        c = self._option(params, "channels", self.channels, 1, 4)
        size = self.image_size
        if "image_size" in params and "image_size" in self.options:
            side = self._option(params, "image_size", size[0], 4, 512)
            size = (side, side)
        if (k, c, size) == (self.num_classes, self.channels, self.image_size):
            return self
        return dataclasses.replace(
            self, num_classes=k, channels=c, image_size=size, mean=(self.mean[0],) * c,
            std=(self.std[0],) * c, classes=tuple(f"class{i}" for i in range(k)))


def dataset_info(name: str, params: Mapping[str, Any] | None = None) -> DatasetInfo:
    """The facts of data set ``name`` (under ``dataset_params``); ConfigError if unknown."""
    info = DATASETS.info(name)
    return info.with_options(params) if params else info


def resolve_dataset_params(name: str, params: Mapping[str, Any],
                           root: str | Path) -> dict[str, Any]:
    """The data-set options a run records: for a data set read from files, the absolute path
    (default: ``root``), the content hash and the split options (see
    ``dal_backdoor.data.user_files``); other data sets' options unchanged."""
    info = DATASETS.info(name)
    if info.resolver is None:
        return dict(params)
    return load_reference(info.resolver)(params, root)  # type: ignore[return-value]


#: Suffixes (any case) of the files the ``folder`` data set reads as images.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def folder_present(root: Path) -> bool:
    """Whether ``root`` looks like an image folder: a visible class folder (directly or under
    ``train/``) holding an image file directly."""
    base = root / "train" if (root / "train").is_dir() and (root / "test").is_dir() else root
    if not base.is_dir():
        return False
    return any(cls.is_dir() and not cls.name.startswith(".")
               and any(f.suffix.lower() in IMAGE_SUFFIXES for f in cls.iterdir())
               for cls in base.iterdir())


def dataset_present(name: str, root: str | Path) -> bool:
    """Whether data set ``name``'s training files are on disk under ``root``."""
    return DATASETS.info(name).present(Path(root).expanduser())


def list_datasets() -> list[str]:
    """Names accepted by ``create_dataset``."""
    return DATASETS.names()


DATASETS: Registry[DatasetInfo, ImageDataset] = Registry("dataset")

DATASETS.add("cifar10", "dal_backdoor.data.datasets:load_cifar10", DatasetInfo(
    "cifar10", "CIFAR-10: 50,000 / 10,000 RGB 32x32 images of 10 classes",
    10, (32, 32), 3, CIFAR10_MEAN, CIFAR10_STD, CIFAR10_CLASSES,
    present=lambda root: (root / CIFAR10_FOLDER / "data_batch_1").exists(),
))
DATASETS.add("cifar100", "dal_backdoor.data.datasets:load_cifar100", DatasetInfo(
    "cifar100", "CIFAR-100: 50,000 / 10,000 RGB 32x32 images of 100 classes in 20 superclasses",
    100, (32, 32), 3, CIFAR100_MEAN, CIFAR100_STD, CIFAR100_CLASSES,
    present=lambda root: (root / CIFAR100_FOLDER / "train").exists(),
))
DATASETS.add("fashion-mnist", "dal_backdoor.data.datasets:load_fashion_mnist", DatasetInfo(
    "fashion-mnist",
    "Fashion-MNIST (Xiao et al. 2017): 60,000 / 10,000 grey 28x28 images of 10 classes",
    10, (28, 28), 1, FASHION_MNIST_MEAN, FASHION_MNIST_STD, FASHION_MNIST_CLASSES,
    present=lambda root: find_fashion_mnist(root, "train") is not None,
))
DATASETS.add("synthetic", "dal_backdoor.data.datasets:load_synthetic", DatasetInfo(
    "synthetic", "a seeded synthetic task (dal_backdoor.data.synthetic); needs no files",
    10, (32, 32), 3, (SYNTHETIC_MEAN,) * 3, (SYNTHETIC_STD,) * 3,
    tuple(f"class{i}" for i in range(10)), present=lambda _root: True,
    options=("num_samples", "num_classes", "image_size", "channels", "seed"),
))
_FROM_FILES = ("path", "sha256", "test_fraction", "split_seed")
DATASETS.add("folder", "dal_backdoor.data.folder:load_folder", DatasetInfo(
    "folder", "your image folder: PATH/CLASS/*.png|jpg (or PATH/train/CLASS, PATH/test/CLASS);"
    " classes, size and normalisation read from the images (dataset params: path, "
    "test_fraction, split_seed)",
    0, (0, 0), 0, (), (), (), present=folder_present, options=_FROM_FILES,
    resolver="dal_backdoor.data.folder:resolve_folder_params",
    describer="dal_backdoor.data.folder:describe_folder",
))
DATASETS.add("npz", "dal_backdoor.data.npz:load_npz", DatasetInfo(
    "npz", "your .npz archive: images (N,H,W[,C] or N,C,H,W uint8) and labels (N,), optional "
    "images_test/labels_test and classes (dataset params: path, test_fraction, split_seed)",
    0, (0, 0), 0, (), (), (), present=lambda root: root.is_file() and root.suffix == ".npz",
    options=_FROM_FILES, resolver="dal_backdoor.data.npz:resolve_npz_params",
    describer="dal_backdoor.data.npz:describe_npz",
))


# -- label noise -----------------------------------------------------------------------------

@dataclass(frozen=True)
class NoiseInfo:
    """A label-noise kind: its name and one-line summary."""

    name: str
    summary: str
    #: True when the noisy labels are drawn at random (from ``noise_seed``); False for kinds
    #: that read fixed labels (or change none), for which the noise seed has no effect.
    drawn: bool = True


def list_noise_kinds() -> list[str]:
    """Names accepted by ``make_noisy_labels`` (``none`` first)."""
    return NOISE_KINDS.names()


NOISE_KINDS: Registry[NoiseInfo, tuple[torch.Tensor, float | None]] = Registry("noise kind")

_NOISE = "dal_backdoor.data.noise:"
NOISE_KINDS.add("none", _NOISE + "_none", NoiseInfo(
    "none", "identity (clean labels); the rate must be 0", drawn=False))
NOISE_KINDS.add("symmetric", _NOISE + "_symmetric", NoiseInfo(
    "symmetric", "with probability rate resample uniformly (from all K, or the K-1 others)"))
NOISE_KINDS.add("asymmetric", _NOISE + "_asymmetric", NoiseInfo(
    "asymmetric", "class-dependent flips (CIFAR-10 pairs, CIFAR-100 superclass cycles, "
                  "else i -> i+1)"))
NOISE_KINDS.add("instance", _NOISE + "_instance", NoiseInfo(
    "instance", "instance-dependent flips (Xia et al. 2020, part-dependent label noise)"))
NOISE_KINDS.add("cifar-n", _NOISE + "_cifar_n", NoiseInfo(
    "cifar-n", "the human labels of CIFAR-10N / CIFAR-100N from the official .pt file",
    drawn=False))
NOISE_KINDS.add("file", _NOISE + "_file", NoiseInfo(
    "file", "noisy labels read from a .npy file (noise param labels_path), e.g. the DAL "
            "authors' label files", drawn=False))
