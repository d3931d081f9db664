"""The installed distribution provides both top-level packages, and ``triggers`` is ours."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import dal_backdoor

REPO = Path(__file__).resolve().parent.parent


def test_triggers_is_our_package() -> None:
    import triggers

    assert Path(triggers.__file__).resolve().parent == REPO / "triggers"
    assert hasattr(triggers, "create_trigger")
    assert hasattr(triggers, "list_triggers")
    assert {"local", "global"} <= set(triggers.list_triggers())


def test_triggers_import_from_outside_the_repo(tmp_path: Path) -> None:
    # From another working directory, ``import triggers`` must still resolve to this project.
    code = "import triggers, dal_backdoor; print(triggers.__file__); print(dal_backdoor.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.split()
    assert Path(out[0]).resolve() == REPO / "triggers" / "__init__.py"
    assert Path(out[1]).resolve() == REPO / "dal_backdoor" / "__init__.py"


def test_distribution_metadata() -> None:
    dist = importlib.metadata.distribution("dal-backdoor")
    assert dist.version == dal_backdoor.__version__
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert scripts["dal-backdoor"] == "dal_backdoor.cli:main"
    requires = " ".join(dist.requires or [])
    for dep in ("torch", "torchvision", "numpy", "pillow", "click", "rich"):
        assert dep in requires
    assert dist.metadata["Requires-Python"] == ">=3.10"


def test_pyproject_declares_both_packages() -> None:
    import tomllib

    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert data["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == [
        "dal_backdoor",
        "triggers",
    ]
    assert set(data["project"]["optional-dependencies"]) >= {"dev", "plot", "ray"}
