"""The ``folder`` and ``npz`` data sets: layouts, exact splits and pixels, normalisation from
the training images, content hashes in the run id, and one clear error per bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dal_backdoor.config import resolve_config
from dal_backdoor.data import create_dataset, dataset_info
from dal_backdoor.data.catalog import resolve_dataset_params
from dal_backdoor.data.user_files import channel_stats, fraction_split
from dal_backdoor.errors import ConfigError
from tests.fakedata import write_image_folder, write_npz


def _params(name: str, path: Path, **extra: object) -> dict:
    return resolve_dataset_params(name, {"path": str(path), **extra}, "unused-root")


def _both(name: str, params: dict) -> tuple:
    return (create_dataset(name, "unused-root", train=True, **params),
            create_dataset(name, "unused-root", train=False, **params))


# -- the split and the statistics ---------------------------------------------------------------

def test_fraction_split_rounds_half_up_and_keeps_a_training_image_per_class() -> None:
    labels = np.array([0] * 6 + [1] * 5 + [2] * 4 + [3] * 1 + [4] * 2)
    train, test = fraction_split(labels, 0.25, seed=0)
    # per class: round_half_up(0.25 n) = 2, 1 (1.25), 1, 0 (n - 1 = 0), 1 (0.5 -> 1)
    assert np.bincount(labels[test], minlength=5).tolist() == [2, 1, 1, 0, 1]
    assert np.bincount(labels[train], minlength=5).tolist() == [4, 4, 3, 1, 1]
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(labels.size))
    again = fraction_split(labels, 0.25, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(again, (train, test), strict=True))
    assert not np.array_equal(fraction_split(labels, 0.25, seed=1)[1], test)


def test_channel_stats_are_the_population_moments_of_pixels_over_255() -> None:
    images = np.array([[[[0, 255]], [[51, 51]]]], dtype=np.uint8)  # (1, 2, 1, 2)
    mean, std = channel_stats(images)
    assert mean == pytest.approx((0.5, 0.2), abs=1e-15)
    assert std == pytest.approx((0.5, 0.0), abs=1e-15)


# -- folder --------------------------------------------------------------------------------------

def test_folder_classes_counts_and_pixels(tmp_path: Path) -> None:
    written = write_image_folder(tmp_path / "imgs")
    params = _params("folder", tmp_path / "imgs")
    assert params["test_fraction"] == 0.2
    assert params["split_seed"] == 0
    train, test = _both("folder", params)
    assert train.classes == test.classes == ("cat", "dog", "emu")  # sorted folder names
    # 6, 5, 4 images: round_half_up(0.2 n) = 1 each to the test split
    assert torch.bincount(train.labels).tolist() == [5, 4, 3]
    assert torch.bincount(test.labels).tolist() == [1, 1, 1]
    assert train.images.shape == (12, 3, 8, 8)
    for label, name in enumerate(train.classes):
        pool = torch.cat([train.images[train.labels == label], test.images[test.labels == label]])
        assert sorted(map(bytes, pool.flatten(1).numpy())) == sorted(
            map(bytes, written[name].flatten(1).numpy()))
    mean, std = channel_stats(train.images.numpy())
    assert (train.mean, train.std) == (test.mean, test.std) == (mean, std)
    info = dataset_info("folder", params)
    assert (info.num_classes, info.channels, info.image_size) == (3, 3, (8, 8))
    assert (info.mean, info.std, info.classes) == (mean, std, train.classes)


def test_grey_folder_has_one_channel(tmp_path: Path) -> None:
    written = write_image_folder(tmp_path / "g", {"a": 2, "b": 2}, size=5, grey=True)
    train, test = _both("folder", _params("folder", tmp_path / "g", test_fraction=0.5))
    assert train.images.shape == test.images.shape == (2, 1, 5, 5)
    assert sorted(map(bytes, torch.cat([train.images, test.images]).flatten(1).numpy())) == \
        sorted(map(bytes, torch.cat([written["a"], written["b"]]).flatten(1).numpy()))


def test_folder_with_train_and_test_folders(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "d" / "train", {"a": 3, "b": 2, "c": 2})
    write_image_folder(tmp_path / "d" / "test", {"b": 2}, seed=1)
    params = _params("folder", tmp_path / "d")
    assert "test_fraction" not in params
    train, test = _both("folder", params)
    assert train.classes == test.classes == ("a", "b", "c")
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert test.labels.tolist() == [1, 1]
    with pytest.raises(ConfigError, match="test_fraction only apply to data without a test"):
        _params("folder", tmp_path / "d", test_fraction=0.3)
    write_image_folder(tmp_path / "d" / "test", {"z": 1})
    with pytest.raises(ConfigError, match="class folder.s. z that the training split lacks"):
        _params("folder", tmp_path / "d")


def test_folder_hash_follows_the_images_and_their_names_only(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "imgs")
    first = _params("folder", tmp_path / "imgs")["sha256"]
    (tmp_path / "imgs" / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "imgs" / ".hidden").mkdir()
    assert _params("folder", tmp_path / "imgs")["sha256"] == first
    (tmp_path / "imgs" / "dog" / "000.png").rename(tmp_path / "imgs" / "dog" / "100.png")
    renamed = _params("folder", tmp_path / "imgs")["sha256"]
    assert renamed != first
    pixels = np.zeros((8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "imgs" / "dog" / "100.png")
    assert _params("folder", tmp_path / "imgs")["sha256"] not in (first, renamed)


def test_folder_hash_is_the_documented_sha256(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "i", {"a": 1, "b": 1})
    digest = hashlib.sha256(b"dal-backdoor/folder/v1\n")
    for rel in ("a/000.png", "b/000.png"):
        data = (tmp_path / "i" / rel).read_bytes()
        digest.update(rel.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    assert _params("folder", tmp_path / "i", test_fraction=0.5)["sha256"] == digest.hexdigest()


def test_run_id_follows_the_data_content_not_its_path(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "a")
    write_image_folder(tmp_path / "b")  # the same bytes elsewhere

    def run_id(path: Path, **kw: object) -> str:
        return resolve_config(dataset="folder", device="cpu", epochs=1, target_class=0,
                              data_root=str(path), **kw).run_id  # type: ignore[arg-type]

    same = run_id(tmp_path / "a")
    assert run_id(tmp_path / "b") == same
    assert run_id(tmp_path / "a", dataset_params={"split_seed": 1}) != same
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "b" / "emu" / "000.png")
    assert run_id(tmp_path / "b") != same


def test_a_recorded_hash_refuses_changed_data(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "imgs")
    params = _params("folder", tmp_path / "imgs")
    (tmp_path / "imgs" / "cat" / "000.png").unlink()
    with pytest.raises(ConfigError, match=r"data set folder at .*imgs changed: its sha256 is "
                                          r"[0-9a-f]{64}, the run recorded " + params["sha256"]):
        create_dataset("folder", "unused-root", train=True, **params)


def _mixed_sizes(root: Path) -> None:
    write_image_folder(root, {"a": 2, "b": 1})
    Image.fromarray(np.zeros((9, 8), dtype=np.uint8)).save(root / "b" / "big.png")


def _one_class(root: Path) -> None:
    write_image_folder(root, {"only": 3})


def _empty_class(root: Path) -> None:
    write_image_folder(root, {"a": 2})
    (root / "b").mkdir()
    (root / "b" / "readme.txt").write_text("no images")


def _bad_image(root: Path) -> None:
    write_image_folder(root, {"a": 2, "b": 2})
    (root / "b" / "broken.png").write_bytes(b"not a png")


def _sixteen_bit(root: Path) -> None:
    write_image_folder(root, {"a": 2, "b": 1})
    Image.fromarray(np.zeros((8, 8), dtype=np.uint16)).save(root / "b" / "deep.png")


def _no_dir(root: Path) -> None:
    root.parent.mkdir(exist_ok=True)


def _a_file(root: Path) -> None:
    root.write_text("a file")


@pytest.mark.parametrize(("make", "match"), [
    (_mixed_sizes, r"images differ in size: a/000.png is 8x8, b/big.png is 9x8 .*allowed: one "
                   "size"),
    (_one_class, r"has 1 class\(es\) \(only\); allowed: at least 2"),
    (_empty_class, r"class folder .*/b holds no images; allowed suffixes: .png"),
    (_bad_image, r"b/broken.png is not a readable image"),
    (_sixteen_bit, r"b/deep.png is a I;16 \(16-bit or float\) image"),
    (_no_dir, r"data set folder: .*/imgs does not exist; allowed: a folder of class folders"),
    (_a_file, r"data set folder: .*/imgs is not a folder"),
])
def test_bad_folders_are_one_clear_error(tmp_path: Path, make: object, match: str) -> None:
    make(tmp_path / "imgs")  # type: ignore[operator]
    with pytest.raises(ConfigError, match=match):
        _params("folder", tmp_path / "imgs")


def test_folder_options_are_checked(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "imgs")
    with pytest.raises(ConfigError, match="unknown option.s. size of data set folder; allowed: "
                                          "path, sha256, test_fraction, split_seed"):
        _params("folder", tmp_path / "imgs", size=3)
    with pytest.raises(ConfigError, match=r"test_fraction=1(\.0)? is not in \(0, 1\)"):
        _params("folder", tmp_path / "imgs", test_fraction=1.0)
    with pytest.raises(ConfigError, match="data set folder needs its path"):
        dataset_info("folder", {"test_fraction": 0.5})
    assert dataset_info("folder").num_classes == 0  # facts come from the data only


def test_folder_path_defaults_to_the_data_root(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "imgs")
    params = resolve_dataset_params("folder", {}, tmp_path / "imgs")
    assert params["path"] == str(tmp_path / "imgs")
    assert len(create_dataset("folder", tmp_path / "imgs", train=True)) == 12


# -- npz -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["nhw", "nhwc", "nchw"])
def test_npz_layouts_give_the_same_images(tmp_path: Path, layout: str) -> None:
    rng = np.random.default_rng(0)
    chw = rng.integers(0, 256, size=(12, 3 if layout != "nhw" else 1, 6, 5), dtype=np.uint8)
    stored = {"nhw": chw[:, 0], "nhwc": chw.transpose(0, 2, 3, 1), "nchw": chw}[layout]
    labels = np.arange(12) % 2
    np.savez(tmp_path / "d.npz", x_train=stored, y_train=labels, x_test=stored[:3],
             y_test=labels[:3], classes=np.array(["no", "yes"]))
    train, test = _both("npz", _params("npz", tmp_path / "d.npz"))
    assert torch.equal(train.images, torch.from_numpy(chw))
    assert torch.equal(test.images, torch.from_numpy(chw[:3]))
    assert train.labels.tolist() == labels.tolist()
    assert train.classes == ("no", "yes")
    assert train.mean == channel_stats(chw)[0]


def test_npz_without_test_arrays_is_split_by_class(tmp_path: Path) -> None:
    write_npz(tmp_path / "d.npz", n=30, num_classes=3)
    params = _params("npz", tmp_path / "d.npz", test_fraction=0.3, split_seed=4)
    assert params["sha256"] == hashlib.sha256((tmp_path / "d.npz").read_bytes()).hexdigest()
    train, test = _both("npz", params)
    assert torch.bincount(train.labels).tolist() == [7, 7, 7]
    assert torch.bincount(test.labels).tolist() == [3, 3, 3]
    assert train.classes == ("class0", "class1", "class2")
    assert train.images.shape == (21, 1, 8, 8)


def test_npz_run_id_changes_with_the_file(tmp_path: Path) -> None:
    write_npz(tmp_path / "d.npz")

    def run_id() -> str:
        return resolve_config(dataset="npz", device="cpu", epochs=1, target_class=0,
                              dataset_params={"path": str(tmp_path / "d.npz")}).run_id

    first = run_id()
    write_npz(tmp_path / "d.npz", seed=1)
    assert run_id() != first


def _save(path: Path, **arrays: object) -> None:
    np.savez(path, **arrays)  # type: ignore[arg-type]


U8 = np.zeros((4, 8, 8), dtype=np.uint8)
Y = np.array([0, 1, 0, 1])


@pytest.mark.parametrize(("arrays", "match"), [
    ({"images": U8}, "has images/labels without labels"),
    ({"pixels": U8, "y": Y}, r"has no images/labels or x_train/y_train arrays \(it has pixels, y"),
    ({"images": U8.astype(np.float32), "labels": Y}, "array 'images' has dtype float32; "
                                                     r"allowed: uint8"),
    ({"images": np.zeros((4, 8, 8, 5), np.uint8), "labels": Y}, r"has shape \(4, 8, 8, 5\)"),
    ({"images": U8, "labels": Y[:3]}, "has 3 labels for 4 images"),
    ({"images": U8, "labels": Y - 1}, "has label -1; allowed: integers >= 0"),
    ({"images": U8, "labels": Y.astype(float)}, "array 'labels' is float64"),
    ({"images": U8, "labels": np.zeros(4, int)}, r"has 1 class\(es\)"),
    ({"images": U8, "labels": Y * 2, "classes": np.array(["a", "b"])},
     r"has label 2 but 2 class names"),
    ({"images": U8, "labels": Y, "x_train": U8, "y_train": Y}, "has both images/labels or "
                                                               "x_train/y_train"),
    ({"images": U8, "labels": Y, "x_test": np.zeros((2, 7, 8), np.uint8), "y_test": Y[:2]},
     r"test images are \(1, 7, 8\)"),
    ({"images": U8, "labels": Y, "classes": np.array([{"a": 1}], dtype=object)},
     "not a readable .npz archive of plain arrays"),
])
def test_bad_npz_is_one_clear_error(tmp_path: Path, arrays: dict, match: str) -> None:
    _save(tmp_path / "d.npz", **arrays)
    with pytest.raises(ConfigError, match=match):
        _params("npz", tmp_path / "d.npz")


def test_npz_that_is_not_an_archive(tmp_path: Path) -> None:
    np.save(tmp_path / "d.npy", U8)
    (tmp_path / "d.npz").write_bytes((tmp_path / "d.npy").read_bytes())
    with pytest.raises(ConfigError, match="not a readable .npz archive"):
        _params("npz", tmp_path / "d.npz")
    with pytest.raises(ConfigError, match=r"data set npz: .*missing.npz does not exist"):
        _params("npz", tmp_path / "missing.npz")
    with pytest.raises(ConfigError, match=r"data set npz: .* is not a file"):
        _params("npz", tmp_path)
