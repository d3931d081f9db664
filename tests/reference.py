"""Where the reference data from the paper's sources lies (``../shared/reference``, README there).

Looked up beside the repository root first (``<repo>/../shared/reference``), then at
``/work/shared/reference``; tests that need a file skip with the reason when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
_CANDIDATES = (REPO_ROOT.parent / "shared" / "reference", Path("/work/shared/reference"))


def reference_dir() -> Path | None:
    """The reference folder, or None when it is on neither path."""
    return next((p for p in _CANDIDATES if p.is_dir()), None)


def reference_file(relative: str) -> Path:
    """``relative`` under the reference folder; skips the calling test when it is missing."""
    root = reference_dir()
    if root is None or not (root / relative).is_file():
        pytest.skip(f"reference file {relative} not found under "
                    + " or ".join(str(p) for p in _CANDIDATES))
    return root / relative
