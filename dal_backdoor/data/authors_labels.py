"""The DAL authors' noisy-label files for Tables 2-3, and their download.

Source: GitHub ``XiuchuanLi/DAL`` at commit ``AUTHORS_COMMIT``, folder ``label/``: one ``.npy``
int64 array of 50,000 labels per setting, ``{kind}/{dataset}_{rate}.npy``, in the order of
torchvision's CIFAR training split. The authors train all three seeds of a table cell on the
same file. ``download_authors_labels`` puts them under ``<root>/dal-labels/`` (the layout the
``paper`` preset looks for); every file is checked (a 1-D integer ``.npy`` array of 50,000
labels in range) before it is written, atomically.
"""

from __future__ import annotations

import io
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from dal_backdoor.errors import ConfigError, DataNotFoundError
from dal_backdoor.io import atomic_write_bytes

log = logging.getLogger(__name__)

AUTHORS_REPO = "XiuchuanLi/DAL"
AUTHORS_COMMIT = "3f5acc79e36cd1f54ebbc8d91042af6edbe58ca6"
#: Where ``dal-backdoor download dal-labels`` puts the files under a data root.
DAL_LABELS_DIR = "dal-labels"
#: The authors' settings: kind -> rates (%), for CIFAR-10 and CIFAR-100.
AUTHORS_SETTINGS = {"symmetric": (20, 40, 60, 80), "asymmetric": (20, 40), "instance": (20, 40)}
AUTHORS_DATASETS = {"cifar10": 10, "cifar100": 100}
NUM_TRAIN = 50_000
_TIMEOUT_S = 60

Fetch = Callable[[str], bytes]


def authors_label_names() -> list[str]:
    """``{kind}/{dataset}_{rate}`` of every file (16)."""
    return [f"{kind}/{dataset}_{rate}" for dataset in AUTHORS_DATASETS
            for kind, rates in AUTHORS_SETTINGS.items() for rate in rates]


def authors_label_path(root: str | os.PathLike[str], kind: str, dataset: str,
                       rate: float) -> Path:
    """``<root>/dal-labels/{kind}/{dataset}_{rate%}.npy`` (e.g. symmetric, cifar10, 0.4 ->
    ``.../symmetric/cifar10_40.npy``), where the download puts the file of that setting."""
    return Path(root) / DAL_LABELS_DIR / kind / f"{dataset}_{round(100 * rate)}.npy"


def authors_label_url(name: str) -> str:
    """The raw-file URL of ``{kind}/{dataset}_{rate}`` at the pinned commit."""
    return (f"https://raw.githubusercontent.com/{AUTHORS_REPO}/{AUTHORS_COMMIT}/label/"
            f"{name}.npy")


def fetch_url(url: str) -> bytes:
    """The body of ``url`` (urllib); DataNotFoundError with the reason when it cannot be read."""
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataNotFoundError(f"cannot download {url}: {reason} (offline? copy the files "
                                f"of {AUTHORS_REPO} label/ into <root>/{DAL_LABELS_DIR}/)"
                                ) from None


def check_label_bytes(data: bytes, name: str) -> np.ndarray:
    """Parse a downloaded file and check it is the authors' kind of array, else ConfigError."""
    k = AUTHORS_DATASETS[name.split("/")[1].rsplit("_", 1)[0]]
    try:
        values = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        head = data[:40].decode("ascii", "replace").splitlines()[0] if data else "empty"
        raise ConfigError(f"{name}.npy is not a .npy array (starts with {head!r})") from None
    if (values.ndim != 1 or not np.issubdtype(values.dtype, np.integer)
            or values.shape[0] != NUM_TRAIN or values.min() < 0 or values.max() >= k):
        raise ConfigError(f"{name}.npy holds a {values.dtype} array of shape {values.shape}; "
                          f"expected {NUM_TRAIN} integer labels in [0, {k})")
    return values


def _is_valid(path: Path, name: str) -> bool:
    try:
        check_label_bytes(path.read_bytes(), name)
    except (ConfigError, OSError):
        return False
    return True


def download_authors_labels(root: str | os.PathLike[str], names: Iterable[str] | None = None,
                            fetch: Fetch | None = None) -> list[tuple[Path, bool]]:
    """Fetch the authors' files (default: all) into ``<root>/dal-labels/`` with ``fetch``
    (default: ``fetch_url``). A file already there that passes the checks is kept.
    Returns (path, downloaded) per file."""
    fetch = fetch or fetch_url
    done = []
    for name in names if names is not None else authors_label_names():
        if name not in authors_label_names():
            raise ConfigError(f"unknown authors' label file {name!r}; allowed: "
                              + ", ".join(authors_label_names()))
        path = Path(root) / DAL_LABELS_DIR / f"{name}.npy"
        if _is_valid(path, name):
            done.append((path, False))
            continue
        data = fetch(authors_label_url(name))
        check_label_bytes(data, name)
        atomic_write_bytes(path, data)
        log.info("downloaded %s", path)
        done.append((path, True))
    return done
