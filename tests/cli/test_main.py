from __future__ import annotations

import subprocess
import sys

from tests.helpers import cli_env, invoke, one_error_line


def test_help_lists_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output
    for name in ("losses",):
        assert name in result.output


def test_unknown_command_is_one_line_exit_2() -> None:
    result = invoke("no-such-command")
    assert result.exit_code == 2
    assert "No such command 'no-such-command'" in one_error_line(result.output)


def test_console_script_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dal_backdoor", "--version"], capture_output=True, text=True,
        env=cli_env(),
    )
    assert proc.returncode == 0
    assert "dal-backdoor" in proc.stdout
