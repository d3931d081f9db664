"""Figures of a grid's runs, drawn to be put in a paper (matplotlib, the optional extra ``plot``).

Every figure is built by a ``*_figure`` function that returns a matplotlib ``Figure`` (no
pyplot, so no global backend state) and saved by :func:`save_figure` in each requested format
(PNG at :data:`PNG_DPI` dpi, PDF, SVG; atomic writes). :func:`plot_report` writes all of a grid's
figures:

- ``{grid}_{dataset}_final``: per loss and column (trigger or noise setting) the mean over
  seeds as a bar with a ±std error bar, each seed as a point, n above it, and the paper's value
  (hatched bar) beside it;
- ``{grid}_{dataset}_{panel}_curves``: per-epoch test metrics (clean accuracy and ASR; for
  label noise test accuracy and the fit of the noisy labels) per loss, mean line with markers
  and a min-max band over seeds, with DAL's q(t) and lambda(t) on a second y axis;
- ``{grid}_{dataset}_{panel}_groups``: training accuracy on clean / label-noised / poisoned
  samples per loss (the paper's Figure 4 view);
- ``{grid}_dal_schedule``: DAL's q(t) and lambda(t);
- the grids beyond the paper: ``attacks_asr_heatmap`` and ``dose_asr_vs_budget``.

Titles name the data set that actually ran (a run's stored config), e.g. "cifar10 row, ran on
fashion-mnist" when a preset substituted Fashion-MNIST for CIFAR-10.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dal_backdoor.errors import ConfigError
from dal_backdoor.experiments import CLEAN, Grid, get_grid
from dal_backdoor.io import atomic_write_with
from dal_backdoor.report import DOSE_THRESHOLD, Cell, Report, RunRow, build_report, current_runs

if TYPE_CHECKING:  # matplotlib is optional: imported only when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

PLOT_FORMATS = ("png", "pdf", "svg")
DEFAULT_PLOT_FORMATS = ("png", "pdf")
PNG_DPI = 200
#: Metadata that would make two saves of the same figure differ (creation dates) is left out.
_METADATA: dict[str, dict[str, Any]] = {"png": {}, "pdf": {"CreationDate": None},
                                        "svg": {"Date": None}}
BAND_TEXT = "line: mean over seeds, band: min-max"
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p", "d")
#: One colour per loss of the largest loss axis (13 in Tables 2-3): tab10 without its grey
#: (DAL's q(t) and lambda(t) are drawn in grey), then four more.
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#bcbd22", "#17becf", "#000000", "#e6ab02", "#1b9e77", "#7b3294")


# -- formats, figures, saving ----------------------------------------------------------------

def parse_plot_formats(values: Iterable[str]) -> tuple[str, ...]:
    """The formats named by ``values`` (each a name or a comma list), in order, without
    repeats; :data:`DEFAULT_PLOT_FORMATS` when none is named. ConfigError on an unknown one."""
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip().lower()
            if name not in PLOT_FORMATS:
                raise ConfigError(f"--plot-format {part.strip()!r} is not a plot format; "
                                  f"allowed: {', '.join(PLOT_FORMATS)}")
            if name not in out:
                out.append(name)
    return tuple(out) or DEFAULT_PLOT_FORMATS


def new_figure(width: float, height: float) -> Figure:
    """An empty figure with constrained layout (titles, labels and legends never overlap)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install 'dal-backdoor[plot]'") from None
    return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig: Figure, stem: str | Path,
                formats: Sequence[str] = DEFAULT_PLOT_FORMATS) -> list[Path]:
    """Write ``fig`` as ``stem.<format>`` for each format (atomically); the paths written."""
    stem = Path(stem)
    paths = []
    for fmt in formats:
        if fmt not in PLOT_FORMATS:
            raise ConfigError(f"unknown plot format {fmt!r}; allowed: {', '.join(PLOT_FORMATS)}")
        path = stem.with_name(f"{stem.name}.{fmt}")
        atomic_write_with(path, lambda fh, fmt=fmt: fig.savefig(
            fh, format=fmt, dpi=PNG_DPI, metadata=_METADATA[fmt]))
        paths.append(path)
    return paths


# -- what the figures share --------------------------------------------------------------------

def real_dataset(paper_dataset: str, runs: Iterable[RunRow]) -> str:
    """``"cifar10"`` when the runs trained on the row's own data set (or do not say), else
    ``"cifar10 row, ran on fashion-mnist"`` (from the runs' stored config)."""
    ran = sorted({str(r.config["dataset"]) for r in runs
                  if r.config.get("dataset") not in (None, paper_dataset)})
    if not ran:
        return paper_dataset
    return f"{paper_dataset} row, ran on {' + '.join(ran)}"


def loss_style(grid: Grid, loss: str) -> dict[str, Any]:
    """One colour and marker per loss, the same in every figure of a grid."""
    losses = list(grid.axes.get("loss", ()))
    i = losses.index(loss) if loss in losses else len(losses)
    return {"color": _COLORS[i % len(_COLORS)], "marker": _MARKERS[i % len(_MARKERS)]}


def panel_label(grid: Grid, panel: str) -> str:
    """A panel's column as a reader knows it: ``"global trigger (weng)"``, ``"local
    trigger"``, ``"symmetric-0.4 label noise"`` or ``"clean labels (no noise)"``."""
    if grid.kind != "backdoor":
        return "clean labels (no noise)" if panel == CLEAN else f"{panel} label noise"
    runs_as = grid.triggers.get(panel, panel)
    return f"{panel} trigger" + ("" if runs_as == panel else f" ({runs_as})")


def integer_epochs(ax: Axes) -> None:
    """Epoch axis: integer ticks only."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")


@dataclass(frozen=True)
class Band:
    """A per-epoch metric over seeds: mean, min and max per epoch, and how many runs."""

    epochs: tuple[int, ...]
    mean: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    n: int


def seed_band(runs: Sequence[RunRow], key: str, scale: float = 100.0) -> Band | None:
    """``key`` per epoch over ``runs`` (x ``scale``: percent for rates); None if never
    recorded. ``n`` counts the runs that recorded it."""
    by_epoch: dict[int, list[float]] = {}
    n = 0
    for run in runs:
        values = [(int(row["epoch"]), scale * float(row[key])) for row in run.epochs
                  if row.get(key) is not None]
        n += bool(values)
        for epoch, value in values:
            by_epoch.setdefault(epoch, []).append(value)
    if not by_epoch:
        return None
    epochs = tuple(sorted(by_epoch))
    return Band(epochs, tuple(sum(by_epoch[e]) / len(by_epoch[e]) for e in epochs),
                tuple(min(by_epoch[e]) for e in epochs),
                tuple(max(by_epoch[e]) for e in epochs), n)


def draw_band(ax: Axes, band: Band, label: str, **style: Any) -> Line2D:
    """The mean with markers, the min-max band in the same colour, n in the label."""
    (line,) = ax.plot(band.epochs, band.mean, label=f"{label} (n={band.n})", markersize=4,
                      **style)
    if band.n > 1:
        ax.fill_between(band.epochs, band.low, band.high, color=line.get_color(), alpha=0.18,
                        linewidth=0)
    return line


def crossing_epoch(band: Band, level: float = 1.0) -> float | None:
    """Where the mean first reaches ``level`` (linear between recorded epochs); None if never."""
    points = list(zip(band.epochs, band.mean, strict=True))
    if points and points[0][1] >= level:
        return float(points[0][0])
    for (e0, v0), (e1, v1) in zip(points, points[1:], strict=False):
        if v0 < level <= v1:
            return e0 + (level - v0) / (v1 - v0) * (e1 - e0)
    return None


def _grid_runs(grid_name: str, runs: Iterable[RunRow]) -> list[RunRow]:
    """The runs of the grid's current cell definitions that recorded epochs."""
    return [r for r in current_runs(grid_name, runs)[0] if r.epochs]


def _panel_key(grid: Grid) -> str:
    return "trigger" if grid.kind == "backdoor" else "noise"


def _present_losses(grid: Grid, runs: Sequence[RunRow]) -> list[str]:
    return [loss for loss in grid.axes["loss"] if any(r.cell["loss"] == loss for r in runs)]


# -- per-epoch curves with DAL's schedule on a second axis -----------------------------------

def curve_metrics(grid: Grid) -> list[tuple[str, str, str]]:
    """(metric, axes title, y label) of the curves figure: clean accuracy and ASR for a
    backdoor grid; test accuracy and the fit of the noisy labels for a label-noise grid."""
    if grid.kind == "backdoor":
        return [("clean_acc", "clean accuracy", "clean test accuracy (%)"),
                ("asr", "attack success rate", "ASR (%, paper's protocol)")]
    return [("clean_acc", "test accuracy", "test accuracy (%)"),
            ("train_acc_noisy", "fit of the noisy labels", "train acc. on noisy samples (%)")]


def draw_schedule(ax: Axes, dal_runs: Sequence[RunRow]) -> Axes | None:
    """DAL's q(t) and lambda(t) (mean over ``dal_runs``) on a twin y axis of ``ax``, and a
    vertical line where q(t) passes 1 (the bootstrap term starts); None if no q recorded."""
    q = seed_band(dal_runs, "q", scale=1.0)
    if q is None:
        return None
    twin = ax.twinx()
    twin.plot(q.epochs, q.mean, color="0.35", linestyle="--", marker="x", markersize=4,
              label="DAL q(t)")
    lam = seed_band(dal_runs, "lam", scale=1.0)
    if lam is not None:
        twin.plot(lam.epochs, lam.mean, color="0.35", linestyle=":", marker="+",
                  markersize=5, label="DAL λ(t)")
    twin.set_ylabel("DAL q(t), λ(t)")
    twin.set_ylim(bottom=0.0, top=max(1.6, *q.mean) * 1.05)
    start = crossing_epoch(q)
    if start is not None:
        ax.axvline(start, color="0.5", linewidth=0.9, linestyle="-.",
                   label=f"DAL q(t) = 1 (epoch {start:.2g})")
    return twin


def curves_figure(grid: Grid, dataset: str, panel: str, runs: Sequence[RunRow]) -> Figure:
    """Per-epoch test metrics of one panel (data set x trigger or noise setting), one line and
    band per loss, DAL's q(t) and lambda(t) on a second y axis of each metric's axes."""
    metrics = curve_metrics(grid)
    fig = new_figure(5.2 * len(metrics), 4.4)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    dal_runs = [r for r in runs if r.cell["loss"] == "dal"]
    for ax, (key, title, ylabel) in zip(axes, metrics, strict=True):
        for loss in _present_losses(grid, runs):
            band = seed_band([r for r in runs if r.cell["loss"] == loss], key)
            if band is not None:
                draw_band(ax, band, loss, **loss_style(grid, loss))
        draw_schedule(ax, dal_runs)
        integer_epochs(ax)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    _figure_legend(fig, axes[0])
    fig.suptitle(f"{grid.name}: {real_dataset(dataset, runs)}, {panel_label(grid, panel)}\n"
                 f"per-epoch test metrics ({BAND_TEXT})")
    return fig


def _figure_legend(fig: Figure, ax: Axes) -> None:
    """One legend below the axes for the lines of ``ax`` and of its twin axes."""
    handles, labels = ax.get_legend_handles_labels()
    for other in fig.axes:
        if other is not ax and other.get_shared_x_axes().joined(other, ax):
            more = other.get_legend_handles_labels()
            handles, labels = handles + more[0], labels + more[1]
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(handles), 4),
                   fontsize=8)


# -- training accuracy by sample group ----------------------------------------------------------

_GROUPS = (("train_acc_clean", "clean samples", "-"),
           ("train_acc_noisy", "label-noised samples", "-"),
           ("train_acc_poisoned", "poisoned samples", "-"),
           ("clean_acc", "test (clean)", "--"))


def draw_groups(ax: Axes, runs: Sequence[RunRow]) -> None:
    """One line and band per sample group (and the test accuracy) that ``runs`` recorded."""
    for i, (key, label, linestyle) in enumerate(_GROUPS):
        band = seed_band(runs, key)
        if band is not None:
            draw_band(ax, band, label, color=f"C{i}", marker=_MARKERS[i], linestyle=linestyle)


def groups_figure(grid: Grid, dataset: str, panel: str, runs: Sequence[RunRow]) -> Figure:
    """Training accuracy on the observed labels of clean / label-noised / poisoned samples,
    and test accuracy, per loss (one axes each): the paper's Figure 4 view."""
    losses = _present_losses(grid, runs)
    ncols = min(len(losses), 3)
    nrows = math.ceil(len(losses) / ncols)
    fig = new_figure(3.6 * ncols + 0.6, 3.1 * nrows + 0.9)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    for ax in axes[len(losses):]:
        ax.set_visible(False)
    for i, (ax, loss) in enumerate(zip(axes, losses, strict=False)):
        draw_groups(ax, [r for r in runs if r.cell["loss"] == loss])
        ax.set_title(loss)
        integer_epochs(ax)
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
        if i % ncols == 0:
            ax.set_ylabel("accuracy on observed labels (%)")
    _figure_legend(fig, axes[0])
    fig.suptitle(f"{grid.name}: {real_dataset(dataset, runs)}, {panel_label(grid, panel)}\n"
                 f"training accuracy by sample group ({BAND_TEXT})")
    return fig


def schedule_figure(grid: Grid, runs: Sequence[RunRow]) -> Figure | None:
    """DAL's q(t) and lambda(t) per data set row (Algorithm 1), from the DAL runs' records."""
    dal_runs = [r for r in runs if r.cell.get("loss") == "dal"]
    datasets = [d for d in grid.axes["dataset"] if any(r.cell["dataset"] == d for r in dal_runs)]
    if not datasets:
        return None
    fig = new_figure(5.4, 4.0)
    ax = fig.subplots()
    for i, dataset in enumerate(datasets):
        sub = [r for r in dal_runs if r.cell["dataset"] == dataset]
        for key, name, linestyle in (("q", "q(t)", "-"), ("lam", "λ(t)", "--")):
            band = seed_band(sub, key, scale=1.0)
            if band is not None:
                ax.plot(band.epochs, band.mean, color=f"C{i}", linestyle=linestyle,
                        marker="o" if key == "q" else "s", markersize=4,
                        label=f"{name}, {real_dataset(dataset, sub)}")
    ax.axhline(1.0, color="0.5", linewidth=0.8, linestyle=":")
    integer_epochs(ax)
    ax.set_ylabel("q(t), λ(t)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{grid.name}: DAL schedule (Algorithm 1)")
    return fig


# -- final values beside the paper's ---------------------------------------------------------

@dataclass(frozen=True)
class FinalPanel:
    """One axes of the final-values figure: the grid column it shows (trigger or noise
    setting), a title, a y label, and a cell per loss."""

    column: str
    title: str
    ylabel: str
    cells: tuple[tuple[str, Cell], ...]


def final_panels(grid: Grid, report: Report, dataset: str) -> list[FinalPanel]:
    """The final-values axes of data set row ``dataset``: per trigger its clean accuracy and
    ASR (backdoor grid: the accuracies first, then the ASRs), per noise setting its test
    accuracy (label-noise grid). Losses with no finished run in the row are left out."""
    if grid.kind == "backdoor":
        losses = [loss for loss in grid.axes["loss"]
                  if any(c.values for (row, _), c in report.cells.items()
                         if row == f"{dataset}/{loss}")]
        return [FinalPanel(trigger, f"{panel_label(grid, trigger)}: {what}", f"{what} (%)",
                           tuple((loss, report.cells[(f"{dataset}/{loss}", f"{trigger} {m}")])
                                 for loss in losses))
                for m, what in (("acc", "clean test accuracy"), ("ASR", "ASR"))
                for trigger in grid.axes["trigger"]]
    losses = [loss for loss in report.rows
              if any(report.cells[(loss, c)].values for c in report.columns)]
    return [FinalPanel(setting, panel_label(grid, setting), "test accuracy (%)",
                       tuple((loss, report.cells[(loss, setting)]) for loss in losses))
            for setting in report.columns]


def _seed_offsets(n: int, width: float) -> list[float]:
    """x offsets spreading n seed points over the middle of a bar of ``width``."""
    if n <= 1:
        return [0.0] * n
    return [width * 0.6 * (i / (n - 1) - 0.5) for i in range(n)]


def draw_final_bars(ax: Axes, grid: Grid, panel: FinalPanel) -> None:
    """Per loss: our mean (bar, ±std error bar, seeds as points, n above) and the paper's
    value (hatched outline bar, ±std) beside it."""
    width = 0.38
    for i, (loss, cell) in enumerate(panel.cells):
        color = loss_style(grid, loss)["color"]
        if cell.values:
            ax.bar(i - width / 2, cell.mean, width, yerr=cell.std, color=color, alpha=0.75,
                   capsize=3)
            xs = [i - width / 2 + d for d in _seed_offsets(cell.n, width)]
            ax.scatter(xs, cell.values, s=14, color="black", zorder=3)
            top = max(max(cell.values), cell.mean + (cell.std or 0.0))
            ax.annotate(f"n={cell.n}", (i - width / 2, top), xytext=(0, 5),
                        textcoords="offset points", ha="center", fontsize=7)
        if cell.paper is not None:
            ax.bar(i + width / 2, cell.paper[0], width, yerr=cell.paper[1], facecolor="none",
                   edgecolor=color, hatch="///", capsize=3)
    ax.set_xticks(range(len(panel.cells)), [loss for loss, _ in panel.cells])
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_ylim(-3, 112)  # seeds at 0% stay visible above the frame
    ax.set_title(panel.title)
    ax.set_ylabel(panel.ylabel)
    ax.grid(axis="y", alpha=0.3)


def final_values_figure(grid: Grid, report: Report, dataset: str,
                        runs: Sequence[RunRow]) -> Figure | None:
    """Final values of row ``dataset`` beside the paper's (see :func:`draw_final_bars`);
    None when the row has no finished run."""
    panels = [p for p in final_panels(grid, report, dataset)
              if any(cell.values for _, cell in p.cells)]
    if not panels:
        return None
    if grid.kind == "backdoor":
        ncols = len({p.column for p in panels})
    else:  # noise settings: two per row when there are many losses
        ncols = min(len(panels), 2 if len(panels[0].cells) > 4 else 4)
    nrows = math.ceil(len(panels) / ncols)
    width = max(4.6, 0.8 * len(panels[0].cells) + 1.4)
    fig = new_figure(width * ncols, 3.6 * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, panel in zip(axes, panels, strict=False):
        draw_final_bars(ax, grid, panel)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    _final_legend(fig)
    rows = [r for r in runs if r.cell["dataset"] == dataset]
    preset = f", preset {report.preset}" if report.preset else ""
    fig.suptitle(f"{grid.name}: {real_dataset(dataset, rows)}{preset}\n"
                 "final values: ours (mean ± std over seeds, points: seeds) beside the paper's")
    return fig


def _final_legend(fig: Figure) -> None:
    """A legend of neutral stand-ins (the colours only tell the losses apart)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(facecolor="0.55", label="ours: mean ± std"),
               Line2D([], [], linestyle="", marker="o", markersize=4, color="black",
                      label="ours: one seed (n above)"),
               Patch(facecolor="none", edgecolor="0.3", hatch="///",
                     label="paper: mean ± std")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8)


# -- writing a grid's figures ------------------------------------------------------------------

def plot_report(grid_name: str, runs: Sequence[RunRow], out_dir: str | Path,
                formats: Sequence[str] = DEFAULT_PLOT_FORMATS,
                report: Report | None = None) -> list[Path]:
    """Write every figure of ``grid_name`` (see the module docstring) into ``out_dir`` in each
    of ``formats``; the paths written. ``report`` (else built from ``runs``) gives the final
    values and the paper's."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    grid = get_grid(grid_name)
    if "attack" in grid.axes or "num_poison" in grid.axes:
        return plot_beyond_paper(grid_name, runs, out_dir, formats)
    report = report or build_report(grid_name, "", runs)
    written: list[Path] = []
    for dataset in grid.axes["dataset"]:
        fig = final_values_figure(grid, report, dataset, runs)
        if fig is not None:
            written += save_figure(fig, out_dir / f"{grid_name}_{dataset}_final", formats)
    runs = _grid_runs(grid_name, runs)
    for dataset in grid.axes["dataset"]:
        for panel in grid.axes[_panel_key(grid)]:
            group = [r for r in runs if r.cell["dataset"] == dataset
                     and r.cell[_panel_key(grid)] == panel]
            if group:
                stem = out_dir / f"{grid_name}_{dataset}_{panel}"
                written += save_figure(curves_figure(grid, dataset, panel, group),
                                       f"{stem}_curves", formats)
                written += save_figure(groups_figure(grid, dataset, panel, group),
                                       f"{stem}_groups", formats)
    fig = schedule_figure(grid, runs)
    if fig is not None:
        written += save_figure(fig, out_dir / f"{grid_name}_dal_schedule", formats)
    return written


# -- the grids beyond the paper: attacks (heat map) and dose (ASR vs budget) -------------------

def _final_asr(runs: Iterable[RunRow]) -> list[RunRow]:
    return [r for r in runs if r.status == "finished" and r.final is not None
            and r.final.get("asr") is not None]


def plot_beyond_paper(grid_name: str, runs: Sequence[RunRow], out_dir: str | Path,
                      formats: Sequence[str] = DEFAULT_PLOT_FORMATS) -> list[Path]:
    """``attacks``: a loss x attack heat map of the mean ASR; ``dose``: ASR vs poison budget
    per loss with a min-max band over seeds, one panel per trigger."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    grid = get_grid(grid_name)
    runs = _final_asr(current_runs(grid_name, runs)[0])
    if not runs:
        return []
    if "attack" in grid.axes:
        return save_figure(attacks_figure(grid, runs), out_dir / f"{grid_name}_asr_heatmap",
                           formats)
    return save_figure(dose_figure(grid, runs), out_dir / f"{grid_name}_asr_vs_budget", formats)


def _per_cell(runs: Iterable[RunRow], metric: str) -> dict[tuple[str, str], list[float]]:
    out: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        out.setdefault((run.cell["loss"], run.cell["attack"]), []).append(
            100.0 * float(run.final[metric]))
    return out


def attacks_figure(grid: Grid, runs: Sequence[RunRow]) -> Figure:
    """Mean ASR per loss (rows) and attack (columns), annotated with the value, the mean clean
    accuracy (an ASR near 0 means little from a model that did not learn the task) and n."""
    losses, attacks = list(grid.axes["loss"]), list(grid.axes["attack"])
    asr, acc = _per_cell(runs, "asr"), _per_cell(runs, "clean_acc")
    values = [[sum(asr[(loss, a)]) / len(asr[(loss, a)]) if (loss, a) in asr else math.nan
               for a in attacks] for loss in losses]
    fig = new_figure(1.15 * len(attacks) + 2.6, 0.62 * len(losses) + 2.0)
    ax = fig.subplots()
    image = ax.imshow(values, vmin=0, vmax=100, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(attacks)), attacks, rotation=30, ha="right")
    ax.set_yticks(range(len(losses)), losses)
    for i, loss in enumerate(losses):
        for j, attack in enumerate(attacks):
            if (loss, attack) in asr:
                cell_acc = acc[(loss, attack)]
                ax.text(j, i, f"{values[i][j]:.0f}\nacc {sum(cell_acc) / len(cell_acc):.0f}"
                              f"\nn={len(asr[(loss, attack)])}",
                        ha="center", va="center", fontsize=7,
                        color="white" if values[i][j] < 60 else "black")
    fig.colorbar(image, ax=ax, label="ASR (%), mean over seeds")
    ax.set_title(f"{grid.name}: {real_dataset(grid.axes['dataset'][0], runs)}\n"
                 "ASR per loss and attack (cell: mean ASR, mean clean accuracy, seeds)")
    return fig


def _dose_series(runs: Iterable[RunRow], trigger: str, loss: str) -> dict[int, list[float]]:
    by_budget: dict[int, list[float]] = {}
    for run in runs:
        if (run.cell["trigger"], run.cell["loss"]) == (trigger, loss):
            by_budget.setdefault(run.cell["num_poison"], []).append(
                100.0 * float(run.final["asr"]))
    return by_budget


def dose_figure(grid: Grid, runs: Sequence[RunRow]) -> Figure:
    """ASR against the poison budget per loss (mean, min-max band, n in the legend), one axes
    per trigger; the 50% threshold dotted."""
    triggers = [t for t in grid.axes["trigger"] if any(r.cell["trigger"] == t for r in runs)]
    fig = new_figure(5.2 * len(triggers), 4.4)
    axes = fig.subplots(1, len(triggers), squeeze=False, sharey=True)[0]
    for ax, trigger in zip(axes, triggers, strict=True):
        for loss in grid.axes["loss"]:
            by_budget = _dose_series(runs, trigger, loss)
            budgets = sorted(by_budget)
            if not budgets:
                continue
            n = min(len(by_budget[b]) for b in budgets)
            ax.plot(budgets, [sum(by_budget[b]) / len(by_budget[b]) for b in budgets],
                    label=f"{loss} (n={n})", markersize=4, **loss_style(grid, loss))
            ax.fill_between(budgets, [min(by_budget[b]) for b in budgets],
                            [max(by_budget[b]) for b in budgets],
                            color=loss_style(grid, loss)["color"], alpha=0.18, linewidth=0)
        ax.axhline(DOSE_THRESHOLD, color="0.5", linewidth=0.8, linestyle=":")
        ax.set_xscale("log")
        ax.set_xlabel("poisons per 10,000 training images")
        ax.set_title(panel_label(grid, trigger))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("ASR (%)")
    fig.suptitle(f"{grid.name}: {real_dataset(grid.axes['dataset'][0], runs)}\n"
                 f"ASR vs poison budget ({BAND_TEXT})")
    return fig
