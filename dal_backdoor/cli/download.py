"""``dal-backdoor download``: fetch data sets through torchvision, and the DAL authors' noisy
labels from GitHub (needs internet)."""

from __future__ import annotations

import click

from dal_backdoor.cli.common import console, default_root, registry_names
from dal_backdoor.data.catalog import DATASETS

#: Not a data set: the authors' noisy-label files for Tables 2-3.
DAL_LABELS = "dal-labels"
#: Data sets generated on the fly: nothing to download.
GENERATED = ("synthetic",)
#: Data sets read from the user's own files (``folder``, ``npz``): nothing to download.
FROM_FILES = tuple(i.name for i in DATASETS.infos() if i.from_files)


class DownloadChoice(click.Choice):
    """The downloadable names; a generated data set gets its own one-line explanation."""

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> object:
        if value in GENERATED:
            self.fail(f"{value} is generated on the fly, there is nothing to download; use "
                      f"--dataset {value} directly", param, ctx)
        if value in FROM_FILES:
            self.fail(f"{value} reads your own files, there is nothing to download; use "
                      f"--dataset {value} --dataset-param path=...", param, ctx)
        return super().convert(value, param, ctx)


@click.command()
@click.argument("names", nargs=-1, required=True,
                type=DownloadChoice([n for n in registry_names(
                    "dal_backdoor.data", "list_datasets", (DAL_LABELS,))
                    if n not in GENERATED + FROM_FILES]))
@click.option("--root", default=default_root, show_default="./data or $DAL_BACKDOOR_DATA",
              help="Where data sets live.")
def command(names: tuple[str, ...], root: str) -> None:
    """Download NAMES (cifar10, cifar100, fashion-mnist, dal-labels) into --root, then load
    both splits once to check them. Data sets already there are only checked.

    dal-labels: the DAL authors' noisy-label files for Tables 2-3 (GitHub XiuchuanLi/DAL,
    pinned commit, label/{kind}/{dataset}_{rate}.npy) into ROOT/dal-labels/; the `paper`
    preset trains on them when they are there. Files already there and valid are kept.
    The synthetic data set is generated on the fly: nothing to download.

    \b
    Example:
      dal-backdoor download cifar10 fashion-mnist dal-labels --root data
    """
    from dal_backdoor.data import create_dataset

    for name in dict.fromkeys(names):
        if name == DAL_LABELS:
            _download_dal_labels(root)
            continue
        sizes = []
        for train in (True, False):
            data = create_dataset(name, root, train=train, download=True)
            sizes.append(len(data))
        console.print(f"[green]ok[/] {name}: {sizes[0]} training and {sizes[1]} test images "
                      f"under {root}")


def _download_dal_labels(root: str) -> None:
    from dal_backdoor.data import authors_labels

    done = authors_labels.download_authors_labels(root)
    fetched = sum(1 for _, downloaded in done if downloaded)
    console.print(f"[green]ok[/] {DAL_LABELS}: {len(done)} label files under "
                  f"{root}/{authors_labels.DAL_LABELS_DIR} ({fetched} downloaded, "
                  f"{len(done) - fetched} already there) from {authors_labels.AUTHORS_REPO}@"
                  f"{authors_labels.AUTHORS_COMMIT[:12]}")
