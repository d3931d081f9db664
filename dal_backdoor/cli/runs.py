"""``dal-backdoor runs``: the runs recorded in a results store, or the details of one run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from dal_backdoor.cli.common import OutputPath, console, default_db, write_output
from dal_backdoor.metrics import fmt_metric, fmt_percent

STATUS_STYLE = {"running": "yellow", "finished": "green", "failed": "red",
                "interrupted": "magenta"}
#: What the table says under an interrupted run (killed: SIGKILL, power loss, a lost node).
RESUME_HINT = ("interrupted: no live process holds the run (it was killed). Resume it from its "
               "last checkpoint with the same `dal-backdoor train ...` command plus --resume "
               "(same --out DIR), or run the same `dal-backdoor sweep` command again.")
SHORT_ID = 8


def fmt_value(key: str, value: Any) -> str:
    """A config or metric value as text (``dal_backdoor.metrics.fmt_metric``: rates as
    percentages), escaped for rich markup."""
    return escape(fmt_metric(key, value))


def fmt_pct(value: Any) -> str:
    """A fraction as a percentage with two decimals (no % sign: the column says so)."""
    return fmt_percent(value, sign=False)


def fmt_noise(config: dict[str, Any]) -> str:
    kind = config.get("noise_kind")
    if kind in (None, "none"):
        return "-"
    rate = config.get("noise_rate")
    return escape(f"{kind} {rate:g}" if isinstance(rate, (int, float)) else str(kind))


def fmt_time(stamp: str | None) -> str:
    """ISO 8601 UTC stamp -> 'MM-DD HH:MM' (UTC)."""
    return "-" if not stamp else stamp[5:16].replace("T", " ")


def fmt_device(name: str | None, width: int = 18) -> str:
    """A device name short enough for the table ('NVIDIA H100 80GB HBM3' -> 'H100 80GB HBM3')."""
    if not name:
        return "-"
    name = name.removeprefix("NVIDIA ").split(" (")[0]
    return escape(name if len(name) <= width else name[: width - 1] + "…")


def _status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{escape(status)}[/]"


COLUMNS = (("run", "left"), ("dataset", "left"), ("loss", "left"), ("trigger", "left"),
           ("noise", "left"), ("seed", "right"), ("epochs", "right"), ("status", "left"),
           ("acc %", "right"), ("ASR %", "right"), ("started", "left"), ("device", "left"))
OPTIONAL_COLUMNS = ("device", "started", "seed")  # dropped, in this order, to fit a terminal


def run_row(record: Any, last_epoch: int | None) -> dict[str, str]:
    """The cells of one run in the runs table ('-' for anything not recorded); the status is
    ``dal_backdoor.store.run_state`` (running or interrupted)."""
    from dal_backdoor.store import run_state

    cfg, final = record.config or {}, record.final_metrics or {}
    total = cfg.get("epochs")
    return {
        "run": escape(record.run_id[:SHORT_ID]),
        "dataset": fmt_value("dataset", cfg.get("dataset")),
        "loss": fmt_value("loss", cfg.get("loss")),
        "trigger": fmt_value("trigger", cfg.get("trigger")),
        "noise": fmt_noise(cfg),
        "seed": fmt_value("seed", cfg.get("seed")),
        "epochs": f"{'-' if last_epoch is None else last_epoch}/{'-' if total is None else total}",
        "status": _status(run_state(record)),
        "acc %": fmt_pct(final.get("clean_acc")),
        "ASR %": fmt_pct(final.get("asr")),
        "started": fmt_time(record.created_at),
        "device": fmt_device(record.device_name),
    }


def runs_table(rows: list[dict[str, str]], title: str, drop: tuple[str, ...] = ()):
    from rich import box
    from rich.table import Table

    table = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)
    names = [(name, justify) for name, justify in COLUMNS if name not in drop]
    for name, justify in names:
        table.add_column(name, justify=justify, no_wrap=True)
    for row in rows:
        table.add_row(*(row[name] for name, _ in names))
    return table


def print_runs_table(rows: list[dict[str, str]], title: str) -> None:
    """All columns when they fit (always when piped); in a narrow terminal drop optional ones."""
    from rich.console import Console
    from rich.measure import Measurement

    def natural_width(table: Any) -> int:
        return Measurement.get(console, console.options.update(width=10_000), table).maximum

    if not console.is_terminal:  # a pipe or a file: nothing to fit, print every column
        table = runs_table(rows, title)
        Console(width=max(80, natural_width(table)), highlight=False).print(table)
        return
    drop: tuple[str, ...] = ()
    table = runs_table(rows, title)
    for name in OPTIONAL_COLUMNS:
        if natural_width(table) <= console.width:
            break
        drop += (name,)
        table = runs_table(rows, title, drop)
    console.print(table)


def key_value_table(title: str, items: dict[str, Any]):
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in items.items():
        table.add_row(escape(key), fmt_value(key, value))
    return table


def epoch_columns(epochs: list[dict[str, Any]]) -> list[str]:
    """``epoch``, ``train_loss``, ``clean_acc``, ``asr`` first (when present), then the rest."""
    seen: list[str] = []
    for metrics in epochs:
        seen.extend(k for k in metrics if k not in seen)
    first = [k for k in ("epoch", "train_loss", "clean_acc", "asr") if k in seen]
    return first + sorted(k for k in seen if k not in first)


def epochs_table(epochs: list[dict[str, Any]]):
    from rich.table import Table

    columns = epoch_columns(epochs)
    table = Table(title="epochs", title_justify="left", header_style="bold")
    for name in columns:
        table.add_column(escape(name), justify="right")
    for metrics in epochs:
        table.add_row(*(fmt_value(k, metrics.get(k)) for k in columns))
    return table


def resolve_run(store: Any, prefix: str) -> str:
    """The run id that ``prefix`` (a full or short id) names; ConfigError when none or many."""
    from dal_backdoor.errors import ConfigError

    if store.get_run(prefix) is not None:
        return prefix
    matches = [r.run_id for r in store.list_runs() if r.run_id.startswith(prefix)]
    if not matches:
        raise ConfigError(f"no run {prefix!r} in {store.path}; see `dal-backdoor runs`")
    if len(matches) > 1:
        raise ConfigError(f"run id prefix {prefix!r} is ambiguous: "
                          + ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else ""))
    return matches[0]


def show_run(store: Any, run_id: str) -> None:
    from dal_backdoor.store import run_state

    record = store.get_run(run_id)
    state = run_state(record)
    console.print(f"[bold]run {escape(record.run_id)}[/]  {_status(state)}")
    if state == "interrupted":
        console.print(escape(RESUME_HINT))
    console.print(key_value_table("config", dict(sorted((record.config or {}).items()))))
    info = {"status": state, "attempts": record.attempts, "pid": record.pid,
            "created (UTC)": record.created_at, "updated (UTC)": record.updated_at,
            "finished (UTC)": record.finished_at, "git commit": record.git_commit,
            "device": record.device_name, "host": record.host}
    info.update({f"version {k}": v for k, v in sorted((record.versions or {}).items())})
    if record.error:
        info["error"] = record.error
    console.print(key_value_table("provenance", info))
    if record.final_metrics:
        console.print(key_value_table("final metrics", dict(sorted(
            record.final_metrics.items()))))
    epochs = store.epochs(run_id)
    if epochs:
        console.print(epochs_table(epochs))
    else:
        console.print("[dim]no epochs recorded[/]")


@click.command()
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=default_db,
              show_default="results/results.db or $DAL_BACKDOOR_DB", help="Results store.")
@click.option("--status", default=None,
              type=click.Choice(["running", "interrupted", "finished", "failed"]),
              help="Only runs with this status (interrupted: running, but its process died).")
@click.option("--run", "run_id", default=None, metavar="RUN_ID",
              help="Show one run in detail (full id or a unique prefix, e.g. the short id).")
@click.option("--format", "fmt", type=click.Choice(["rich", "json", "csv"]), default="rich",
              show_default=True, help="rich: the table; json: a list of objects, one per run, "
              "with every recorded field; csv: one row per run (config.<key> columns).")
@click.option("--out", type=OutputPath("file", dash=True), default=None,
              help="Write the json or csv export to this file (atomically); default or -: "
              "standard output.")
def command(db: Path, status: str | None, run_id: str | None, fmt: str,
            out: Path | None) -> None:
    """List the runs recorded in a results store: dataset, loss, trigger, label noise, seed,
    epochs done/total, status, final clean accuracy and ASR (paper protocol, in %), start time
    and device. With --run, show one run's config, provenance, final metrics and per-epoch
    metrics. Rates are stored as fractions and shown as percentages.

    A run whose process died (SIGKILL, power loss) is shown as "interrupted", with how to
    resume it.

    --format json|csv exports the selected runs (all, --status, or the one --run names) for
    pandas: pandas.read_csv(path) or pandas.json_normalize(json.load(file)). Rates are
    fractions, counts integers. Per-epoch metrics: `dal-backdoor export`.

    \b
    Example:
      dal-backdoor runs --db results/results.db --status finished
      dal-backdoor runs --run 3f2a9c1d0b7e
      dal-backdoor runs --db results/results.db --format csv --out runs.csv
    """
    from dal_backdoor.errors import ConfigError
    from dal_backdoor.store import ResultsStore, run_state

    if run_id is not None and status is not None:
        raise ConfigError("--run and --status cannot be combined; allowed: one of them")
    if out is not None and fmt == "rich":
        raise ConfigError("--out needs --format json or csv")
    if not db.exists():
        raise ConfigError(f"no results store at {db}; pass --db or set DAL_BACKDOOR_DB")
    with ResultsStore(db, readonly=True) as store:
        if fmt != "rich":
            export_runs(store, status, run_id, fmt, out)
            return
        if run_id is not None:
            show_run(store, resolve_run(store, run_id))
            return
        records = list_runs(store, status)
        if not records:
            which = f"{status} runs" if status else "runs"
            console.print(escape(f"no {which} recorded in {db}"))
            return
        title = f"{len(records)} {status + ' ' if status else ''}run(s) in {db}; times in UTC"
        last = store.last_epochs()
        rows = [run_row(r, last.get(r.run_id)) for r in records]
        print_runs_table(rows, escape(title))
    if any(run_state(r) == "interrupted" for r in records):
        console.print(escape(RESUME_HINT), soft_wrap=True)


def list_runs(store: Any, status: str | None) -> list[Any]:
    """The store's runs with ``status``, running and interrupted told apart (``run_state``)."""
    from dal_backdoor.store import run_state

    if status is None:
        return store.list_runs()
    stored = "running" if status == "interrupted" else status
    return [r for r in store.list_runs(stored) if run_state(r) == status]


def export_runs(store: Any, status: str | None, run_id: str | None, fmt: str,
                out: Path | None) -> None:
    """The selected runs as json or csv (``dal_backdoor.exports``) on standard output or,
    atomically, in ``out``."""
    from dal_backdoor.exports import json_text, run_object, runs_csv
    from dal_backdoor.store import run_state

    records = ([store.get_run(resolve_run(store, run_id))] if run_id is not None
               else list_runs(store, status))
    last = store.last_epochs()
    objects = [run_object(r, run_state(r), last.get(r.run_id), store.tags(r.run_id))
               for r in records]
    text = json_text(objects) if fmt == "json" else runs_csv(objects)
    if out is None:
        click.echo(text, nl=False)
    else:
        write_output(out, text)
