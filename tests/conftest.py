"""Fixtures shared by every test. Plain helpers (running the CLI, reading its one-line errors,
folder snapshots, stores, device nodes) are in ``tests/helpers.py``; fake data-set files in
``tests/fakedata.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

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
