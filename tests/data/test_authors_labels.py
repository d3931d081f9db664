"""The DAL authors' label files: names, URLs, checks, and the download (no network: the fetch
function is replaced by one serving the reference copies)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest

from dal_backdoor.data import authors_labels
from dal_backdoor.data.authors_labels import (
    authors_label_names,
    authors_label_path,
    authors_label_url,
    check_label_bytes,
    download_authors_labels,
    fetch_url,
)
from dal_backdoor.errors import ConfigError, DataNotFoundError
from tests.reference import reference_file

PREFIX = ("https://raw.githubusercontent.com/XiuchuanLi/DAL/"
          "3f5acc79e36cd1f54ebbc8d91042af6edbe58ca6/label/")


def _npy(values: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, values)
    return buf.getvalue()


def test_sixteen_files_at_the_pinned_commit() -> None:
    names = authors_label_names()
    assert len(names) == 16
    assert names[0] == "symmetric/cifar10_20"
    assert names[-1] == "instance/cifar100_40"
    assert authors_label_url("asymmetric/cifar100_40") == PREFIX + "asymmetric/cifar100_40.npy"
    assert authors_label_path("/d", "asymmetric", "cifar100", 0.4) == Path(
        "/d/dal-labels/asymmetric/cifar100_40.npy")


def test_downloaded_bytes_are_checked() -> None:
    ok = np.arange(50_000, dtype=np.int64) % 10
    assert np.array_equal(check_label_bytes(_npy(ok), "symmetric/cifar10_20"), ok)
    with pytest.raises(ConfigError, match=r"expected 50000 integer labels in \[0, 10\)"):
        check_label_bytes(_npy(ok + 1), "symmetric/cifar10_20")
    with pytest.raises(ConfigError, match=r"holds a int64 array of shape \(10,\)"):
        check_label_bytes(_npy(ok[:10]), "symmetric/cifar100_20")
    pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\n"
    with pytest.raises(ConfigError, match=r"is not a \.npy array \(starts with 'version https"):
        check_label_bytes(pointer, "instance/cifar10_40")


def _serve_reference(calls: list[str]):
    def fetch(url: str) -> bytes:
        assert url.startswith(PREFIX)
        calls.append(url)
        return reference_file("dal-authors-labels/" + url[len(PREFIX):]).read_bytes()
    return fetch


def test_download_writes_the_authors_files_and_keeps_valid_ones(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    calls: list[str] = []
    monkeypatch.setattr(authors_labels, "fetch_url", _serve_reference(calls))
    done = download_authors_labels(tmp_path)
    assert len(done) == 16
    assert all(downloaded for _, downloaded in done)
    assert len(calls) == 16
    for path, _ in done:
        name = path.relative_to(tmp_path / "dal-labels").as_posix()
        source = reference_file(f"dal-authors-labels/{name}")
        assert (hashlib.sha256(path.read_bytes()).hexdigest()
                == hashlib.sha256(source.read_bytes()).hexdigest())
    assert not list((tmp_path / "dal-labels").rglob("*.tmp"))
    # a second run only checks; a damaged file is fetched again
    damaged = tmp_path / "dal-labels" / "symmetric" / "cifar10_40.npy"
    damaged.write_bytes(b"garbage")
    again = download_authors_labels(tmp_path)
    assert [p for p, downloaded in again if downloaded] == [damaged]
    assert len(calls) == 17


def test_offline_is_one_clear_error_and_writes_nothing(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.error
    import urllib.request

    def offline(*_args: object, **_kwargs: object) -> bytes:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataNotFoundError) as err:
        fetch_url(PREFIX + "symmetric/cifar10_20.npy")
    message = str(err.value)
    assert message.startswith(f"cannot download {PREFIX}symmetric/cifar10_20.npy: [Errno -3]")
    assert "offline?" in message
    assert "\n" not in message
    with pytest.raises(DataNotFoundError):
        download_authors_labels(tmp_path)
    assert not (tmp_path / "dal-labels").exists() or not list((tmp_path / "dal-labels").rglob(
        "*"))


def test_a_bad_download_is_not_written(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a .npy array"):
        download_authors_labels(tmp_path, ["symmetric/cifar10_20"], fetch=lambda _url: b"<html>")
    assert not (tmp_path / "dal-labels" / "symmetric" / "cifar10_20.npy").exists()
    with pytest.raises(ConfigError, match=r"unknown authors' label file 'symmetric/mnist_20'"):
        download_authors_labels(tmp_path, ["symmetric/mnist_20"], fetch=lambda _url: b"")
