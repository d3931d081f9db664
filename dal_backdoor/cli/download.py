"""``dal-backdoor download``: fetch data sets through torchvision (needs internet)."""

from __future__ import annotations

import click

from dal_backdoor.cli.common import console, default_root, registry_names


@click.command()
@click.argument("names", nargs=-1, required=True,
                type=click.Choice(registry_names("dal_backdoor.data", "list_datasets")))
@click.option("--root", default=default_root, show_default="./data or $DAL_BACKDOOR_DATA",
              help="Where data sets live.")
def command(names: tuple[str, ...], root: str) -> None:
    """Download NAMES (cifar10, cifar100, fashion-mnist) into --root, then load both splits
    once to check them. Data sets already there are only checked."""
    from dal_backdoor.data import create_dataset

    for name in dict.fromkeys(names):
        sizes = []
        for train in (True, False):
            data = create_dataset(name, root, train=train, download=True)
            sizes.append(len(data))
        console.print(f"[green]ok[/] {name}: {sizes[0]} training and {sizes[1]} test images "
                      f"under {root}")
