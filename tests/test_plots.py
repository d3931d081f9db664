"""The figures of ``dal_backdoor.plots``: built from hand-made runs and inspected as matplotlib
objects (bars, points, twin axes, tick labels, titles, layout), and written in each format."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from dal_backdoor import paper_values
from dal_backdoor.errors import ConfigError
from dal_backdoor.experiments import get_grid
from dal_backdoor.plots import (
    Band,
    crossing_epoch,
    curves_figure,
    final_values_figure,
    groups_figure,
    parse_plot_formats,
    plot_report,
    real_dataset,
    save_figure,
    schedule_figure,
    seed_band,
)
from dal_backdoor.report import RunRow, build_report
from tests.helpers import invoke, make_table_store, one_error_line

pytest.importorskip("matplotlib")

EPOCHS = (1, 2, 3, 4)
DAL_Q = (0.8875, 0.975, 1.0625, 1.15)
DAL_LAM = (0.0, 0.0, 0.125, 0.3)


def epoch_rows(loss: str, acc: float, other: str, other_end: float) -> list[dict]:
    """Accuracy rising linearly to ``acc``, ``other`` rising to ``other_end``; DAL's q, lam."""
    rows = []
    for i, epoch in enumerate(EPOCHS):
        row = {"epoch": epoch, "clean_acc": acc * epoch / 4, other: other_end * epoch / 4,
               "train_acc_clean": 0.5}
        if loss == "dal":
            row.update(q=DAL_Q[i], lam=DAL_LAM[i])
        rows.append(row)
    return rows


def backdoor_run(loss: str, trigger: str, seed: int, acc: float, asr: float) -> RunRow:
    return RunRow(f"{loss}-{trigger}-{seed}",
                  {"dataset": "cifar10", "loss": loss, "trigger": trigger, "seed": seed},
                  "finished", {"clean_acc": acc, "asr": asr},
                  epoch_rows(loss, acc, "asr", asr),
                  {"dataset": "fashion-mnist", "loss": loss,
                   "trigger": "weng" if trigger == "global" else trigger})


def noise_run(loss: str, setting: str, seed: int, acc: float, fit: float) -> RunRow:
    kind, rate = setting.rsplit("-", 1) if setting != "clean" else ("none", "0")
    return RunRow(f"{loss}-{setting}-{seed}",
                  {"dataset": "cifar10", "loss": loss, "noise": setting, "seed": seed},
                  "finished", {"clean_acc": acc}, epoch_rows(loss, acc, "train_acc_noisy", fit),
                  {"dataset": "fashion-mnist", "loss": loss, "noise_kind": kind,
                   "noise_rate": float(rate)})


BACKDOOR = [
    backdoor_run("ce", "local", 0, 0.90, 0.98), backdoor_run("ce", "local", 1, 0.92, 0.96),
    backdoor_run("ce", "local", 2, 0.91, 1.00),
    backdoor_run("dal", "local", 0, 0.85, 0.00), backdoor_run("dal", "local", 1, 0.83, 0.02),
    backdoor_run("ce", "global", 0, 0.90, 0.60),
]
NOISE = [noise_run(loss, setting, seed, acc - 0.01 * seed, fit)
         for (loss, acc, fit), setting, seed in itertools.product(
             (("ce", 0.60, 0.9), ("gce", 0.80, 0.3), ("dal", 0.84, 0.1)),
             ("symmetric-0.4", "symmetric-0.8"), (0, 1, 2))]


def drawn(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def bars(ax) -> list:
    from matplotlib.patches import Rectangle

    return [p for p in ax.patches if isinstance(p, Rectangle)]


def assert_laid_out(fig) -> None:
    """Suptitle, axes titles and legends lie inside the figure and do not overlap each other;
    no axes title overlaps another axes' plotting area; axis labels lie inside the figure."""
    renderer = drawn(fig)
    axes_titles = [ax.title.get_window_extent(renderer) for ax in fig.axes
                   if ax.get_visible() and ax.get_title()]
    boxes = [t.get_window_extent(renderer) for t in (fig._suptitle,)
             if t is not None]
    boxes += axes_titles + [legend.get_window_extent(renderer) for legend in fig.legends]
    labels = [label.get_window_extent(renderer) for ax in fig.axes if ax.get_visible()
              for label in (ax.xaxis.label, ax.yaxis.label) if label.get_text()]
    frame = fig.bbox
    for box in boxes + labels:
        assert frame.x0 - 1 <= box.x0, box
        assert box.x1 <= frame.x1 + 1, box
        assert frame.y0 - 1 <= box.y0, box
        assert box.y1 <= frame.y1 + 1, box
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)
    areas = [ax.get_window_extent(renderer) for ax in fig.axes if ax.get_visible()]
    for box in axes_titles:
        assert not any(box.overlaps(area) for area in areas), box


def test_parse_plot_formats() -> None:
    assert parse_plot_formats([]) == ("png", "pdf")
    assert parse_plot_formats(["svg,PNG", "pdf", "svg"]) == ("svg", "png", "pdf")
    with pytest.raises(ConfigError, match=r"'jpg' is not a plot format; allowed: png, pdf, svg"):
        parse_plot_formats(["png,jpg"])


def test_real_dataset_names_the_substitute() -> None:
    assert real_dataset("cifar10", BACKDOOR) == "cifar10 row, ran on fashion-mnist"
    assert real_dataset("cifar10", [RunRow("a", {}, "finished", {}, [], {})]) == "cifar10"
    same = RunRow("a", {}, "finished", {}, [], {"dataset": "cifar10"})
    assert real_dataset("cifar10", [same]) == "cifar10"


def test_seed_band_and_crossing() -> None:
    band = seed_band(BACKDOOR[:3], "asr")
    assert band.epochs == EPOCHS
    assert band.n == 3
    assert band.mean[-1] == pytest.approx(98.0)
    assert (band.low[-1], band.high[-1]) == pytest.approx((96.0, 100.0))
    assert band.low[0] == pytest.approx(24.0)
    assert seed_band(BACKDOOR[:3], "q") is None
    q = seed_band(BACKDOOR[3:5], "q", scale=1.0)
    assert crossing_epoch(q) == pytest.approx(2 + 0.025 / 0.0875)
    assert crossing_epoch(Band((1, 2), (1.2, 1.3), (1.2, 1.3), (1.2, 1.3), 1)) == 1.0
    assert crossing_epoch(Band((1, 2), (0.2, 0.3), (0.2, 0.3), (0.2, 0.3), 1)) is None


def test_backdoor_final_values_beside_the_paper() -> None:
    grid = get_grid("table6")
    report = build_report("table6", "small", BACKDOOR)
    fig = final_values_figure(grid, report, "cifar10", BACKDOOR)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == [
        "local trigger: clean test accuracy", "global trigger (weng): clean test accuracy",
        "local trigger: ASR", "global trigger (weng): ASR"]
    local_acc, global_acc, local_asr, _ = axes
    # ce and dal: our bar and the paper's bar each
    assert [round(b.get_height(), 2) for b in bars(local_acc)] == [
        91.0, paper_values.TABLE6[("cifar10", "ce", "local")]["acc"][0],
        84.0, paper_values.TABLE6[("cifar10", "dal", "local")]["acc"][0]]
    assert [b.get_hatch() for b in bars(local_acc)] == [None, "///", None, "///"]
    assert [t.get_text() for t in local_acc.get_xticklabels()] == ["ce", "dal"]
    from matplotlib.collections import PathCollection

    points = [tuple(float(y) for _, y in c.get_offsets()) for c in local_acc.collections
              if isinstance(c, PathCollection)]
    assert sorted(points) == [(85.0, 83.0), (90.0, 92.0, 91.0)]
    assert [t.get_text() for t in local_acc.texts] == ["n=3", "n=2"]
    assert [t.get_text() for t in global_acc.texts] == ["n=1"]
    assert [round(b.get_height(), 2) for b in bars(local_asr)][0] == 98.0
    assert "cifar10 row, ran on fashion-mnist, preset small" in fig._suptitle.get_text()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["ours: mean ± std", "ours: one seed (n above)", "paper: mean ± std"]
    assert_laid_out(fig)
    assert final_values_figure(grid, report, "cifar100", BACKDOOR) is None


def test_table2_small_clean_column_has_no_paper_bar() -> None:
    runs = [noise_run(loss, setting, 0, acc, 0.2)
            for loss, acc in (("ce", 0.9), ("dal", 0.88))
            for setting in ("clean", "symmetric-0.8")]
    grid = get_grid("table2-small")
    report = build_report("table2-small", "small", runs)
    fig = final_values_figure(grid, report, "cifar10", runs)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["clean labels (no noise)",
                                               "symmetric-0.8 label noise"]
    assert [round(b.get_height(), 2) for b in bars(axes[0])] == [90.0, 88.0]
    assert len(bars(axes[1])) == 4  # ours and the paper's, per loss
    clean = [r for r in runs if r.cell["noise"] == "clean"]
    assert "clean labels (no noise)" in curves_figure(
        grid, "cifar10", "clean", clean)._suptitle.get_text()
    assert_laid_out(fig)


def test_noise_final_values_use_the_noise_table() -> None:
    grid = get_grid("table2")
    report = build_report("table2", "small", NOISE)
    fig = final_values_figure(grid, report, "cifar10", NOISE)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["symmetric-0.4 label noise",
                                               "symmetric-0.8 label noise"]
    heights = [round(b.get_height(), 2) for b in bars(axes[1])]
    assert heights == [59.0, paper_values.TABLE2[("ce", "symmetric-0.8")][0],
                       79.0, paper_values.TABLE2[("gce", "symmetric-0.8")][0],
                       83.0, paper_values.TABLE2[("dal", "symmetric-0.8")][0]]
    assert axes[0].get_ylabel() == "test accuracy (%)"
    assert_laid_out(fig)


def integer_ticks(ax) -> list[str]:
    """The x tick labels in view (the figure must be drawn); each must be an integer."""
    low, high = ax.get_xlim()
    labels = [t.get_text() for t in ax.get_xticklabels()
              if low <= t.get_position()[0] <= high and t.get_text()]
    assert labels
    assert all(label.isdigit() for label in labels), labels
    return labels


def test_backdoor_curves_have_bands_ticks_and_the_dal_schedule_on_a_twin_axis() -> None:
    grid = get_grid("table6")
    local = [r for r in BACKDOOR if r.cell["trigger"] == "local"]
    fig = curves_figure(grid, "cifar10", "local", local)
    drawn(fig)
    main = [ax for ax in fig.axes if ax.get_ylabel() != "DAL q(t), λ(t)"]
    twins = [ax for ax in fig.axes if ax.get_ylabel() == "DAL q(t), λ(t)"]
    assert [ax.get_ylabel() for ax in main] == ["clean test accuracy (%)",
                                                "ASR (%, paper's protocol)"]
    assert [ax.get_title() for ax in main] == ["clean accuracy", "attack success rate"]
    assert len(twins) == 2
    assert [line.get_label() for line in twins[0].get_lines()] == ["DAL q(t)", "DAL λ(t)"]
    assert twins[0].get_lines()[0].get_ydata().tolist() == pytest.approx(list(DAL_Q))
    assert integer_ticks(main[0])[:4] == ["1", "2", "3", "4"]
    lines = [line for line in main[1].get_lines() if line.get_label().startswith(("ce", "dal"))]
    assert [line.get_label() for line in lines] == ["ce (n=3)", "dal (n=2)"]
    assert all(line.get_marker() not in (None, "None", "") for line in lines)
    assert len(main[1].collections) == 2  # one min-max band per loss
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "DAL q(t) = 1 (epoch 2.3)" in legend
    assert "DAL q(t)" in legend
    title = fig._suptitle.get_text()
    assert title.startswith("table6: cifar10 row, ran on fashion-mnist, local trigger")
    assert_laid_out(fig)


def test_noise_curves_show_the_fit_of_the_noisy_labels() -> None:
    grid = get_grid("table2")
    group = [r for r in NOISE if r.cell["noise"] == "symmetric-0.8"]
    fig = curves_figure(grid, "cifar10", "symmetric-0.8", group)
    main = [ax for ax in fig.axes if ax.get_ylabel() != "DAL q(t), λ(t)"]
    assert main[1].get_title() == "fit of the noisy labels"
    assert main[1].get_ylabel() == "train acc. on noisy samples (%)"
    ce = next(line for line in main[1].get_lines() if line.get_label() == "ce (n=3)")
    assert ce.get_ydata().tolist() == pytest.approx([22.5, 45.0, 67.5, 90.0])
    assert "symmetric-0.8 label noise" in fig._suptitle.get_text()
    assert_laid_out(fig)


def test_groups_and_schedule_figures() -> None:
    grid = get_grid("table6")
    fig = groups_figure(grid, "cifar10", "local", BACKDOOR[:5])
    assert [ax.get_title() for ax in fig.axes] == ["ce", "dal"]
    assert [ax.get_ylabel() for ax in fig.axes] == ["accuracy on observed labels (%)", ""]
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["clean samples (n=3)", "test (clean) (n=3)"]
    drawn(fig)
    integer_ticks(fig.axes[1])
    assert_laid_out(fig)
    fig = schedule_figure(grid, BACKDOOR)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()][:2] == [
        "q(t), cifar10 row, ran on fashion-mnist", "λ(t), cifar10 row, ran on fashion-mnist"]
    assert schedule_figure(grid, BACKDOOR[:3]) is None


def test_plot_report_writes_every_figure_in_each_format(tmp_path: Path) -> None:
    from PIL import Image

    paths = plot_report("table6", BACKDOOR, tmp_path)
    names = sorted(p.name for p in paths)
    stems = sorted({p.stem for p in paths})
    assert stems == ["table6_cifar10_final", "table6_cifar10_global_curves",
                     "table6_cifar10_global_groups", "table6_cifar10_local_curves",
                     "table6_cifar10_local_groups", "table6_dal_schedule"]
    assert names == sorted(f"{s}.{f}" for s in stems for f in ("png", "pdf"))
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # no temp files left
    for path in paths:
        head = path.read_bytes()[:4]
        assert head == (b"\x89PNG" if path.suffix == ".png" else b"%PDF")
    with Image.open(tmp_path / "table6_cifar10_final.png") as img:
        assert img.info["dpi"] == pytest.approx((200, 200), abs=0.1)
    (svg,) = plot_report("table2", NOISE[:1], tmp_path / "svg", formats=("svg",))[:1]
    assert svg.name == "table2_cifar10_final.svg"
    assert b"<svg" in svg.read_bytes()[:400]


def test_saved_pdf_is_reproducible(tmp_path: Path) -> None:
    grid = get_grid("table6")
    fig = schedule_figure(grid, BACKDOOR)
    (a,) = save_figure(fig, tmp_path / "a", ("pdf",))
    (b,) = save_figure(fig, tmp_path / "b", ("pdf",))
    assert a.read_bytes() == b.read_bytes()
    with pytest.raises(ConfigError, match="unknown plot format 'eps'"):
        save_figure(fig, tmp_path / "c", ("eps",))


def test_table_cli_plot_formats(tmp_path: Path) -> None:
    db = make_table_store(tmp_path / "r.db")
    base = ["table", "table6", "--preset", "ci", "--db", str(db), "--format", "md"]
    result = invoke(*base, "--plot", str(tmp_path / "p"), "--plot-format", "svg")
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "p").iterdir())
    assert written == ["table6_cifar10_final.svg", "table6_cifar10_local_curves.svg",
                       "table6_cifar10_local_groups.svg"]
    result = invoke(*base, "--plot", str(tmp_path / "d"))
    assert result.exit_code == 0, result.output
    assert sorted({p.suffix for p in (tmp_path / "d").iterdir()}) == [".pdf", ".png"]
    result = invoke(*base, "--plot", str(tmp_path / "bad"), "--plot-format", "png,jpg")
    assert result.exit_code == 2
    assert one_error_line(result.output) == ("Error: --plot-format 'jpg' is not a plot "
                                             "format; allowed: png, pdf, svg")
    assert not (tmp_path / "bad").exists()
    result = invoke(*base, "--plot-format", "pdf")
    assert result.exit_code == 2
    assert one_error_line(result.output) == "Error: --plot-format needs --plot DIR"
