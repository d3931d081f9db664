"""``dal-backdoor triggers``: the available backdoor triggers and their parameters."""

from __future__ import annotations

from typing import Any

import click
from rich import box
from rich.markup import escape
from rich.table import Table

from dal_backdoor.cli.common import console


def _shown(value: Any) -> str:
    return "none" if value is None else str(value)


def triggers_table() -> Table:
    """One block per trigger: its name and description, then each parameter, default, meaning."""
    from triggers import list_triggers, trigger_info

    table = Table(title="backdoor triggers (set parameters with --trigger-param K=V)",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("trigger", style="bold", no_wrap=True)
    table.add_column("parameter", no_wrap=True)
    table.add_column("default", no_wrap=True)
    table.add_column("description / meaning")
    for name in list_triggers():
        info = trigger_info(name)
        text = f"[italic]{escape(info.summary)}[/]"
        if info.threat_model:
            text += f"\n[dim]threat model: {escape(info.threat_model)}[/]"
        table.add_row(name, "", "", text, end_section=not info.params)
        for i, p in enumerate(info.params):
            table.add_row("", p.name, escape(_shown(p.default)), escape(p.help),
                          end_section=i == len(info.params) - 1)
    return table


@click.command(name="triggers")
def command() -> None:
    """List the backdoor triggers, what they do, and their parameters with defaults.

    \b
    Examples:
      dal-backdoor triggers
      dal-backdoor poison --trigger global --trigger-param amplitude=32/255 --out p/
    """
    console.print(triggers_table())
