from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from dal_backdoor.cli import cli


def test_help_lists_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output
    for name in ("losses",):
        assert name in result.output


def test_unknown_command_is_one_line_exit_2() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "No such command 'no-such-command'" in lines[0]
    assert "Traceback" not in result.output


def test_console_script_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dal_backdoor", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert "dal-backdoor" in proc.stdout
