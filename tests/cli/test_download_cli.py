"""``dal-backdoor download dal-labels``: the authors' label files, without the network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dal_backdoor.data import authors_labels
from tests.helpers import assert_cli_error, invoke


def test_download_dal_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[str] = []

    def fetch(url: str) -> bytes:
        served.append(url)
        k = 100 if "cifar100" in url else 10
        path = tmp_path / "served.npy"
        np.save(path, np.arange(50_000, dtype=np.int64) % k)
        return path.read_bytes()

    monkeypatch.setattr(authors_labels, "fetch_url", fetch)
    root = tmp_path / "data"
    result = invoke("download", "dal-labels", "--root", str(root))
    assert result.exit_code == 0, result.output
    assert (f"ok dal-labels: 16 label files under {root}/dal-labels (16 downloaded, 0 already "
            "there) from XiuchuanLi/DAL@3f5acc79e36c") in " ".join(result.output.split())
    assert len(served) == 16
    assert np.load(root / "dal-labels" / "instance" / "cifar100_40.npy").max() == 99
    again = invoke("download", "dal-labels", "--root", str(root))
    assert "(0 downloaded, 16 already there)" in " ".join(again.output.split())


def test_download_dal_labels_offline_is_one_error_line(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.error
    import urllib.request

    def offline(*_args: object, **_kwargs: object) -> bytes:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    result = invoke("download", "dal-labels", "--root", str(tmp_path))
    line = assert_cli_error(result)
    assert line.startswith("Error: cannot download https://raw.")
    assert "no network" in line


def test_download_does_not_offer_synthetic(tmp_path: Path) -> None:
    result = invoke("download", "synthetic", "--root", str(tmp_path))
    assert result.exit_code == 2
    assert "synthetic is generated on the fly, there is nothing to download" in result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.iterdir())
    help_text = invoke("download", "--help").output
    assert "synthetic" not in help_text.split("Usage:")[1].split("\n")[0]


@pytest.mark.parametrize("name", ["folder", "npz"])
def test_download_does_not_offer_data_read_from_your_files(tmp_path: Path, name: str) -> None:
    result = invoke("download", name, "--root", str(tmp_path))
    assert result.exit_code == 2
    assert f"{name} reads your own files, there is nothing to download" in result.output
    assert not list(tmp_path.iterdir())
