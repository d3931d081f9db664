"""``dal-backdoor poison``: poison a training set, write its manifest and a preview image."""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.markup import escape
from rich.table import Table

from dal_backdoor.cli.common import (
    OutputPath,
    console,
    default_root,
    parse_key_values,
    registry_names,
)
from dal_backdoor.errors import ConfigError
from dal_backdoor.io import atomic_write_bytes
from dal_backdoor.validation import MAX_SEED

MANIFEST_NAME = "manifest.json"
PREVIEW_NAME = "preview.png"
PREVIEW_COLUMNS = 8
_TILE_TARGET = 128  # magnified tile side in pixels (nearest-neighbour, integer factor)
_GAP = 2
_BACKGROUND = 128


@click.command(name="poison")
@click.option("--dataset", default="cifar10", show_default=True,
              type=click.Choice(registry_names("dal_backdoor.data", "list_datasets")),
              help="Data set whose training split is poisoned.")
@click.option("--trigger", default="local", show_default=True,
              type=click.Choice(registry_names("triggers", "list_triggers")),
              help="Backdoor trigger (see `dal-backdoor triggers`).")
@click.option("--num-poison", type=int, default=100, show_default=True,
              help="Number of training images that get the trigger and the target label.")
@click.option("--target-class", type=int, default=7, show_default=True,
              help="Class the poisoned images are relabelled to.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
              help="Seed of the choice of poisoned images.")
@click.option("--out", type=OutputPath("dir", entries=(MANIFEST_NAME, PREVIEW_NAME)),
              required=True,
              help=f"Output directory for {MANIFEST_NAME} and {PREVIEW_NAME}.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=default_root,
              show_default="./data or $DAL_BACKDOOR_DATA", help="Data set directory.")
@click.option("--download", is_flag=True, help="Download the data set if it is missing.")
@click.option("--trigger-param", multiple=True, metavar="K=V",
              help="Trigger parameters, e.g. size=4, amplitude=32/255 or pattern_file=key.png.")
@click.option("--cross-ratio", type=click.FloatRange(0), default=0.0, show_default=True,
              help="WaNet's noise mode: cross_ratio x num_poison extra images warped with "
                   "random noise, labels kept (wanet only; the paper uses 2).")
@click.option("--dataset-param", multiple=True, metavar="K=V",
              help="Data-set options, e.g. num_samples=2000 for synthetic.")
def command(**opts: Any) -> None:
    """Poison a training set the way the paper's Table 6 does and show the result.

    Chooses --num-poison images uniformly among those not labelled --target-class (seeded),
    stamps the trigger on them and relabels them. Writes OUT/manifest.json (indices, original
    labels, trigger, seed and a SHA-256 of the poisoned images, from which
    dal_backdoor.data.poison.PoisonManifest.apply re-creates and verifies the poisoned set)
    and OUT/preview.png (row 1: clean images, row 2: the same images poisoned, row 3:
    |difference| scaled so the largest is white; rows labelled, columns headed with each
    image's class name). Nothing is written if any option is invalid.

    \b
    Examples:
      dal-backdoor poison --dataset cifar10 --trigger local --out poison/local
      dal-backdoor poison --trigger weng --out poison/weng      (the paper's global trigger)
      dal-backdoor poison --trigger grating --trigger-param amplitude=32/255 --out p/
      dal-backdoor poison --trigger additive --trigger-param pattern_file=key.png --out p/
    """
    from dal_backdoor.data import create_dataset
    from dal_backdoor.data.poison import poison
    from dal_backdoor.data.prepare import derive_seed
    from triggers import create_trigger

    out: Path = opts["out"]
    trigger_params = parse_key_values(opts["trigger_param"], "--trigger-param")
    dataset_params = parse_key_values(opts["dataset_param"], "--dataset-param")
    check_writable_dir(out, "--out")
    ds = create_dataset(opts["dataset"], opts["root"], train=True, download=opts["download"],
                        **dataset_params)
    trigger = create_trigger(opts["trigger"], ds.image_size, ds.channels, **trigger_params)
    images, labels, manifest = poison(ds.images, ds.labels, trigger, opts["num_poison"],
                                      opts["target_class"], opts["seed"],
                                      num_classes=ds.num_classes,
                                      cross_ratio=opts["cross_ratio"],
                                      cross_seed=derive_seed(opts["seed"], "cross"))
    preview = None
    if manifest.num_poison:
        shown = list(manifest.indices[:PREVIEW_COLUMNS])
        sources = [ds.classes[c] for c in manifest.original_labels[:PREVIEW_COLUMNS]]
        target = f"{ds.classes[manifest.target_class]} ({manifest.target_class})"
        preview, factor = preview_png(ds.images[shown], images[shown], sources, target)

    out.mkdir(parents=True, exist_ok=True)
    manifest.save(out / MANIFEST_NAME)
    if preview is not None:
        atomic_write_bytes(out / PREVIEW_NAME, preview)

    target = manifest.target_class
    console.print(f"[bold]poisoned {manifest.num_poison:,} of {len(ds):,}[/] {ds.name} training "
                  f"samples, seed {manifest.seed}")
    console.print(f"target class {target} ({escape(ds.classes[target])})")
    console.print("threat model: " + ("clean-label (poisons drawn from the target class, labels "
                                      "unchanged)" if manifest.clean_label else
                                      "dirty-label (poisons relabelled to the target class)"))
    if manifest.cross_indices:
        console.print(f"noise mode: {len(manifest.cross_indices):,} further images warped with "
                      "random noise, labels kept")
    console.print(source_class_table(manifest.original_labels, ds.classes))
    console.print(trigger_table(manifest.trigger))
    console.print(f"wrote {escape(str(out / MANIFEST_NAME))}")
    if preview is not None:
        console.print(f"wrote {escape(str(out / PREVIEW_NAME))} (rows: clean, poisoned, "
                      f"|difference| x{factor:.1f})")
    else:
        console.print("no poisoned images, so no preview")


def check_writable_dir(path: Path, option: str) -> None:
    """ConfigError unless ``path`` is (or can be created as) a writable directory."""
    for name in (MANIFEST_NAME, PREVIEW_NAME):
        if (path / name).is_dir():
            raise ConfigError(f"{option} {path}: {name} exists and is a directory")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        what = "is a file" if probe == path else f"cannot be created: {probe} is not a directory"
        raise ConfigError(f"{option} {path} {what}")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path} is not writable ({probe} does not allow writing)")


def source_class_table(original_labels: tuple[int, ...], classes: tuple[str, ...]) -> Table:
    """How many poisoned images came from each class (classes with none are left out)."""
    counts = Counter(original_labels)
    table = Table(title="poisoned images by source class", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("class", justify="right")
    table.add_column("name")
    table.add_column("poisoned", justify="right")
    for label in sorted(counts):
        table.add_row(str(label), escape(classes[label]), str(counts[label]))
    return table


def trigger_table(description: dict[str, Any]) -> Table:
    """The trigger's name and every resolved parameter."""
    table = Table(title=f"trigger {description['name']}", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("parameter")
    table.add_column("value")
    for key, value in description.items():
        if key != "name":
            table.add_row(key, escape(str(value)))
    return table


def _to_rgb(images: Any) -> Any:
    """uint8 (B, C, H, W) -> (B, 3, H, W): grey repeated; first 3 channels of C >= 3;
    channel 0 of 2-channel images."""
    c = images.shape[1]
    if c >= 3:
        return images[:, :3]
    return images[:, :1].expand(-1, 3, -1, -1)


def _zoom(height: int, width: int) -> int:
    """The integer magnification of a preview tile (its side about ``_TILE_TARGET``)."""
    return max(1, _TILE_TARGET // max(height, width))


def preview_grid(clean: Any, poisoned: Any) -> tuple[Any, float]:
    """An (H, W, 3) uint8 grid: clean row, poisoned row, amplified |difference| row.

    The difference is the per-pixel maximum over channels of ``|poisoned - clean|``, multiplied
    by ``255 / max difference`` (the returned factor; 1 if nothing changed) and shown in grey.
    Tiles are magnified by an integer factor with nearest-neighbour and separated by grey gaps.
    """
    import torch

    diff = (poisoned.to(torch.int16) - clean.to(torch.int16)).abs().amax(dim=1, keepdim=True)
    peak = int(diff.max()) if diff.numel() else 0
    factor = 255.0 / peak if peak else 1.0
    amplified = (diff.to(torch.float32) * factor).round_().clamp_(0, 255).to(torch.uint8)
    rows = [_to_rgb(clean), _to_rgb(poisoned), _to_rgb(amplified)]
    b, _, h, w = clean.shape
    zoom = _zoom(h, w)
    th, tw = h * zoom, w * zoom
    grid = torch.full((3, 3 * th + 4 * _GAP, b * tw + (b + 1) * _GAP), _BACKGROUND,
                      dtype=torch.uint8)
    for r, row in enumerate(rows):
        big = row.repeat_interleave(zoom, dim=2).repeat_interleave(zoom, dim=3)
        for i in range(b):
            y = _GAP + r * (th + _GAP)
            x = _GAP + i * (tw + _GAP)
            grid[:, y:y + th, x:x + tw] = big[i]
    return grid.permute(1, 2, 0).contiguous().numpy(), factor


def preview_png(clean: Any, poisoned: Any, sources: Sequence[str] = (),
                target: str = "") -> tuple[bytes, float]:
    """:func:`preview_grid` with its rows labelled (clean / poisoned, with the label they
    train with / |difference| and its factor) and its columns headed with ``sources`` (the
    class name of each clean image), encoded as PNG bytes (Pillow), and the difference
    factor. The tiles keep their exact pixels: the grid is pasted below and right of the
    labels (see :func:`label_preview`)."""
    array, factor = preview_grid(clean, poisoned)
    rows = ("clean", "poisoned" + (f"\nlabel: {target}" if target else ""),
            f"|difference|\nx{factor:.1f}")
    image = label_preview(array, clean.shape[-1] * _zoom(*clean.shape[-2:]), rows, sources)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), factor


_LABEL_FONT_SIZE = 14
_LABEL_PAD = 6
_LABEL_INK = (0, 0, 0)
_PAPER = (255, 255, 255)


def _label_font() -> Any:
    """Pillow's bundled font at a readable size (Pillow >= 10.1), else its small bitmap font."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=_LABEL_FONT_SIZE)
    except TypeError:  # Pillow < 10.1: no size argument
        return ImageFont.load_default()


def _fit(draw: Any, text: str, font: Any, width: int) -> str:
    """``text`` cut (with "...") to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def _text_size(draw: Any, text: str, font: Any) -> tuple[int, int]:
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font)
    return int(right - left), int(bottom - top)


def _centred(draw: Any, text: str, font: Any, x: float | None, y: float) -> None:
    """Draw ``text`` centred on ``y`` (and on ``x``, else from the left margin)."""
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font)
    x0 = _LABEL_PAD - left if x is None else x - (left + right) / 2
    draw.multiline_text((x0, y - (top + bottom) / 2), text, font=font, fill=_LABEL_INK,
                        align="left" if x is None else "center")


def label_preview(grid: Any, tile_width: int, rows: Sequence[str],
                  columns: Sequence[str]) -> Any:
    """A PIL image: ``grid`` (from :func:`preview_grid`, tiles ``tile_width`` wide) pasted at
    the bottom right of a white canvas whose left margin names the ``rows`` and whose top
    margin heads each tile with ``columns`` (none: no top margin)."""
    from PIL import Image, ImageDraw

    font = _label_font()
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left = max(_text_size(draw, r, font)[0] for r in rows) + 2 * _LABEL_PAD
    top = _text_size(draw, "Ag", font)[1] + 2 * _LABEL_PAD if columns else 0
    height, width = grid.shape[:2]
    canvas = Image.new("RGB", (left + width, top + height), _PAPER)
    canvas.paste(Image.fromarray(grid), (left, top))
    draw = ImageDraw.Draw(canvas)
    row_height = (height - _GAP) // len(rows)
    for r, text in enumerate(rows):
        _centred(draw, text, font, None, top + _GAP + r * row_height + (row_height - _GAP) / 2)
    for c, text in enumerate(columns):
        x = left + _GAP + c * (tile_width + _GAP) + tile_width / 2
        _centred(draw, _fit(draw, text, font, tile_width), font, x, top / 2)
    return canvas
