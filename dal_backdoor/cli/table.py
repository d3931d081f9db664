"""``dal-backdoor table``: a grid's results as the paper's table, beside the paper's numbers."""

from __future__ import annotations

from pathlib import Path

import click

from dal_backdoor.cli.common import OutputPath, console, default_db, write_output
from dal_backdoor.experiments import list_grids, list_presets

PLOT_FILES = ("*.png", "*.pdf", "*.svg")  # what --plot writes: never over a device or FIFO


def rich_table(report):  # rich types stay local to the CLI
    from rich.table import Table

    from dal_backdoor.report import fmt_cell

    table = Table(title=f"{report.title}\n[dim]grid {report.grid}, preset {report.preset}[/]",
                  show_lines=True)
    table.add_column("row", style="bold")
    for col in report.columns:
        table.add_column(f"{col}\nours | paper | Δ", justify="right")
    for row in report.rows:
        parts = []
        for col in report.columns:
            ours, paper, diff = fmt_cell(report.cells[(row, col)])
            parts.append(f"{ours}\n[dim]{paper}[/]\n{diff}")
        table.add_row(row, *parts)
    return table


@click.command()
@click.argument("grid", type=click.Choice(list_grids()))
@click.option("--preset", type=click.Choice(list_presets()), default="small", show_default=True)
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=default_db,
              show_default="results/results.db or $DAL_BACKDOOR_DB")
@click.option("--format", "fmt", type=click.Choice(["rich", "md", "csv", "json", "latex"]),
              default="rich", show_default=True)
@click.option("--out", type=OutputPath("file", dash=True), default=None,
              help="Write the table to this file (not for rich); - prints it.")
@click.option("--plot", "plot_dir", type=OutputPath("dir", entries=PLOT_FILES),
              default=None, help="Also write the figures into this directory (needs "
                                 "matplotlib).")
@click.option("--plot-format", "plot_formats", multiple=True, metavar="png|pdf|svg",
              help="Format of the --plot figures; repeat it or give a comma list "
                   "[default: png,pdf]. PNG at 200 dpi.")
def command(grid: str, preset: str, db: Path, fmt: str, out: Path | None,
            plot_dir: Path | None, plot_formats: tuple[str, ...]) -> None:
    """Mean ± std over seeds per cell of GRID, laid out as the paper's table, with the paper's
    published values and the difference. Cells with fewer finished seeds than the grid asks
    for are marked with *.

    --format csv: one row per cell (row, column, mean, std, n, expected_n, paper_mean,
    paper_std, diff; for backdoor grids also asr_true_* and robust_acc_* mean/std/n), after
    the title and notes as "# " comment lines: pandas.read_csv(path, comment="#").

    --plot DIR: per data-set row the final values (mean bar, ±std, seeds as points, n) beside
    the paper's; per panel (trigger or noise setting) the per-epoch curves (min-max band over
    seeds, DAL's q(t) and λ(t) on a second axis) and the training accuracy by sample group;
    DAL's schedule. Titles name the data set that ran.

    \b
    Example:
      dal-backdoor table table6 --preset small --db results/small.db
      dal-backdoor table table6 --format csv --out table6.csv --plot plots/
      dal-backdoor table table6 --plot plots/ --plot-format svg,png
    """
    from dal_backdoor.errors import ConfigError
    from dal_backdoor.plots import plot_report
    from dal_backdoor.report import build_report, export, load_runs
    from dal_backdoor.store import ResultsStore

    formats = _check_options(fmt, out, plot_dir, plot_formats)
    if not db.exists():
        raise ConfigError(f"no results store at {db}; run `dal-backdoor sweep {grid}` first "
                          "or pass --db")
    with ResultsStore(db, readonly=True) as store:
        runs = load_runs(store, grid, preset)
    if not runs:
        raise ConfigError(f"{db} has no runs of grid {grid} with preset {preset}; run "
                          f"`dal-backdoor sweep {grid} --preset {preset} --db {db}`")
    report = build_report(grid, preset, runs)
    if fmt == "rich":
        console.print(rich_table(report))
        for note in report.notes:
            console.print(f"[dim]- {note}[/]")
    elif out is None:
        click.echo(export(report, fmt), nl=False)
    else:
        write_output(out, export(report, fmt))
    if plot_dir is not None:
        for path in plot_report(grid, runs, plot_dir, formats, report=report):
            console.print(f"wrote {path}")


def _check_options(fmt: str, out: Path | None, plot_dir: Path | None,
                   plot_formats: tuple[str, ...]) -> tuple[str, ...]:
    """The plot formats; ConfigError on a bad combination of options (before any output)."""
    from dal_backdoor.errors import ConfigError
    from dal_backdoor.plots import parse_plot_formats

    if out is not None and fmt == "rich":
        raise ConfigError("--out needs --format md, csv, json or latex")
    formats = parse_plot_formats(plot_formats)
    if plot_formats and plot_dir is None:
        raise ConfigError("--plot-format needs --plot DIR")
    if plot_dir is not None:
        _require_matplotlib()
    return formats


def _require_matplotlib() -> None:
    from dal_backdoor.errors import ConfigError

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install 'dal-backdoor[plot]'") from None
