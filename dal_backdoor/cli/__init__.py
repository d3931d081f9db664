"""The ``dal-backdoor`` command line: one module per command in this package.

Each module ``dal_backdoor/cli/<name>.py`` defines a click command called ``command``; the
module name (underscores become dashes) is the command name, so adding a command is one file.
Heavy imports (torch) happen inside the commands, keeping ``--help`` fast. This package is the
only place that prints.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys

import click

from dal_backdoor import __version__
from dal_backdoor.cli.common import error_line
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

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_command_modules())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = _command_modules().get(cmd_name)
        if module is None:
            return None
        return importlib.import_module(module).command

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # noqa: ANN001, ANN201
        """Like click's ``main`` but every user error is ONE line on stderr and exit code 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.Abort:
            error_line("aborted")
            sys.exit(1)
        except click.UsageError as exc:
            error_line(exc.format_message())
            sys.exit(2)
        except click.ClickException as exc:
            error_line(exc.format_message())
            sys.exit(exc.exit_code)
        except ConfigError as exc:
            error_line(str(exc))
            sys.exit(2)
        except OSError as exc:  # unwritable directory, a file where a directory should be, ...
            where = f" {exc.filename!s}" if exc.filename else ""
            error_line(f"cannot write or read{where}: {exc.strerror or exc}")
            sys.exit(2)
        # click returns the exit code of commands that return ints in non-standalone mode
        sys.exit(rv if isinstance(rv, int) else 0)


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
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="dal-backdoor")
    except KeyboardInterrupt:  # pragma: no cover - interactive
        error_line("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
