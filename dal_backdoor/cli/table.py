"""``dal-backdoor table``: a grid's results as the paper's table, beside the paper's numbers;
a user grid's table; two tables side by side (--compare)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dal_backdoor.cli.common import OutputPath, console, default_db, write_output
from dal_backdoor.experiments import list_grids, list_presets

TABLE_METRICS = ("clean_acc", "asr", "asr_true", "robust_acc")  # grid_file.TABLE_METRICS

PLOT_FILES = ("*.png", "*.pdf", "*.svg")  # what --plot writes: never over a device or FIFO


#: Above this many columns, a table whose columns are "<name> <metric>" prints one table per
#: metric (the attacks grid: 7 attacks x acc/ASR would not fit a terminal as one).
SPLIT_ABOVE_COLUMNS = 8


def metric_groups(columns: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """``("a acc", "a ASR", "b acc", "b ASR")`` -> ``{"acc": ("a acc", "b acc"), "ASR": ...}``
    when every column ends in a metric word shared by several columns, else one group ``""``."""
    groups: dict[str, list[str]] = {}
    for col in columns:
        name, _, metric = col.rpartition(" ")
        groups.setdefault(metric if name else "", []).append(col)
    if "" in groups or len(groups) < 2 or any(len(g) < 2 for g in groups.values()):
        return {"": tuple(columns)}
    return {metric: tuple(cols) for metric, cols in groups.items()}


def rich_table(report):  # rich types stay local to the CLI
    from rich.console import Group

    groups = metric_groups(report.columns)
    if len(report.columns) <= SPLIT_ABOVE_COLUMNS or len(groups) == 1:
        return _rich_table(report, report.columns, "")
    return Group(*(_rich_table(report, cols, metric) for metric, cols in groups.items()))


def _rich_table(report, columns: tuple[str, ...], metric: str):
    from rich.table import Table

    from dal_backdoor.report import fmt_cell

    part = f" - {metric}" if metric else ""
    table = Table(title=f"{report.title}{part}\n[dim]grid {report.grid}, preset "
                        f"{report.preset}[/]", show_lines=True)
    table.add_column(report.row_header, style="bold")
    for col in columns:
        name = col.removesuffix(f" {metric}") if metric else col  # the title names the metric
        header = f"{name}\nours | paper | Δ" if report.paper_columns else name
        table.add_column(header, justify="right")
    for row in report.rows:
        parts = []
        for col in columns:
            ours, paper, diff = fmt_cell(report.cells[(row, col)])
            parts.append(f"{ours}\n[dim]{paper}[/]\n{diff}" if report.paper_columns else ours)
        table.add_row(row, *parts)
    return table


def rich_comparison(cmp):
    """Two tables side by side: per column, A's and B's mean ± std and B - A."""
    from rich.table import Table

    from dal_backdoor.report_compare import fmt_diff, fmt_side

    table = Table(title=f"{cmp.a.title}\n[dim]A = {cmp.label_a}   B = {cmp.label_b}[/]",
                  show_lines=True)
    table.add_column("row", style="bold")
    for col in cmp.columns:
        table.add_column(f"{col}\nA | B | Δ", justify="right")
    for row in cmp.rows:
        parts = []
        for col in cmp.columns:
            a, b = cmp.pair(row, col)
            parts.append(f"{fmt_side(a)}\n{fmt_side(b)}\n{fmt_diff(cmp.diff(row, col))}")
        table.add_row(row, *parts)
    return table


@click.command()
@click.argument("grid", required=False)
@click.option("--grid-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The TOML file of a user grid (its name, preset and table layout).")
@click.option("--preset", type=click.Choice(list_presets()), default=None,
              show_default="small, or the grid file's")
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
@click.option("--rows", default=None, metavar="AXIS[,AXIS]",
              help="User grid: the axes that make the rows (default: the first axis).")
@click.option("--columns", default=None, metavar="AXIS",
              help="User grid: the axis that makes the columns (default: the second axis).")
@click.option("--metric", "metrics", multiple=True, type=click.Choice(TABLE_METRICS),
              help="User grid: a metric per column (repeatable; default: clean_acc and asr, "
              "or clean_acc without a trigger).")
@click.option("--compare", "compare_db", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Side by side with the same table from this second store.")
@click.option("--compare-grid", default=None, metavar="GRID",
              help="Side by side with this grid's table (same cells by label).")
@click.option("--compare-preset", type=click.Choice(list_presets()), default=None,
              help="Side by side with the same grid under this preset.")
def command(grid: str | None, grid_file: Path | None, preset: str | None, db: Path, fmt: str,
            out: Path | None, plot_dir: Path | None, rows: str | None, columns: str | None,
            metrics: tuple[str, ...], compare_db: Path | None, compare_grid: str | None,
            compare_preset: str | None, plot_formats: tuple[str, ...]) -> None:
    """Mean ± std over seeds per cell of GRID, laid out as the paper's table, with the paper's
    published values and the difference. Cells with fewer finished seeds than the grid asks
    for are marked with *.

    A user grid (swept with --grid-file or --axis): GRID is its name (or give --grid-file);
    rows are one or more axes, columns another axis x the metrics, no paper values.

    --compare B.db, --compare-grid G, --compare-preset P: two tables side by side (A = this
    one, B = the other): per cell A's and B's mean ± std and Δ = B - A, and a note naming the
    run settings that differ between A and B (formats rich, md, csv, json).

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
      dal-backdoor table --grid-file my_grid.toml --db results/mine.db --plot plots/
      dal-backdoor table custom --rows num_poison --columns loss --metric asr
      dal-backdoor table table6 --db results/a.db --compare results/b.db
    """
    from dal_backdoor.grid_report import load_table
    from dal_backdoor.report import export

    formats = _check_options(fmt, out, plot_dir, plot_formats)
    request = table_request(grid, grid_file, preset, db, rows, columns, metrics)
    if compare_db is not None or compare_grid is not None or compare_preset is not None:
        if plot_dir is not None:
            raise click.UsageError("--plot draws one table: leave out --compare*")
        other = other_request(request, compare_db, compare_grid, compare_preset)
        show_comparison(request, other, fmt, out)
        return
    loaded = load_table(request)
    _emit(loaded.report, rich_table, export, fmt, out)
    if plot_dir is not None:
        for path in _plot(loaded, plot_dir, formats):
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


def _plot(loaded, plot_dir: Path, formats: tuple[str, ...]) -> list[Path]:
    if loaded.layout is None:
        from dal_backdoor.plots import plot_report

        return plot_report(loaded.report.grid, loaded.runs, plot_dir, formats,
                           report=loaded.report)
    from dal_backdoor.grid_plot import plot_user_grid
    from dal_backdoor.grid_report import axes_of

    report = loaded.report
    return plot_user_grid(report.grid, report.preset, loaded.runs, loaded.layout,
                          axes_of(loaded.runs), plot_dir, formats)


def table_request(grid: str | None, grid_file: Path | None, preset: str | None, db: Path,
                  rows: str | None, columns: str | None, metrics: tuple[str, ...]):
    """What to report: a built-in GRID, a user grid's name, or a grid file's grid."""
    from dal_backdoor.grid_report import TableRequest

    row_axes = tuple(r.strip() for r in rows.split(",") if r.strip()) if rows else ()
    if grid is not None and grid_file is not None:
        raise click.UsageError("give GRID or --grid-file, not both")
    if grid_file is not None:
        from dal_backdoor.grid_file import load_grid_file

        user = load_grid_file(grid_file)
        return TableRequest(db, user.name, preset or user.preset or "small", False,
                            row_axes or user.rows, columns or user.columns,
                            metrics or user.metrics, tuple(user.axes), user.description)
    if grid is None:
        raise click.UsageError("missing GRID (" + ", ".join(list_grids()) + ", or a user "
                               "grid's name) or --grid-file")
    builtin = grid in list_grids()
    if builtin and (row_axes or columns or metrics):
        raise click.UsageError(f"--rows, --columns and --metric lay out a user grid's table; "
                               f"{grid} is a built-in grid")
    return TableRequest(db, grid, preset or "small", builtin, row_axes, columns, metrics)


def other_request(request, compare_db: Path | None, compare_grid: str | None,
                  compare_preset: str | None):
    """Side B of a comparison: side A with the given store, grid or preset."""
    import dataclasses

    other = dataclasses.replace(
        request, db=compare_db or request.db, preset=compare_preset or request.preset,
        grid=compare_grid or request.grid,
        builtin=(compare_grid in list_grids()) if compare_grid else request.builtin)
    if other == request:
        raise click.UsageError("--compare, --compare-grid and --compare-preset name the same "
                               "table; give another store, grid or preset")
    return other


def show_comparison(a, b, fmt: str, out: Path | None) -> None:
    from dal_backdoor.grid_report import load_table
    from dal_backdoor.report_compare import compare, export, side_labels

    if fmt == "latex":
        from dal_backdoor.errors import ConfigError

        raise ConfigError("--format latex cannot show a comparison; allowed with --compare: "
                          "rich, md, csv, json")
    left, right = load_table(a), load_table(b)
    labels = side_labels(*({"db": str(r.db), "grid": r.grid, "preset": r.preset}
                           for r in (a, b)))
    cmp = compare(left.report, right.report, *labels, runs_a=left.runs, runs_b=right.runs)
    _emit(cmp, rich_comparison, export, fmt, out)


def _emit(table: Any, render_rich: Callable[[Any], Any], export: Callable[[Any, str], str],
          fmt: str, out: Path | None) -> None:
    """A table or a comparison: rich with its notes on the console, else ``export``-ed in
    ``fmt`` to standard output or (atomically) to ``out``."""
    if fmt == "rich":
        console.print(render_rich(table))
        for note in table.notes:
            console.print(f"[dim]- {note}[/]")
    elif out is None:
        click.echo(export(table, fmt), nl=False)
    else:
        write_output(out, export(table, fmt))


def _require_matplotlib() -> None:
    from dal_backdoor.errors import ConfigError

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install 'dal-backdoor[plot]'") from None
