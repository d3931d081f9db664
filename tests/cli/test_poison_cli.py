"""``dal-backdoor poison`` and ``dal-backdoor triggers`` on the synthetic data set."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from dal_backdoor.cli.poison import preview_grid
from dal_backdoor.data import create_dataset
from dal_backdoor.data.poison import PoisonManifest, poison
from tests.helpers import invoke, one_error_line
from triggers import create_trigger

SYNTH = ["--dataset", "synthetic", "--dataset-param", "num_samples=300"]


def run(*args: str) -> tuple[int, str]:
    result = invoke(*args)
    return result.exit_code, result.output


def synthetic() -> object:
    return create_dataset("synthetic", "unused", train=True, num_samples=300)


def margins(img, columns: int, tile: int = 128) -> tuple[int, int]:
    """(left, top): the label margins of a preview of ``columns`` tiles of ``tile`` pixels."""
    return img.width - (columns * tile + (columns + 1) * 2), img.height - (3 * tile + 4 * 2)


def test_local_writes_manifest_and_preview(tmp_path: Path) -> None:
    out = tmp_path / "p" / "local"
    code, text = run("poison", *SYNTH, "--num-poison", "20", "--target-class", "3",
                     "--seed", "4", "--out", str(out))
    assert code == 0, text
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "preview.png"]
    manifest = PoisonManifest.load(out / "manifest.json")
    ds = synthetic()
    _, _, expected = poison(ds.images, ds.labels, create_trigger("local", 32, 3), 20, 3, 4)
    assert manifest == expected
    assert "poisoned 20 of 300 synthetic training samples, seed 4" in text
    assert "target class 3 (class3)" in text
    for label, count in Counter(manifest.original_labels).items():
        row = next(line.split() for line in text.splitlines()
                   if line.split()[:2] == [str(label), f"class{label}"])
        assert row == [str(label), f"class{label}", str(count)]
    assert f"wrote {out / 'manifest.json'}" in text.replace("\n", "")
    assert f"wrote {out / 'preview.png'}" in text.replace("\n", "")

    from PIL import Image

    with Image.open(out / "preview.png") as img:
        assert img.format == "PNG"
        assert img.mode == "RGB"
        # 8 tiles of 32 x 4 = 128 pixels with 2-pixel gaps; 3 rows; label margins left, top
        left, top = margins(img, 8)
        assert 40 < left < 200
        assert 10 < top < 40


def test_global_with_parameters(tmp_path: Path) -> None:
    code, text = run("poison", *SYNTH, "--trigger", "global", "--trigger-param",
                     "amplitude=32/255", "--trigger-param", "seed=9", "--num-poison", "5",
                     "--out", str(tmp_path))
    assert code == 0, text
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["trigger"] == {"name": "global", "image_size": [32, 32], "channels": 3,
                               "amplitude": 32 / 255, "seed": 9, "border": 2}
    assert data["num_poison"] == 5
    assert data["target_class"] == 7
    ds = synthetic()
    images, labels = PoisonManifest.from_dict(data).apply(ds.images, ds.labels)
    assert int((labels != ds.labels).sum()) == 5
    assert "amplitude" in text
    assert "|difference| x" in text


@pytest.mark.parametrize(
    ("trigger", "params"),
    [("weng", {"amplitude": 64 / 255, "border": 2, "fit": "auto"}),
     ("grating", {"amplitude": 64 / 255, "seed": 0, "border": 2})],
)
def test_weng_and_grating_previews(tmp_path: Path, trigger: str, params: dict) -> None:
    code, text = run("poison", *SYNTH, "--trigger", trigger, "--num-poison", "8", "--out",
                     str(tmp_path))
    assert code == 0, text
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["trigger"] == {"name": trigger, "image_size": [32, 32], "channels": 3, **params}
    ds = synthetic()
    expected = create_trigger(trigger, 32, 3).apply_uint8(ds.images[list(data["indices"])])
    from PIL import Image

    with Image.open(tmp_path / "preview.png") as img:
        left, top = margins(img, 8)
        grid = torch.from_numpy(np.asarray(img).copy())
    # row 2, tile 0 (zoom 4, 2-pixel gaps, after the label margins) is the first poisoned image
    y, x = top + 2 + 128 + 2, left + 2
    tile = grid[y:y + 128:4, x:x + 128:4].permute(2, 0, 1)
    assert torch.equal(tile, expected[0])
    assert "|difference| x" in text


@pytest.mark.parametrize("trigger", ["blended", "badnets-random", "sig", "wanet"])
def test_attack_previews(tmp_path: Path, trigger: str) -> None:
    code, text = run("poison", *SYNTH, "--trigger", trigger, "--num-poison", "3", "--out",
                     str(tmp_path))
    assert code == 0, text
    manifest = PoisonManifest.load(tmp_path / "manifest.json")
    trig = create_trigger(trigger, 32, 3)
    assert manifest.trigger == trig.describe()
    ds = synthetic()
    images, labels = manifest.apply(ds.images, ds.labels)  # re-stamps and checks the sha256
    shown = list(manifest.indices)
    assert torch.equal(images[shown], trig.apply_uint8(ds.images[shown]))
    assert (tmp_path / "preview.png").stat().st_size > 1000


def test_additive_pattern_file(tmp_path: Path) -> None:
    pattern = tmp_path / "key.npy"
    np.save(pattern, np.full((28, 28, 3), 0.5, dtype=np.float32))
    code, text = run("poison", *SYNTH, "--trigger", "additive", "--trigger-param",
                     f"pattern_file={pattern}", "--num-poison", "4", "--out", str(tmp_path / "o"))
    assert code == 0, text
    data = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert data["trigger"]["pattern_sha256"] == hashlib.sha256(pattern.read_bytes()).hexdigest()
    np.save(pattern, np.full((28, 28, 3), 3.0, dtype=np.float32))
    code, text = run("poison", *SYNTH, "--trigger", "additive", "--trigger-param",
                     f"pattern_file={pattern}", "--out", str(tmp_path / "bad"))
    assert code == 2
    assert "has values in [3, 3]; allowed: [0, 1]" in one_error_line(text)
    assert not (tmp_path / "bad").exists()


def test_zero_poisons_write_no_preview(tmp_path: Path) -> None:
    code, text = run("poison", *SYNTH, "--num-poison", "0", "--out", str(tmp_path / "z"))
    assert code == 0, text
    assert sorted(p.name for p in (tmp_path / "z").iterdir()) == ["manifest.json"]
    assert "no poisoned images, so no preview" in text


def test_preview_grid_rows() -> None:
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 200, (3, 1, 8, 8), dtype=torch.uint8, generator=gen)
    poisoned = clean.clone()
    poisoned[:, :, 2, 3] += 50
    grid, factor = preview_grid(clean, poisoned)
    zoom, gap = 128 // 8, 2
    assert grid.shape == (3 * 128 + 4 * gap, 3 * 128 + 4 * gap, 3)
    assert factor == pytest.approx(255 / 50)

    def tile(row: int, col: int) -> torch.Tensor:
        y, x = gap + row * (128 + gap), gap + col * (128 + gap)
        return torch.from_numpy(grid[y:y + 128:zoom, x:x + 128:zoom, 0].copy())

    assert torch.equal(tile(0, 1), clean[1, 0])
    assert torch.equal(tile(1, 2), poisoned[2, 0])
    diff = tile(2, 0)
    assert int(diff[2, 3]) == 255
    assert int(diff.sum()) == 255
    assert int(grid[0, 0, 0]) == 128  # grey gap


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--num-poison", "300"], "num_poison=300 is not in [0, 270]: 270 of 300 samples are "
                                  "eligible (label != target class 7)"),
        (["--target-class", "10"], "target_class=10 is not in [0, 9] (10 classes)"),
        (["--trigger-param", "size=40"], "local trigger of size 40 with margin 2 does not fit "
                                         "a 32x32 image"),
        (["--trigger-param", "amplitude=0.2"], "local trigger has no parameter 'amplitude'"),
        (["--trigger-param", "size"], "'size' is not of the form key=value"),
        (["--trigger", "blend"], "Invalid value for '--trigger'"),
    ],
)
def test_invalid_options_write_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "out"
    code, text = run("poison", *SYNTH, *args, "--out", str(out))
    assert code == 2
    assert message in one_error_line(text)
    assert not out.exists()


def test_unwritable_out(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    code, text = run("poison", *SYNTH, "--out", str(blocker))
    assert code == 2
    assert f"--out {blocker} is a file" in one_error_line(text)
    code, text = run("poison", *SYNTH, "--out", str(blocker / "sub"))
    assert code == 2
    assert f"cannot be created: {blocker} is not a directory" in one_error_line(text)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_triggers_lists_every_trigger_and_parameter() -> None:
    code, text = run("triggers")
    assert code == 0, text
    rows = [line.split() for line in text.splitlines()]
    assert any(r[:3] == ["grating", "A", "faint"] for r in rows)
    assert any(r[:4] == ["global", "Legacy", "name", "of"] for r in rows)
    assert any(r[:3] == ["weng", "Weng", "et"] for r in rows)
    assert sum(r[:3] == ["threat", "model:", "dirty-label:"] for r in rows) == 8
    assert sum(r[:3] == ["threat", "model:", "clean-label:"] for r in rows) == 1  # sig
    assert ["amplitude", "64/255"] in [r[:2] for r in rows]
    assert ["border", "2"] in [r[:2] for r in rows]
    assert ["margin", "2"] in [r[:2] for r in rows]
    assert ["pattern", "checkerboard"] in [r[:2] for r in rows]
    assert ["top", "none"] in [r[:2] for r in rows]
    assert any(r[:2] == ["local", "A"] for r in rows)


def test_sig_preview_is_clean_label_and_wanet_noise_mode(tmp_path: Path) -> None:
    code, text = run("poison", *SYNTH, "--trigger", "sig", "--num-poison", "3", "--out",
                     str(tmp_path / "sig"))
    assert code == 0, text
    assert "threat model: clean-label (poisons drawn from the target class" in text
    manifest = PoisonManifest.load(tmp_path / "sig" / "manifest.json")
    assert manifest.clean_label
    assert manifest.original_labels == (7, 7, 7)
    code, text = run("poison", *SYNTH, "--trigger", "wanet", "--num-poison", "3",
                     "--cross-ratio", "2", "--out", str(tmp_path / "wanet"))
    assert code == 0, text
    assert "threat model: dirty-label" in text
    assert "noise mode: 6 further images" in text
    manifest = PoisonManifest.load(tmp_path / "wanet" / "manifest.json")
    assert len(manifest.cross_indices) == 6
    ds = synthetic()
    manifest.apply(ds.images, ds.labels)  # re-creates the noise samples and checks them
    code, text = run("poison", *SYNTH, "--trigger", "local", "--cross-ratio", "2", "--out",
                     str(tmp_path / "local"))
    assert code == 2
    assert "cross_ratio=2 needs a trigger with a noise mode" in text


def _ink(region: np.ndarray) -> bool:
    """Whether a white label-margin region holds any dark (text) pixel."""
    return bool((region < 128).any())


@pytest.mark.parametrize("sized_font", [True, False])
def test_preview_png_labels_rows_and_columns(monkeypatch: pytest.MonkeyPatch,
                                             sized_font: bool) -> None:
    import io

    from PIL import Image, ImageDraw, ImageFont

    from dal_backdoor.cli.poison import _fit, _label_font, preview_png

    if not sized_font:  # Pillow < 10.1 has no size argument: its bitmap font is used
        bitmap = ImageFont.load_default

        def no_size(**kwargs: object) -> object:
            if kwargs:
                raise TypeError("load_default() got an unexpected keyword argument 'size'")
            return bitmap()
        monkeypatch.setattr(ImageFont, "load_default", no_size)
    gen = torch.Generator().manual_seed(1)
    clean = torch.randint(0, 200, (2, 1, 8, 8), dtype=torch.uint8, generator=gen)
    poisoned = clean.clone()
    poisoned[:, :, 0, 0] = 255
    long_name = "a class name far too long for one tile of the preview"
    data, factor = preview_png(clean, poisoned, ["Coat", long_name], "Sneaker (7)")
    grid, same = preview_grid(clean, poisoned)
    assert factor == same
    with Image.open(io.BytesIO(data)) as img:
        pixels = np.asarray(img.convert("RGB")).copy()
    tile, gap = 128, 2
    left = pixels.shape[1] - grid.shape[1]
    top = pixels.shape[0] - grid.shape[0]
    assert left > 0
    assert top > 0
    assert np.array_equal(pixels[top:, left:], grid)  # the tiles keep their exact pixels
    for row in range(3):  # each row has its label in the left margin
        y = top + gap + row * (tile + gap)
        assert _ink(pixels[y:y + tile, :left])
    for col in range(2):  # each column its class name above it
        x = left + gap + col * (tile + gap)
        assert _ink(pixels[:top, x:x + tile])
    assert not _ink(pixels[:top, :left])  # nothing above the row labels
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    cut = _fit(draw, long_name, _label_font(), tile)
    assert cut.endswith("...")
    assert draw.textlength(cut, font=_label_font()) <= tile
    assert _fit(draw, "Coat", _label_font(), tile) == "Coat"
