"""The ``folder`` data set: a directory of images in class folders (torchvision's ImageFolder).

Layouts (``PATH`` is ``--dataset-param path=...``, default ``--root``):

- ``PATH/train/CLASS/...`` and ``PATH/test/CLASS/...`` (both folders present): the two splits;
  the test split may lack classes, never have others;
- else ``PATH/CLASS/...``: one set, split per class by ``test_fraction`` (default 0.2) with
  ``split_seed`` (default 0), see ``dal_backdoor.data.user_files``.

Classes are the sub-folders' names in sorted order (label ``i`` = the ``i``-th name), as
torchvision's ``ImageFolder``; images are the files with an image suffix (any case: ``.png``,
``.jpg``, ``.jpeg``, ``.bmp``, ``.ppm``, ``.pgm``, ``.tif``, ``.tiff``, ``.webp``) anywhere
below a class folder, in sorted path order; other files are ignored, and so are hidden files
and folders (names starting with ``.``, e.g. ``.ipynb_checkpoints``, which torchvision would
take as a class). All images must have one size. If every image is grey-scale (Pillow modes
``1``, ``L``, ``LA``) the data set has one channel, else every image is converted to RGB
(an alpha channel is dropped). 16-bit and float images are refused.

Content hash (``sha256``, recorded in the run's config): SHA-256 over, for each image file in
sorted order of its path relative to ``PATH`` (POSIX form), that path, a NUL byte, its size as
8 little-endian bytes, and its bytes. Renaming, adding, removing or changing one image changes
it; files that are not images do not.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dal_backdoor.data.catalog import IMAGE_SUFFIXES, DatasetInfo
from dal_backdoor.data.datasets import ImageDataset
from dal_backdoor.data.user_files import (
    FileData,
    check_class_count,
    check_classes,
    describe,
    load_split,
    resolve_params,
)
from dal_backdoor.errors import ConfigError

NAME = "folder"
_GREY_MODES = ("1", "L", "LA")
_UNSUPPORTED_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_HASH_TAG = b"dal-backdoor/folder/v1\n"


def _visible(name: str) -> bool:
    return not name.startswith(".")


def class_folders(split_dir: Path) -> list[Path]:
    """The class folders of one split, sorted by name (hidden ones left out)."""
    return sorted((p for p in split_dir.iterdir() if p.is_dir() and _visible(p.name)),
                  key=lambda p: p.name)


def image_files(class_dir: Path) -> list[Path]:
    """The image files anywhere below ``class_dir``, sorted by path (hidden ones left out)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
        dirnames[:] = [d for d in dirnames if _visible(d)]
        found.extend(Path(dirpath) / f for f in filenames
                     if _visible(f) and f.lower().endswith(IMAGE_SUFFIXES))
    return sorted(found)


def split_dirs(path: Path) -> tuple[Path, Path | None]:
    """(training folder, test folder or None) of the data at ``path``."""
    if (path / "train").is_dir() and (path / "test").is_dir():
        return path / "train", path / "test"
    return path, None


def _check_dir(path: Path) -> None:
    if not path.exists():
        raise ConfigError(f"data set {NAME}: {path} does not exist; allowed: a folder of class "
                          "folders (--dataset-param path=DIR or --root DIR)")
    if not path.is_dir():
        raise ConfigError(f"data set {NAME}: {path} is not a folder; allowed: a folder of class "
                          "folders (PATH/CLASS/*.png); for an .npz file use --dataset npz")


def _listing(split_dir: Path, classes: tuple[str, ...] | None
             ) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
    """(class names, [(file, label)]) of one split; ``classes``: the training split's (None
    for the training split itself, whose every class must hold images)."""
    train = classes is None
    names = tuple(d.name for d in class_folders(split_dir))
    if classes is None:
        classes = names
        check_class_count(NAME, str(split_dir), classes)
    extra = sorted(set(names) - set(classes))
    if extra:
        raise ConfigError(f"data set {NAME}: {split_dir} has class folder(s) {', '.join(extra)} "
                          "that the training split lacks; allowed: "
                          + ", ".join(classes))
    files = []
    for name in names:
        found = image_files(split_dir / name)
        if not found and train:
            raise ConfigError(f"data set {NAME}: class folder {split_dir / name} holds no "
                              f"images; allowed suffixes: {', '.join(IMAGE_SUFFIXES)}")
        files.extend((f, classes.index(name)) for f in found)
    return classes, files


def _decode(data: bytes, shown: str) -> np.ndarray:
    """An image's pixels: uint8 (H, W) for grey-scale, (H, W, 3) otherwise."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode in _UNSUPPORTED_MODES:
                raise ConfigError(f"data set {NAME}: {shown} is a {img.mode} (16-bit or float) "
                                  "image; allowed: 8-bit grey-scale or colour images")
            return np.asarray(img.convert("L" if img.mode in _GREY_MODES else "RGB"),
                              dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"data set {NAME}: {shown} is not a readable image "
                          f"({' '.join(str(exc).split())})") from None


def _stack(pixels: list[np.ndarray], names: list[str]) -> np.ndarray:
    """(N, C, H, W) uint8 from per-image arrays of one size (grey ones as RGB if needed)."""
    size = pixels[0].shape[:2]
    for array, shown in zip(pixels, names, strict=True):
        if array.shape[:2] != size:
            raise ConfigError(f"data set {NAME}: images differ in size: {names[0]} is "
                              f"{size[0]}x{size[1]}, {shown} is {array.shape[0]}x"
                              f"{array.shape[1]} (height x width); allowed: one size (resize "
                              "them first)")
    colour = any(a.ndim == 3 for a in pixels)
    if colour:
        pixels = [a if a.ndim == 3 else np.repeat(a[:, :, None], 3, axis=2) for a in pixels]
        return np.ascontiguousarray(np.stack(pixels).transpose(0, 3, 1, 2))
    return np.stack(pixels)[:, None]


def read_folder(path: Path) -> FileData:
    """Read, check and hash the image folder at ``path`` (see the module docstring)."""
    _check_dir(path)
    train_dir, test_dir = split_dirs(path)
    classes, train_files = _listing(train_dir, None)
    parts = [train_files]
    if test_dir is not None:
        parts.append(_listing(test_dir, classes)[1])
    digest = hashlib.sha256(_HASH_TAG)
    everything = sorted(((f.relative_to(path).as_posix(), f) for files in parts for f, _ in files))
    pixels: dict[str, np.ndarray] = {}
    for rel, file in everything:
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"data set {NAME}: {file} cannot be read ({exc.strerror})") from None
        digest.update(rel.encode() + b"\0" + len(data).to_bytes(8, "little"))
        digest.update(data)
        pixels[rel] = _decode(data, rel)
    rels = [[f.relative_to(path).as_posix() for f, _ in files] for files in parts]
    stacked = _stack([pixels[r] for group in rels for r in group], [r for g in rels for r in g])
    labels = [np.array([y for _, y in files], dtype=np.int64) for files in parts]
    n_train = len(train_files)
    test = None if test_dir is None else (stacked[n_train:], labels[1])
    check_classes(NAME, str(path), classes, labels[0])
    return FileData(digest.hexdigest(), classes, stacked[:n_train], labels[0], test)


def signature(path: Path) -> tuple[Any, ...]:
    """Every file's relative path, size and mtime (the read cache's key)."""
    if not path.is_dir():
        return ()
    out = []
    for dirpath, _, filenames in os.walk(path, followlinks=True):
        for f in filenames:
            try:
                st = os.stat(os.path.join(dirpath, f))
            except OSError:
                continue
            out.append((os.path.join(dirpath, f), st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))


def resolve_folder_params(params: Mapping[str, Any], root: str | os.PathLike[str]
                          ) -> dict[str, Any]:
    """The run's recorded options: absolute ``path``, ``sha256``, split options."""
    return resolve_params(NAME, read_folder, signature, params, root)


def describe_folder(params: Mapping[str, Any]) -> DatasetInfo:
    """The facts (classes, size, channels, normalisation) of the folder ``params`` name."""
    return describe(NAME, read_folder, signature, params)


def load_folder(  # download: the loader signature of every data set
    root: Path,
    train: bool,
    download: bool,  # noqa: ARG001
    *,
    path: str | None = None,
    sha256: str | None = None,
    test_fraction: float | None = None,
    split_seed: int | None = None,
) -> ImageDataset:
    """The ``train`` or test split of an image folder (see the module docstring)."""
    params = {"path": path, "sha256": sha256, "test_fraction": test_fraction,
              "split_seed": split_seed}
    return load_split(NAME, read_folder, signature, root, train, params)
