"""Shared console helpers for the CLI commands (the only printing code in the package)."""

from __future__ import annotations

import importlib
import os
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def error_line(message: str) -> None:
    """Print one red error line on stderr (no traceback, no usage block)."""
    first = " ".join(str(message).split())  # collapse to a single line
    err_console.print(f"[bold red]Error:[/] {escape(first)}", soft_wrap=True)


def registry_names(module: str, func: str, extra: tuple[str, ...] = ()) -> list[str]:
    """Names from a registry's ``list_*`` function for a click.Choice (``extra`` first)."""
    names = [*extra, *getattr(importlib.import_module(module), func)()]
    return list(dict.fromkeys(names))


def default_db() -> str:
    """The results store used when --db is not given."""
    return os.environ.get("DAL_BACKDOOR_DB", "results/results.db")


def default_root() -> str:
    """Where data sets are looked for when --root is not given."""
    return os.environ.get("DAL_BACKDOOR_DATA", "data")


def parse_key_values(pairs: tuple[str, ...], option: str) -> dict[str, Any]:
    """Parse ``k=v`` strings (as given to ``--param``) into a dict, with numbers converted."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} is not of the form key=value", param_hint=option)
        key, value = pair.split("=", 1)
        key = key.strip()
        if not key:
            raise click.BadParameter(f"{pair!r} has an empty key", param_hint=option)
        out[key] = _convert(value.strip())
    return out


def _convert(value: str) -> Any:
    lowered = value.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value
