"""The plot of a user-defined grid: each metric against the column axis, one line per row.

One figure, one panel per metric (clean accuracy, ASR, ...): the x axis is the table's column
axis (numbers on a numeric scale with a tick at each value, names evenly spaced), one line
per row label with markers at the mean over seeds and error bars of the population std; the
legend gives each line's number of seeds n. Written with matplotlib (optional extra
``plot``), atomically, as PNG at 200 dpi (and PDF/SVG when asked).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dal_backdoor.errors import ConfigError
from dal_backdoor.grid_report import SHORT, Layout
from dal_backdoor.metrics import METRICS, as_percent
from dal_backdoor.report import RunRow, population_std

PLOT_FORMATS = ("png", "pdf", "svg")
DPI = 200


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install 'dal-backdoor[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def series(runs: Sequence[RunRow], layout: Layout, x_axis: str, metric: str,
           ) -> dict[str, dict[Any, list[float]]]:
    """line label -> x value -> the metric (%) of each finished run."""
    line_axes = [k for k in layout.rows if k != x_axis]
    out: dict[str, dict[Any, list[float]]] = {}
    for run in runs:
        value = as_percent((run.final or {}).get(metric)) if run.status == "finished" else None
        if value is None:
            continue
        label = "/".join(str(run.cell.get(k)) for k in line_axes) or metric
        out.setdefault(label, {}).setdefault(run.cell.get(x_axis), []).append(value)
    return out


def _panel(ax: Any, lines: dict[str, dict[Any, list[float]]], x_values: list[Any],
           x_axis: str, metric: str) -> None:
    numeric = _numeric(x_values)
    position = {v: (v if numeric else i) for i, v in enumerate(x_values)}
    for label, points in lines.items():
        xs = [x for x in x_values if x in points]
        means = [sum(points[x]) / len(points[x]) for x in xs]
        stds = [population_std(points[x]) for x in xs]
        ns = sorted({len(points[x]) for x in xs})
        n_text = f"n={ns[0]}" if len(ns) == 1 else f"n={ns[0]}-{ns[-1]}"
        ax.errorbar([position[x] for x in xs], means, yerr=stds, marker="o", capsize=3,
                    label=f"{label} ({n_text})")
    ax.set_xticks([position[v] for v in x_values], [str(v) for v in x_values])
    ax.set_xlabel(x_axis)
    ax.set_ylabel(f"{METRICS[metric].label} (%)")
    ax.set_title(SHORT[metric])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _datasets(runs: Sequence[RunRow]) -> str:
    names = sorted({str(r.config.get("dataset")) for r in runs if r.config.get("dataset")})
    return ", ".join(names) or "unknown data"


def plot_user_grid(name: str, preset: str, runs: Sequence[RunRow], layout: Layout,
                   axes: dict[str, list[Any]], out_dir: str | Path,
                   formats: Sequence[str] = ("png",)) -> list[Path]:
    """Write ``<name>_<metrics>_vs_<axis>.<fmt>`` into ``out_dir``; returns the paths (none
    when no run has finished)."""
    from dal_backdoor.io import atomic_write_with

    bad = [f for f in formats if f not in PLOT_FORMATS]
    if bad:
        raise ConfigError(f"unknown plot format {bad[0]!r}; allowed: {', '.join(PLOT_FORMATS)}")
    x_axis = layout.column or layout.rows[0]
    panels = [(m, series(runs, layout, x_axis, m)) for m in layout.metrics]
    panels = [(m, lines) for m, lines in panels if lines]
    if not panels:
        return []
    plt = _pyplot()
    fig, grid = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, (metric, lines) in zip(grid[0], panels, strict=True):
        _panel(ax, lines, list(axes[x_axis]), x_axis, metric)
    fig.suptitle(f"{name} ({_datasets(runs)}, preset {preset}): mean ± std over seeds")
    fig.tight_layout()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.+-]", "_", f"{name}_{'_'.join(m for m, _ in panels)}"
                                           f"_vs_{x_axis}")
    written = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        atomic_write_with(path, lambda fh, fmt=fmt: fig.savefig(fh, format=fmt, dpi=DPI,
                                                                 bbox_inches="tight"))
        written.append(path)
    plt.close(fig)
    return written
