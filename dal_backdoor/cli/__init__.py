"""The ``dal-backdoor`` command line: one module per command in this package.

Each module ``dal_backdoor/cli/<name>.py`` defines a click command called ``command``; the
module name (underscores become dashes) is the command name, so adding a command is one file.
Heavy imports (torch) happen inside the commands, keeping ``--help`` fast. This package is the
only place that prints.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import logging
import os
import pkgutil
import signal
import sys
import threading
from collections.abc import Iterator
from typing import NoReturn

import click

from dal_backdoor import __version__
from dal_backdoor.cli.common import error_line, take_interrupt_hint
from dal_backdoor.errors import ConfigError

_PRIVATE = {"common", "progress"}  # helper modules, not commands


def _command_modules() -> dict[str, str]:
    names = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name in _PRIVATE:
            continue
        names[info.name.replace("_", "-")] = f"{__name__}.{info.name}"
    return dict(sorted(names.items()))


class LazyGroup(click.Group):
    """Discovers command modules and imports each only when it is listed or invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:  # noqa: ARG002 - click's API
        return list(_command_modules())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:  # noqa: ARG002
        module = _command_modules().get(cmd_name)
        if module is None:
            return None
        return importlib.import_module(module).command

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Like click's ``main`` but every user error is ONE line on stderr: exit code 2 for bad
        input, 130 for SIGINT, 143 for SIGTERM, 1 for anything unexpected."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        take_interrupt_hint()
        try:
            with terminate_as_interrupt():
                rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.Abort as exc:
            _abort(exc)
        except click.ClickException as exc:
            error_line(exc.format_message())
            sys.exit(exc.exit_code)
        except Exception as exc:  # translated into one line below
            message, code = translate_error(exc)
            if code == EXIT_BUG and (_VERBOSE[0] or os.environ.get("DAL_BACKDOOR_DEBUG")):
                raise
            error_line(message)
            sys.exit(code)
        # click returns the exit code of commands that return ints in non-standalone mode
        sys.exit(rv if isinstance(rv, int) else 0)


EXIT_USAGE, EXIT_BUG = 2, 1
_VERBOSE = [0]  # set by the group callback; -v shows tracebacks of unexpected errors


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so a run stops the way Ctrl-C stops it."""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While the command runs, SIGTERM raises ``Terminated`` (like SIGINT raises
    KeyboardInterrupt): checkpoints already written stay, the store is left consistent. Our
    child processes (a sweep's workers) get the SIGTERM too, as a Ctrl-C reaches the whole
    process group, so the driver never waits for runs that go on without it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: object) -> None:
        import multiprocessing

        for child in multiprocessing.active_children():
            with contextlib.suppress(OSError):
                os.kill(child.pid, signal.SIGTERM)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _abort(exc: click.Abort) -> NoReturn:
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, KeyboardInterrupt):
        name, code = ("SIGTERM", 143) if isinstance(cause, Terminated) else ("SIGINT", 130)
        hint = take_interrupt_hint()
        error_line(f"interrupted by {name}" + (f"; {hint}" if hint else ""))
        sys.exit(code)
    error_line("aborted")
    sys.exit(1)


def translate_error(exc: BaseException) -> tuple[str, int]:
    """One line and an exit code for an exception that reached the CLI.

    Bad input (ConfigError), file-system problems (OSError: unwritable, disk full, ...), a
    corrupt SQLite file and running out of memory are the user's to fix: exit 2. Anything
    else is a bug: exit 1, and the line says how to see the traceback (-v, or the environment
    variable DAL_BACKDOOR_DEBUG=1, re-raises it).
    """
    import sqlite3

    if isinstance(exc, ConfigError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, OSError):
        return _os_error(exc), EXIT_USAGE
    if isinstance(exc, sqlite3.DatabaseError):
        return f"results store error: {exc}", EXIT_USAGE
    if _is_out_of_memory(exc):
        return ("out of memory: the data set or model does not fit (use a smaller "
                "--train-subset, --width or --batch-size)"), EXIT_USAGE
    return (f"unexpected {type(exc).__name__}: {exc} (a bug; run with -v for the "
            "traceback)"), EXIT_BUG


def _os_error(exc: OSError) -> str:
    where = f" {exc.filename!s}" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return f"no space left on device while writing{where}; free some space and rerun"
    if exc.errno == errno.EROFS:
        return f"read-only file system: cannot write{where}"
    return f"cannot write or read{where}: {exc.strerror or exc}"


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text
                                              or "out of memory" in text)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="dal-backdoor")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Measure how robust a training loss makes a network against backdoors and label noise.

    Built from "Dynamics-Aware Loss for Learning with Label Noise" (Li et al.): train a
    CIFAR-style ResNet18 with CE, GCE, DAL or any robust loss of the paper's Table 1 on poisoned
    or label-noised data, measure clean accuracy and attack success rate, and reproduce the
    paper's Table 6 (and Tables 2-3) as sweeps with reports beside the published numbers.
    """
    _VERBOSE[0] = verbose
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (exit codes: 0 ok, 1 bug, 2 bad input, 130 SIGINT, 143
    SIGTERM)."""
    try:
        cli.main(args=argv, prog_name="dal-backdoor")
    except KeyboardInterrupt:  # pragma: no cover - a signal outside the command itself
        error_line("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
