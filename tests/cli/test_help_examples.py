"""Every command's ``--help`` shows an example (the README promises it)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from dal_backdoor.cli import cli

COMMANDS = cli.list_commands(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_an_example(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    assert "Example" in result.output
    example = result.output.split("Example", 1)[1]
    assert f"dal-backdoor {command}" in example
