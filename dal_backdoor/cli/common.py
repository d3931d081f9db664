"""Shared console helpers for the CLI commands (the only printing code in the package)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from dal_backdoor.errors import ConfigError
from dal_backdoor.validation import check_finite

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def error_line(message: str) -> None:
    """Print one red error line on stderr (no traceback, no usage block)."""
    first = " ".join(str(message).split())  # collapse to a single line
    err_console.print(f"[bold red]Error:[/] {escape(first)}", soft_wrap=True, emoji=False)


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
    """Parse ``k=v`` strings (as given to ``--param``) into a dict, with values converted:
    true/false/yes/no (any case) -> bool, integers -> int, other numbers -> float (NaN and
    infinities are refused, -0.0 becomes 0.0), anything else stays text. Consumers check
    booleans strictly (``dal_backdoor.validation.check_bool``), so ``maybe`` is never True."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} is not of the form key=value", param_hint=option)
        key, value = pair.split("=", 1)
        key = key.strip()
        if not key:
            raise click.BadParameter(f"{pair!r} has an empty key", param_hint=option)
        if key in out:
            raise click.BadParameter(f"{key!r} is given twice", param_hint=option)
        out[key] = convert_value(key, value.strip(), option)
    return out


_BOOL_WORDS = {"true": True, "false": False, "yes": True, "no": False}


def convert_value(key: str, value: str, option: str = "--param") -> Any:
    """One ``key=value`` value as bool, int, finite float or text (see parse_key_values)."""
    lowered = value.lower()
    if lowered in _BOOL_WORDS:
        return _BOOL_WORDS[lowered]
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return value
    try:
        return check_finite(key, number)  # NaN/inf refused, -0.0 -> 0.0
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


class OutputPath(click.ParamType):
    """A path a command writes to, checked before anything is written.

    ``kind="file"``: absent or a regular file, in a writable directory (``-`` means standard
    output when ``dash`` is true). ``kind="dir"``: absent or a writable directory; ``entries``
    (names or glob patterns) inside it must not be devices, FIFOs or sockets. Never an empty
    path, never a device node, FIFO or socket.
    """

    name = "path"

    def __init__(self, kind: str = "file", *, dash: bool = False,
                 entries: tuple[str, ...] = ()) -> None:
        self.kind, self.dash, self.entries = kind, dash, entries

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Path:
        from dal_backdoor.io import check_output_dir, check_output_file

        text = os.fspath(value)
        if text == "":
            hint = " or - for standard output" if self.dash else ""
            self.fail(f"an empty path is not allowed; allowed: a {self.kind} path{hint}",
                      param, ctx)
        if self.dash and text == "-":
            return Path("-")
        what = param.opts[0] if param is not None and param.opts else "path"
        if self.kind == "dir":  # a ConfigError is one "Error:" line (dal_backdoor.cli)
            return check_output_dir(text, what, self.entries)
        return check_output_file(text, what)


def is_stdout(path: Path | None) -> bool:
    """Whether an ``OutputPath(dash=True)`` value means standard output."""
    return path is not None and str(path) == "-"


def write_output(path: Path, text: str) -> None:
    """``text`` to standard output (path ``-``) or atomically to the file ``path``."""
    from dal_backdoor.io import atomic_write_text

    if is_stdout(path):
        click.echo(text, nl=False)
        return
    atomic_write_text(path, text)
    console.print(f"wrote {escape(str(path))}")


_INTERRUPT_HINT: list[str] = []


def set_interrupt_hint(text: str) -> None:
    """What to tell the user if the command is interrupted (SIGINT/SIGTERM), e.g. how to
    resume; printed by ``dal_backdoor.cli``'s main on the same error line."""
    _INTERRUPT_HINT[:] = [text]


def take_interrupt_hint() -> str | None:
    """The hint set by the running command (and forget it)."""
    hint = _INTERRUPT_HINT[0] if _INTERRUPT_HINT else None
    _INTERRUPT_HINT.clear()
    return hint
