"""``scripts/reproduce.sh``: its options, its help and its one-line errors (before any set-up)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO

SCRIPT = REPO / "scripts" / "reproduce.sh"


def _copy(tmp_path: Path) -> Path:
    """The script in a scratch checkout, so that a run that went further could write nothing
    into the repository."""
    (tmp_path / "scripts").mkdir(parents=True)
    for name in ("reproduce.sh", "setup_env.sh"):
        shutil.copy(REPO / "scripts" / name, tmp_path / "scripts" / name)
    return tmp_path / "scripts" / "reproduce.sh"


def _run(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True,
                          timeout=60, check=False)


def _options() -> list[str]:
    """The options the script's argument loop accepts."""
    loop = SCRIPT.read_text().split("while [ $# -gt 0 ]", 1)[1].split("done", 1)[0]
    return sorted(set(re.findall(r"^\s+(--[a-z-]+)\)", loop, flags=re.M)))


def test_help_and_the_error_name_every_option(tmp_path: Path) -> None:
    options = _options()
    assert options == ["--compile", "--db", "--epochs", "--grid", "--jobs", "--preset",
                       "--runs-per-gpu"]
    shown = _run(_copy(tmp_path), "--help")
    assert shown.returncode == 0
    assert all(option in shown.stdout for option in options)
    assert shown.stdout.startswith("# The main job")
    bad = _run(_copy(tmp_path / "again"), "--bogus")
    assert bad.stderr.rstrip("\n").split(", ") == [
        "reproduce.sh: unknown option '--bogus'; allowed: --grid", "--preset", "--jobs",
        "--runs-per-gpu", "--epochs", "--compile", "--db"]


@pytest.mark.parametrize(("args", "message"), [
    (["--bogus"], "unknown option '--bogus'"),
    (["--grid", "table9"], "unknown grid 'table9'; allowed: table6, table2, attacks, dose"),
    (["--preset", "huge"], "unknown preset 'huge'; allowed: small, paper, ci"),
    (["--epochs", "x"], "--epochs 'x' is not a positive whole number"),
    (["--epochs", "0"], "--epochs '0' is not a positive whole number"),
    (["--epochs", "-3"], "--epochs '-3' is not a positive whole number"),
])
def test_bad_arguments_are_one_line_and_exit_2_before_set_up(tmp_path: Path, args: list[str],
                                                            message: str) -> None:
    result = _run(_copy(tmp_path), *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert message in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scripts"]  # no venv, no results
