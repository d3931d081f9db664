"""Data sets: the real readers on fake files, the synthetic task, subsets, and every error."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from dal_backdoor.data import (
    ImageDataset,
    catalog,
    create_dataset,
    list_datasets,
    stratified_subset_indices,
)
from dal_backdoor.data.datasets import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_FINE_TO_COARSE,
    CIFAR100_MEAN,
    CIFAR100_STD,
    FASHION_MNIST_CLASSES,
)
from dal_backdoor.errors import ConfigError, DataNotFoundError
from tests.fakedata import (
    idx_bytes,
    write_fake_cifar10,
    write_fake_cifar100,
    write_fake_fashion_mnist,
    write_idx,
)


@pytest.fixture
def no_system_fmnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the Debian fallback directory at an empty tmp dir (tests must not see /usr)."""
    empty = tmp_path / "system-fmnist"
    empty.mkdir()
    monkeypatch.setattr(catalog, "FASHION_MNIST_SYSTEM_DIR", empty)
    return empty


def test_registry_names() -> None:
    assert list_datasets() == ["cifar10", "cifar100", "fashion-mnist", "synthetic", "folder", "npz"]


# -- CIFAR -----------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", [2, 4])
def test_cifar10_reads_the_batches(tmp_path: Path, protocol: int) -> None:
    fake = write_fake_cifar10(tmp_path, n_train=53, n_test=17, protocol=protocol)
    for split, train in (("train", True), ("test", False)):
        ds = create_dataset("cifar10", tmp_path, train=train)
        assert ds.name == "cifar10"
        assert ds.images.shape == (len(fake[split].labels), 3, 32, 32)
        assert ds.images.dtype == torch.uint8
        assert ds.images.is_contiguous()
        assert torch.equal(ds.images, fake[split].images)
        assert torch.equal(ds.labels, fake[split].labels)
        assert ds.labels.dtype == torch.int64
        assert ds.classes == CIFAR10_CLASSES
        assert (ds.mean, ds.std) == (CIFAR10_MEAN, CIFAR10_STD)
        assert ds.coarse_labels is None
        assert (ds.num_classes, ds.channels, ds.image_size) == (10, 3, (32, 32))


def test_cifar100_reads_fine_and_coarse_labels(tmp_path: Path) -> None:
    fake = write_fake_cifar100(tmp_path, n_train=230, n_test=40)
    ds = create_dataset("cifar100", tmp_path, train=True)
    assert torch.equal(ds.images, fake["train"].images)
    assert torch.equal(ds.labels, fake["train"].labels)
    assert torch.equal(ds.coarse_labels, fake["train"].coarse_labels)
    assert torch.equal(ds.coarse_labels, torch.tensor(CIFAR100_FINE_TO_COARSE)[ds.labels])
    assert ds.classes[:3] == ("fine0", "fine1", "fine2")
    assert ds.num_classes == 100
    assert (ds.mean, ds.std) == (CIFAR100_MEAN, CIFAR100_STD)
    test = create_dataset("cifar100", tmp_path, train=False)
    assert torch.equal(test.labels, fake["test"].labels)


def test_cifar100_superclass_table_has_the_paper_example() -> None:
    table = torch.tensor(CIFAR100_FINE_TO_COARSE)
    assert table.numel() == 100
    assert torch.equal(torch.bincount(table), torch.full((20,), 5))
    # vehicle1 (superclass 18): bicycle 8, bus 13, motorcycle 48, pickup truck 58, train 90
    assert torch.nonzero(table == 18).flatten().tolist() == [8, 13, 48, 58, 90]


def test_cifar_missing_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError) as err:
        create_dataset("cifar10", tmp_path, train=True)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"{tmp_path / 'cifar-10-batches-py'}/ lacks data_batch_1" in msg
    assert "--download" in msg
    assert "cifar-10-python.tar.gz" in msg


def test_cifar_missing_meta_only(tmp_path: Path) -> None:
    write_fake_cifar100(tmp_path, n_train=10, n_test=10)
    (tmp_path / "cifar-100-python" / "meta").unlink()
    with pytest.raises(DataNotFoundError, match=r"cifar-100-python/ lacks meta;"):
        create_dataset("cifar100", tmp_path, train=False)


class _Evil:
    def __reduce__(self) -> tuple:
        return (eval, ("1 + 1",))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not a pickle at all", "corrupt CIFAR pickle"),
        (pickle.dumps({"data": _Evil()}, protocol=2), "refusing to load global __builtin__.eval"),
        (pickle.dumps([1, 2, 3], protocol=2), "expected a dict, got list"),
        (pickle.dumps({"labels": [0]}, protocol=2), "no 'data' entry (has labels)"),
        (pickle.dumps({"data": np.zeros((2, 10), np.uint8), "labels": [0, 1]}, protocol=2),
         "'data' must be uint8 (N, 3072)"),
        (pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, protocol=2),
         "2 images but 1 labels"),
    ],
    ids=["garbage", "evil-global", "list", "no-data", "bad-shape", "label-count"],
)
def test_cifar_corrupt_batch(tmp_path: Path, payload: bytes, message: str) -> None:
    write_fake_cifar10(tmp_path, n_train=10, n_test=5)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(payload)
    with pytest.raises(ConfigError) as err:
        create_dataset("cifar10", tmp_path, train=False)
    assert message in str(err.value)
    assert "test_batch" in str(err.value)


def test_cifar_truncated_batch(tmp_path: Path) -> None:
    write_fake_cifar10(tmp_path, n_train=10, n_test=5)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ConfigError, match=r"corrupt CIFAR pickle .*data_batch_3"):
        create_dataset("cifar10", tmp_path, train=True)


def test_cifar_legacy_numpy_names(tmp_path: Path) -> None:
    """The official pickles name numpy 1's ``numpy.core.multiarray._reconstruct``."""
    fake = write_fake_cifar10(tmp_path, n_train=10, n_test=6)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    raw = path.read_bytes()
    assert b"numpy._core.multiarray" in raw
    path.write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    ds = create_dataset("cifar10", tmp_path, train=False)
    assert torch.equal(ds.images, fake["test"].images)


def test_cifar_rejects_options(tmp_path: Path) -> None:
    write_fake_cifar10(tmp_path, n_train=10, n_test=5)
    with pytest.raises(ConfigError, match="data set cifar10 takes no options; got num_samples"):
        create_dataset("cifar10", tmp_path, train=True, num_samples=5)


def test_cifar_download_goes_through_torchvision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets as tvd

    calls = []

    class FakeCIFAR10:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            calls.append((root, train, download))
            write_fake_cifar10(root, n_train=10, n_test=4)

    monkeypatch.setattr(tvd, "CIFAR10", FakeCIFAR10)
    ds = create_dataset("cifar10", tmp_path / "new", train=False, download=True)
    assert calls == [(str(tmp_path / "new"), False, True)]
    assert len(ds) == 4
    create_dataset("cifar10", tmp_path / "new", train=True, download=True)
    assert len(calls) == 1  # present now: no second download


# -- Fashion-MNIST ---------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("sub", [".", "FashionMNIST/raw"])
@pytest.mark.usefixtures("no_system_fmnist")
def test_fashion_mnist_reads_idx(tmp_path: Path, compress: bool, sub: str) -> None:
    fake = write_fake_fashion_mnist(tmp_path / sub, n_train=23, n_test=11, compress=compress)
    for split, train in (("train", True), ("test", False)):
        ds = create_dataset("fashion-mnist", tmp_path, train=train)
        assert ds.images.shape == (len(fake[split].labels), 1, 28, 28)
        assert ds.images.is_contiguous()
        assert torch.equal(ds.images, fake[split].images)
        assert torch.equal(ds.labels, fake[split].labels)
        assert ds.classes == FASHION_MNIST_CLASSES
        assert ds.mean == (0.2860,)
        assert ds.std == (0.3530,)


def test_fashion_mnist_debian_fallback(tmp_path: Path, no_system_fmnist: Path) -> None:
    fake = write_fake_fashion_mnist(no_system_fmnist, n_train=12, n_test=7, compress=True)
    ds = create_dataset("fashion-mnist", tmp_path / "empty-root", train=False)
    assert torch.equal(ds.images, fake["test"].images)
    assert torch.equal(ds.labels, fake["test"].labels)


def test_fashion_mnist_root_wins_over_fallback(tmp_path: Path, no_system_fmnist: Path) -> None:
    write_fake_fashion_mnist(no_system_fmnist, n_train=12, n_test=7, seed=1)
    mine = write_fake_fashion_mnist(tmp_path / "root", n_train=5, n_test=3, seed=2)
    ds = create_dataset("fashion-mnist", tmp_path / "root", train=True)
    assert torch.equal(ds.labels, mine["train"].labels)


def test_fashion_mnist_missing(tmp_path: Path, no_system_fmnist: Path) -> None:
    with pytest.raises(DataNotFoundError) as err:
        create_dataset("fashion-mnist", tmp_path, train=True)
    msg = str(err.value)
    assert "no train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]" in msg
    assert str(tmp_path / "FashionMNIST" / "raw") in msg
    assert str(no_system_fmnist) in msg
    assert "--download" in msg
    assert "apt-get install dataset-fashion-mnist" in msg


@pytest.mark.usefixtures("no_system_fmnist")
def test_fashion_mnist_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets as tvd

    calls = []

    class FakeFMNIST:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            calls.append((root, train, download))
            write_fake_fashion_mnist(Path(root) / "FashionMNIST" / "raw", n_train=6, n_test=4,
                                     compress=False)

    monkeypatch.setattr(tvd, "FashionMNIST", FakeFMNIST)
    ds = create_dataset("fashion-mnist", tmp_path, train=True, download=True)
    assert calls == [(str(tmp_path), True, True)]
    assert len(ds) == 6


def _write_fmnist_with(tmp_path: Path, images: bytes | None = None,
                       labels: bytes | None = None) -> None:
    write_fake_fashion_mnist(tmp_path, n_train=4, n_test=4, compress=False)
    if images is not None:
        (tmp_path / "train-images-idx3-ubyte").write_bytes(images)
    if labels is not None:
        (tmp_path / "train-labels-idx1-ubyte").write_bytes(labels)


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (idx_bytes(np.zeros(4, np.uint8)), None,
         "magic number 00000801 is not 00000803 (unsigned bytes, 3 dimensions)"),
        (b"\x00\x00\x08", None, "magic number 000008 is not 00000803"),
        (idx_bytes(np.zeros((4, 28, 28), np.uint8))[:-5], None,
         "header says (4, 28, 28) = 3136 bytes of data, file has 3131"),
        (idx_bytes(np.zeros((4, 28, 28), np.uint8))[:10], None, "truncated header"),
        (None, idx_bytes(np.zeros(3, np.uint8)), "4 images in"),
        (None, idx_bytes(np.full(4, 10, np.uint8)), "label 10 is not in [0, 10)"),
        (gzip.compress(idx_bytes(np.zeros((4, 28, 28), np.uint8)))[:-20], None,
         "corrupt IDX file"),
    ],
    ids=["labels-magic", "short-magic", "truncated-data", "truncated-header", "count-mismatch",
         "label-range", "truncated-gzip"],
)
@pytest.mark.usefixtures("no_system_fmnist")
def test_fashion_mnist_corrupt(
    tmp_path: Path, images: bytes | None, labels: bytes | None, message: str
) -> None:
    _write_fmnist_with(tmp_path, images, labels)
    with pytest.raises(ConfigError) as err:
        create_dataset("fashion-mnist", tmp_path, train=True)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_write_idx_roundtrip(tmp_path: Path) -> None:
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "x.gz", arr)
    raw = gzip.decompress(path.read_bytes())
    assert raw[:4] == b"\x00\x00\x08\x03"
    assert [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(3)] == [2, 3, 4]
    assert raw[16:] == arr.tobytes()


# -- synthetic -------------------------------------------------------------------------------

def _spectrum(images: torch.Tensor) -> torch.Tensor:
    x = images.float()
    return torch.fft.fft2(x - x.mean(dim=(2, 3), keepdim=True)).abs().flatten(1)


def test_synthetic_shapes_and_defaults() -> None:
    ds = create_dataset("synthetic", "unused", train=False, num_samples=50, num_classes=5,
                        image_size=28, channels=1, seed=3)
    assert ds.images.shape == (50, 1, 28, 28)
    assert ds.images.dtype == torch.uint8
    assert ds.classes == ("class0", "class1", "class2", "class3", "class4")
    assert torch.equal(torch.bincount(ds.labels), torch.full((5,), 10))  # balanced
    assert ds.mean == (0.5,)
    assert ds.std == (0.16,)
    assert len(create_dataset("synthetic", "unused", train=False)) == 2000


def test_synthetic_deterministic_and_seeded() -> None:
    a = create_dataset("synthetic", "x", train=True, num_samples=200, seed=1)
    b = create_dataset("synthetic", "x", train=True, num_samples=200, seed=1)
    c = create_dataset("synthetic", "x", train=True, num_samples=200, seed=2)
    test = create_dataset("synthetic", "x", train=False, num_samples=200, seed=1)
    assert torch.equal(a.images, b.images)
    assert torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)
    assert not torch.equal(a.images, test.images)


def test_synthetic_train_and_test_share_the_task() -> None:
    """Class textures are fixed by the seed: spectrum centroids of train classify test."""
    train = create_dataset("synthetic", "x", train=True, num_samples=2000, seed=5)
    test = create_dataset("synthetic", "x", train=False, num_samples=500, seed=5)
    other = create_dataset("synthetic", "x", train=False, num_samples=500, seed=6)
    feats = _spectrum(train.images)
    centroids = torch.stack([feats[train.labels == k].mean(0) for k in range(10)])

    def accuracy(d: ImageDataset) -> float:
        pred = torch.cdist(_spectrum(d.images), centroids).argmin(1)
        return float((pred == d.labels).float().mean())

    assert accuracy(test) > 0.95
    assert accuracy(other) < 0.3  # another seed is another task


def test_synthetic_not_separable_by_one_pixel() -> None:
    train = create_dataset("synthetic", "x", train=True, num_samples=2000, seed=0)
    test = create_dataset("synthetic", "x", train=False, num_samples=400, seed=0)
    f, ft = train.images.flatten(1).float(), test.images.flatten(1).float()
    means = torch.stack([f[train.labels == k].mean(0) for k in range(10)])  # (10, D)
    pred = (ft[:, :, None] - means.T[None]).abs().argmin(dim=2)  # per-pixel nearest mean
    per_pixel_acc = (pred == test.labels[:, None]).float().mean(dim=0)
    assert float(per_pixel_acc.max()) < 0.25


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 1}, "num_classes=1 is not in [2, 1000]"),
        ({"num_samples": 0}, "num_samples=0 is not in [1, inf)"),
        ({"image_size": 2}, "image_size=2 is not in [4, 512]"),
        ({"channels": 1.5}, "channels=1.5 is not an integer"),
    ],
)
def test_synthetic_bad_options(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        create_dataset("synthetic", "x", train=True, **kwargs)
    assert message in str(err.value)


def test_unknown_dataset() -> None:
    with pytest.raises(ConfigError, match="unknown dataset 'mnist'; allowed: cifar10, cifar100, "
                                          "fashion-mnist, synthetic"):
        create_dataset("mnist", "x", train=True)


# -- ImageDataset and subsets ----------------------------------------------------------------

def _toy(n: int = 12) -> ImageDataset:
    images = torch.arange(n * 3 * 2 * 2, dtype=torch.int64).remainder(256).to(torch.uint8)
    return ImageDataset("toy", images.view(n, 3, 2, 2), torch.arange(n) % 3, ("a", "b", "c"),
                        (0.5,) * 3, (0.2,) * 3, coarse_labels=torch.arange(n) % 2)


def test_subset_takes_rows_in_order() -> None:
    ds = _toy()
    sub = ds.subset(torch.tensor([5, 0, 7]))
    assert torch.equal(sub.images, ds.images[[5, 0, 7]])
    assert sub.labels.tolist() == [2, 0, 1]
    assert sub.coarse_labels.tolist() == [1, 0, 1]
    assert sub.images.is_contiguous()
    assert sub.classes == ds.classes
    assert len(sub) == 3


def test_subset_out_of_range() -> None:
    with pytest.raises(ConfigError, match=r"subset indices must be in \[0, 12\); got \[0, 12\]"):
        _toy().subset([0, 12])


def test_dataset_validation() -> None:
    with pytest.raises(ConfigError, match=r"labels must be in \[0, 2\), got \[0, 2\]"):
        ImageDataset("bad", torch.zeros(3, 1, 2, 2, dtype=torch.uint8), torch.arange(3),
                     ("a", "b"), (0.5,), (0.2,))
    with pytest.raises(ConfigError, match="images must be uint8"):
        ImageDataset("bad", torch.zeros(3, 1, 2, 2), torch.arange(3), ("a", "b", "c"),
                     (0.5,), (0.2,))


def test_stratified_subset_is_balanced_sorted_and_seeded() -> None:
    labels = torch.arange(1000) % 10
    idx = stratified_subset_indices(labels, 55, seed=0)
    assert idx.numel() == 55
    assert torch.equal(idx, torch.sort(idx).values)
    assert idx.unique().numel() == 55
    counts = torch.bincount(labels[idx], minlength=10)
    assert sorted(counts.tolist()) == [5] * 5 + [6] * 5
    assert torch.equal(idx, stratified_subset_indices(labels, 55, seed=0))
    assert not torch.equal(idx, stratified_subset_indices(labels, 55, seed=1))


def test_stratified_subset_water_fills_small_classes() -> None:
    labels = torch.cat([torch.zeros(2), torch.ones(50), torch.full((50,), 2)]).long()
    idx = stratified_subset_indices(labels, 30, seed=3)
    assert torch.bincount(labels[idx]).tolist() == [2, 14, 14]
    idx = stratified_subset_indices(labels, 31, seed=3)
    assert sorted(torch.bincount(labels[idx]).tolist()) == [2, 14, 15]
    assert torch.equal(stratified_subset_indices(labels, 102, seed=0), torch.arange(102))


def test_stratified_subset_bad_size() -> None:
    with pytest.raises(ConfigError, match=r"subset size n=11 is not in \[1, 10\]"):
        stratified_subset_indices(torch.arange(10), 11, seed=0)
