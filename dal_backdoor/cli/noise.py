"""``dal-backdoor noise``: generate label noise for a training set and show what it did."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import click
from rich import box
from rich.table import Table

from dal_backdoor.cli.common import (
    OutputPath,
    console,
    default_root,
    parse_key_values,
    registry_names,
)
from dal_backdoor.errors import ConfigError
from dal_backdoor.io import atomic_write_with
from dal_backdoor.validation import MAX_SEED

_FULL_MATRIX_MAX_CLASSES = 20
_TOP_OFF_DIAGONAL = 10


@click.command(name="noise")
@click.option("--dataset", default="cifar10", show_default=True,
              type=click.Choice(registry_names("dal_backdoor.data", "list_datasets")),
              help="Data set whose training labels get the noise.")
@click.option("--kind", default="symmetric", show_default=True,
              type=click.Choice(registry_names("dal_backdoor.data", "list_noise_kinds")),
              help="Noise model (cifar-n reads real human labels from --cifar-n-file).")
@click.option("--rate", type=float, default=None, show_default="0.4, 0 for kind none",
              help="Noise rate in [0, 1) (ignored by cifar-n, whose rate is measured; kind "
                   "none takes no rate).")
@click.option("--seed", "--noise-seed", "seed", type=click.IntRange(0, MAX_SEED), default=0,
              show_default=True,
              help="Seed of the noise draw: the labels a run with this --noise-seed trains on.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=default_root,
              show_default="./data or $DAL_BACKDOOR_DATA", help="Data set directory.")
@click.option("--download", is_flag=True, help="Download the data set if it is missing.")
@click.option("--dataset-param", multiple=True, metavar="K=V",
              help="Data-set options, e.g. num_samples=2000 for synthetic.")
@click.option("--exclude-true", is_flag=True,
              help="Symmetric noise draws among the K-1 other classes (default: all K, the "
                   "authors' convention, so the expected flip rate is rate*(K-1)/K).")
@click.option("--cifar-n-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CIFAR-10_human.pt / CIFAR-100_human.pt of CIFAR-N.")
@click.option("--cifar-n-key", default=None,
              help="Label set in the CIFAR-N file, e.g. worse_label, aggre_label, "
                   "random_label1, noisy_label (default: worse_label or noisy_label).")
@click.option("--labels-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Kind file: a .npy array of noisy labels, one per training sample (e.g. the "
                   "authors' files from `dal-backdoor download dal-labels`).")
@click.option("--features", type=click.Choice(["raw", "normalized"]), default="raw",
              show_default=True,
              help="Kind instance: project raw 0-255 pixels (Xia et al.'s code) or normalised "
                   "images.")
@click.option("--plot", type=OutputPath("file"), default=None,
              help="Also write the transition matrix as a heat-map PNG (needs matplotlib).")
def command(**opts: Any) -> None:
    """Corrupt a training set's labels and summarise the result.

    Prints the nominal, expected and actual noise rate, the number of flipped labels and the
    empirical transition matrix (rows: clean class, columns: noisy label, in percent; a
    compact summary for more than 20 classes).

    \b
    Examples:
      dal-backdoor noise --dataset cifar10 --kind asymmetric --rate 0.4
      dal-backdoor noise --dataset cifar100 --kind instance --rate 0.2 --plot t.png
      dal-backdoor noise --kind cifar-n --cifar-n-file CIFAR-10_human.pt \\
          --cifar-n-key aggre_label
      dal-backdoor noise --kind file \\
          --labels-file data/dal-labels/symmetric/cifar10_40.npy
    """
    from dal_backdoor.data import create_dataset, make_noisy_labels

    if opts["plot"] is not None:
        _figure_class()  # fail before any work when matplotlib is missing
    rate = noise_rate(opts["kind"], opts["rate"])
    params = parse_key_values(opts["dataset_param"], "--dataset-param")
    ds = create_dataset(opts["dataset"], opts["root"], train=True, download=opts["download"],
                        **params)
    noise = make_noisy_labels(
        ds.labels, opts["kind"], rate, ds.num_classes, opts["seed"],
        dataset=ds.name, images=ds.images, coarse_labels=ds.coarse_labels,
        exclude_true=opts["exclude_true"], cifar_n_path=opts["cifar_n_file"],
        cifar_n_key=opts["cifar_n_key"], labels_path=opts["labels_file"],
        features=opts["features"],
    )
    console.print(f"[bold]{noise.kind}[/] noise on {ds.name} (train, {len(ds):,} samples, "
                  f"{ds.num_classes} classes), seed {opts['seed']}")
    console.print(summary_table(noise))
    digits = _matrix_digits(ds.num_classes, console.width)
    if digits is not None:
        console.print(matrix_table(noise.transition_matrix, ds.classes, digits))
    else:
        console.print(matrix_summary(noise.transition_matrix, ds.classes))
    if opts["plot"] is not None:
        write_heatmap(opts["plot"], noise.transition_matrix,
                      f"{ds.name}: {noise.kind} noise, actual rate {noise.actual_rate:.1%}")
        console.print(f"wrote {opts['plot']}")


#: The rate of a kind that needs one, when --rate is not given.
DEFAULT_RATE = 0.4


def noise_rate(kind: str, rate: float | None) -> float:
    """--rate resolved: 0.4 by default; kind none takes no rate (0 or nothing)."""
    if kind != "none":
        return DEFAULT_RATE if rate is None else rate
    if rate:
        raise ConfigError(f"--rate {rate:g} with --kind none: no noise has no rate; drop "
                          "--rate or choose a noise kind")
    return 0.0


def _pct(value: float, digits: int = 2) -> str:
    return f"{100 * value:.{digits}f}%"


def summary_table(noise: Any) -> Table:
    """Nominal / expected / actual rate and the number of flipped labels."""
    k = noise.num_classes
    if noise.expected_rate is None:
        expected = "n/a (measured labels)"
    else:
        expected = _pct(noise.expected_rate)
        if noise.kind == "symmetric" and noise.expected_rate != noise.nominal_rate:
            expected += f" (= rate x (K-1)/K, K={k})"
    nominal = "ignored" if noise.kind in ("cifar-n", "file") else _pct(noise.nominal_rate)
    table = Table(box=box.SIMPLE, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("nominal rate", nominal)
    table.add_row("expected rate", expected)
    table.add_row("actual rate", _pct(noise.actual_rate))
    table.add_row("flipped", f"{noise.num_flipped:,} of {noise.labels.numel():,}")
    return table


_LABEL_WIDTH = 11


def _matrix_digits(num_classes: int, width: int) -> int | None:
    """Decimals for the full matrix that let it fit ``width`` columns; None: use the summary."""
    if num_classes > _FULL_MATRIX_MAX_CLASSES:
        return None
    for digits, cell in ((1, 5), (0, 3)):
        if _LABEL_WIDTH + 1 + num_classes * (cell + 1) <= width:
            return digits
    return None


def matrix_table(matrix: Any, classes: tuple[str, ...], digits: int = 1) -> Table:
    """The full K x K transition matrix in percent (rows clean, columns noisy)."""
    k = int(matrix.shape[0])
    cell = 5 if digits else 3
    table = Table(title="transition matrix (%): row = clean class, column = noisy label",
                  box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0, 0, 1))
    table.add_column("clean", style="bold", no_wrap=True, max_width=_LABEL_WIDTH,
                     overflow="ellipsis")
    for j in range(k):
        table.add_column(str(j), justify="right", no_wrap=True, width=cell)
    for i in range(k):
        cells = []
        for j in range(k):
            value = float(matrix[i, j])
            text = "·" if value == 0 else f"{100 * value:.{digits}f}"
            cells.append(f"[bold]{text}[/]" if i == j else text)
        table.add_row(f"{i} {classes[i]}", *cells)
    return table


def matrix_summary(matrix: Any, classes: tuple[str, ...]) -> Table:
    """Diagonal statistics and the largest off-diagonal entries, for many classes."""
    import torch

    k = int(matrix.shape[0])
    diag = torch.diagonal(matrix)
    off = matrix.clone()
    off.fill_diagonal_(0)
    table = Table(title=f"transition matrix summary ({k} classes)", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    table.add_column("entry", style="bold")
    table.add_column("%", justify="right")
    table.add_row("diagonal mean", f"{100 * float(diag.mean()):.2f}")
    table.add_row("diagonal min", f"{100 * float(diag.min()):.2f} (class {int(diag.argmin())})")
    table.add_row("diagonal max", f"{100 * float(diag.max()):.2f} (class {int(diag.argmax())})")
    table.add_row("non-zero off-diagonal", f"{int((off > 0).sum())} of {k * (k - 1)}")
    values, flat = torch.topk(off.flatten(), min(_TOP_OFF_DIAGONAL, k * k))
    for value, pos in zip(values.tolist(), flat.tolist(), strict=True):
        if value <= 0:
            break
        i, j = divmod(pos, k)
        table.add_row(f"{i} {classes[i]} -> {j} {classes[j]}", f"{100 * value:.2f}")
    return table


def _figure_class() -> Any:
    """matplotlib's ``Figure`` (no pyplot, so no global backend state), or one clear error."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("--plot needs matplotlib, which is not installed; "
                          "pip install 'dal-backdoor[plot]'") from None
    return Figure


def write_heatmap(path: Path, matrix: Any, title: str) -> None:
    """Write the transition matrix as a PNG heat-map, atomically."""
    figure_cls = _figure_class()

    k = int(matrix.shape[0])
    fig = figure_cls(figsize=(6, 5), dpi=100)
    ax = fig.add_subplot()
    image = ax.imshow(100 * matrix.numpy(), cmap="viridis", vmin=0, vmax=100)
    fig.colorbar(image, ax=ax, label="% of clean class")
    ax.set_xlabel("noisy label")
    ax.set_ylabel("clean class")
    ax.set_title(title)
    if k <= _FULL_MATRIX_MAX_CLASSES:
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))

    def writer(fh: IO[bytes]) -> None:
        fig.savefig(fh, format="png", bbox_inches="tight")

    atomic_write_with(path, writer)
