"""``dal-backdoor losses``: the robust-loss zoo, its hyper-parameters and the paper's Table 1."""

from __future__ import annotations

import math
from typing import Any

import click
from rich.markup import escape

from dal_backdoor.cli.common import console, parse_key_values

_WIDE = 160  # width used when stdout is not a terminal, so piped tables are not squeezed


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _fmt_params(values: dict[str, Any] | None) -> str:
    if not values:
        return "-"
    return ", ".join(f"{k}={_fmt(v)}" for k, v in values.items())


def _out() -> Any:
    """The shared console on a terminal; a wide one when piped (rich would use 80 columns)."""
    if console.is_terminal:
        return console
    from rich.console import Console

    return Console(width=max(console.width, _WIDE), highlight=False)


def _text(value: str) -> Any:
    """Plain text for a table cell (formulas contain brackets that rich would read as markup)."""
    from rich.text import Text

    return Text(value)


def _overview() -> None:
    from rich.table import Table

    from dal_backdoor.losses import list_losses, loss_info, table1_entry

    table = Table(title="Losses (presets: the paper's Table 1; '-' = no entry, defaults apply)")
    table.add_column("loss", style="bold", no_wrap=True)
    table.add_column("formula")
    table.add_column("hyper-parameters (allowed)")
    table.add_column("CIFAR-10")
    table.add_column("CIFAR-100")
    for name in list_losses():
        info = loss_info(name)
        params = "\n".join(f"{p.name} {p.allowed()}" for p in info.params) or "-"
        table.add_row(name, _text(info.formula), _text(params),
                      _text(_fmt_params(table1_entry(name, "cifar10"))),
                      _text(_fmt_params(table1_entry(name, "cifar100"))))
    out = _out()
    out.print(table)
    out.print("Details and schedules: dal-backdoor losses --loss NAME [--epochs T]")


def _schedule_epochs(total: int, t0: float | None) -> list[int]:
    """A few telling epochs: 1, the quarters, T, and the two epochs around t0."""
    epochs = {1, total, *(max(1, math.ceil(total * f)) for f in (0.25, 0.5, 0.75))}
    if t0 is not None and math.isfinite(t0) and 1 <= t0 <= total:
        epochs |= {max(1, math.floor(t0)), min(total, math.floor(t0) + 1)}
    return sorted(epochs)


def _num_classes(dataset: str) -> int:
    """Classes of ``dataset`` when it is a known data set, else of Table 1's fallback column
    (CIFAR-10; e.g. for the Table 1 columns animal10n and webvision)."""
    from dal_backdoor.data.catalog import DATASETS, dataset_info
    from dal_backdoor.losses.presets import FALLBACK_COLUMN

    return dataset_info(dataset if dataset in DATASETS else FALLBACK_COLUMN).num_classes


def _detail(name: str, dataset: str, epochs: int, overrides: dict[str, Any]) -> None:
    from rich.table import Table

    from dal_backdoor.losses import COLUMNS, create_loss, loss_info, preset, preset_column

    info = loss_info(name)  # ConfigError listing the names if unknown
    num_classes = _num_classes(dataset)
    hparams = {**preset(name, dataset), **overrides}
    loss = create_loss(name, num_classes, total_epochs=epochs, **hparams)  # validates --param
    out = _out()
    out.print(f"[bold]{name}[/]: {escape(info.title)} ({escape(info.reference)})")
    out.print(_text(f"  loss = {info.formula}"), soft_wrap=True)
    if info.notes:
        out.print(_text(f"  note: {info.notes}"), soft_wrap=True)

    params = Table(title="hyper-parameters (--param NAME=VALUE)")
    for column in ("name", "default", "allowed", "meaning"):
        params.add_column(column)
    for p in info.params:
        params.add_row(p.name, _fmt(p.default), _text(p.allowed()), _text(p.meaning))
    if info.params:
        out.print(params)

    presets = Table(title="presets by data set (Table 1 column used)")
    for column in ("data set", "column", "hyper-parameters"):
        presets.add_column(column)
    for column in COLUMNS:
        presets.add_row(column, preset_column(name, column) or "defaults",
                        _text(_fmt_params(preset(name, column))))
    out.print(presets)

    if info.scheduled:
        _print_schedule(out, loss, epochs, dataset)


def _print_schedule(out: Any, loss: Any, epochs: int, dataset: str) -> None:
    from rich.table import Table

    schedule = getattr(loss, "schedule", None)
    t0 = getattr(schedule, "t0", None) if hasattr(schedule, "q") else None
    out.print(_text(f"schedule over T={epochs} epochs ({dataset} preset): "
                    f"{_fmt_params(loss.hparams)}"), soft_wrap=True)
    table = Table()
    table.add_column("epoch t", justify="right")
    shown = _schedule_epochs(epochs, t0)
    loss.set_epoch(1)
    keys = list(loss.current_values())
    for key in keys:
        table.add_column(key, justify="right")
    for t in shown:
        loss.set_epoch(t)
        values = loss.current_values()
        table.add_row(str(t), *(f"{values[k]:.4f}" for k in keys))
    out.print(table)
    if t0 is not None and "lam" in keys:
        start = "never (q stays <= 1)" if not t0 < epochs else f"for t > t0 = {t0:.4g}"
        out.print(f"  bootstrap weight lam(t) > 0: {start}")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--loss", "name", metavar="NAME", default=None,
              help="Show one loss in detail (parameters, presets, schedule); NAME as listed "
                   "by the table.")
@click.option("--epochs", type=click.IntRange(min=1), default=150, show_default=True,
              help="T for the schedule shown with --loss dal|dgce|ce_sr.")
@click.option("--dataset", default="cifar10", show_default=True,
              help="Whose Table 1 column the schedule uses (cifar10, cifar100, animal10n, "
                   "webvision; others use cifar10).")
@click.option("--param", "params", multiple=True, metavar="K=V",
              help="Override a hyper-parameter for the schedule shown, e.g. q_start=0.6.")
def command(name: str | None, epochs: int, dataset: str, params: tuple[str, ...]) -> None:
    """List every loss: formula, hyper-parameters with allowed ranges, Table 1 presets.

    \b
    Examples:
      dal-backdoor losses
      dal-backdoor losses --loss dal --epochs 150 --dataset cifar100
      dal-backdoor losses --loss dal --param convention=reference
    """
    if name is None:
        if params:
            raise click.UsageError("--param needs --loss NAME")
        _overview()
        return
    _detail(name, dataset, epochs, parse_key_values(params, "--param"))
