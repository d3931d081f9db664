"""Fixtures shared by every test. Plain helpers (running the CLI, reading its one-line errors,
folder snapshots, stores, device nodes) are in ``tests/helpers.py``; fake data-set files in
``tests/fakedata.py``."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakedata import write_model_module
from tests.helpers import make_table_store

# settings a user may have exported; a test that needs one sets it itself
_USER_SETTINGS = ("DAL_BACKDOOR_DB", "DAL_BACKDOOR_DATA", "DAL_BACKDOOR_DEBUG",
                  "DAL_BACKDOOR_CRASH_AT")


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the caller's results store, data root, debug or crash-injection setting."""
    for name in _USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def table_store(tmp_path: Path) -> Path:
    """``tmp_path/r.db``: a valid store with one finished, tagged table6/ci run."""
    return make_table_store(tmp_path / "r.db")


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh user model module (a unique name) in ``tmp_path/nets``, on sys.path."""
    name = f"usernet_{uuid.uuid4().hex[:12]}"
    write_model_module(tmp_path / "nets", name)
    monkeypatch.syspath_prepend(str(tmp_path / "nets"))
    yield name
    sys.modules.pop(name, None)
