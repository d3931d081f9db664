"""User pattern files (PNG, .npy, .npz): reading, errors, hashing into the run id, stamping."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dal_backdoor.config import resolve_config
from dal_backdoor.errors import ConfigError
from triggers import create_trigger, trigger_from_description
from triggers.patterns import (
    fit_pattern,
    load_pattern_file,
    resolve_pattern_params,
    to_channels,
)

A32 = np.float32(64 / 255).item()


def ramp(h: int, w: int) -> np.ndarray:
    """uint8 (h, w, 3): R = 10 * row, G = 10 * col, B = 200."""
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[..., 0] = (10 * np.arange(h))[:, None]
    img[..., 1] = (10 * np.arange(w))[None, :]
    img[..., 2] = 200
    return img


def test_png_rgb_and_grey(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    Image.fromarray(ramp(4, 5)).save(path)
    loaded = load_pattern_file(path)
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.pattern.shape == (3, 4, 5)
    assert loaded.pattern.dtype == torch.float64
    assert loaded.pattern[0, 3, 0].item() == 30 / 255
    assert loaded.pattern[1, 0, 4].item() == 40 / 255
    assert loaded.pattern[2, 2, 2].item() == 200 / 255
    grey = tmp_path / "g.png"
    Image.fromarray(np.full((3, 3), 51, dtype=np.uint8), mode="L").save(grey)
    assert torch.equal(load_pattern_file(grey).pattern, torch.full((1, 3, 3), 0.2,
                                                                   dtype=torch.float64))
    rgba = tmp_path / "a.png"
    Image.fromarray(np.dstack([ramp(4, 5), np.zeros((4, 5), np.uint8)]), mode="RGBA").save(rgba)
    assert torch.equal(load_pattern_file(rgba).pattern, loaded.pattern)  # alpha dropped


def test_npy_and_npz_layouts(tmp_path: Path) -> None:
    hwc = ramp(4, 5).astype(np.float32) / 255
    np.save(tmp_path / "hwc.npy", hwc)
    np.save(tmp_path / "chw.npy", hwc.transpose(2, 0, 1))
    np.save(tmp_path / "lead.npy", hwc[None, None])
    np.save(tmp_path / "u8.npy", ramp(4, 5))
    np.save(tmp_path / "hw.npy", hwc[..., 0].astype(np.float64))
    np.savez(tmp_path / "one.npz", pattern=hwc)
    expected = torch.from_numpy(hwc.transpose(2, 0, 1).astype(np.float64))
    for name in ("hwc.npy", "chw.npy", "lead.npy", "one.npz"):
        assert torch.equal(load_pattern_file(tmp_path / name).pattern, expected), name
    assert torch.allclose(load_pattern_file(tmp_path / "u8.npy").pattern, expected, atol=1e-7)
    assert torch.equal(load_pattern_file(tmp_path / "hw.npy").pattern, expected[:1])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda _p: None, "does not exist or is not a file"),
        (lambda p: p.with_suffix(".npy").write_bytes(b"not numpy"), "is not a readable .npy file"),
        (lambda p: p.with_suffix(".png").write_bytes(b"\x89PNG broken"),
         "is not a readable image"),
        (lambda p: p.with_suffix(".txt").write_text("0.5"), "has suffix '.txt'; allowed: .png"),
        (lambda p: np.save(p.with_suffix(".npy"), np.full((4, 4), 1.5)),
         "has values in [1.5, 1.5]; allowed: [0, 1] (float) or 0-255 (uint8)"),
        (lambda p: np.save(p.with_suffix(".npy"), np.full((4, 4), np.nan)), "NaN or infinite"),
        (lambda p: np.save(p.with_suffix(".npy"), np.ones((4, 4), dtype=np.int64)),
         "has dtype int64; allowed: uint8 (0-255) or float with values in [0, 1]"),
        (lambda p: np.save(p.with_suffix(".npy"), np.zeros((5, 4, 4))),
         "has shape (5, 4, 4); allowed: (H, W), (H, W, C) or (C, H, W) with C 1 or 3"),
        (lambda p: np.save(p.with_suffix(".npy"), np.zeros((2, 1, 4, 4, 3))), "has shape"),
        (lambda p: np.save(p.with_suffix(".npy"), np.array([{}]), allow_pickle=True),
         "is not a readable .npy file"),
        (lambda p: np.savez(p.with_suffix(".npz"), a=np.zeros((2, 2)), b=np.zeros((2, 2))),
         "holds 2 arrays (a, b); allowed: exactly one array"),
    ],
    ids=["missing", "bad-npy", "bad-png", "suffix", "range", "nan", "dtype", "shape",
         "leading", "pickle", "npz-two"],
)
def test_bad_files_are_one_line_errors(tmp_path: Path, make, message: str) -> None:
    base = tmp_path / "pattern"
    make(base)
    written = [p for p in tmp_path.iterdir()]
    path = written[0] if written else base.with_suffix(".png")
    with pytest.raises(ConfigError) as info:
        load_pattern_file(path)
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert repr(str(path)) in text


def test_channels_luminance_and_fit() -> None:
    rgb = torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64).view(3, 1, 1).repeat(1, 2, 2)
    grey = to_channels(rgb, 1, "p")
    assert grey.shape == (1, 2, 2)
    assert grey[0, 0, 0].item() == pytest.approx(0.299 + 0.587 * 0.5 + 0.114 * 0.25, abs=1e-15)
    assert torch.equal(to_channels(grey, 3, "p"), grey.expand(3, 2, 2))
    with pytest.raises(ConfigError, match="p has 3 channels, the images 4"):
        to_channels(rgb, 4, "p")
    p = torch.arange(36, dtype=torch.float64).view(1, 6, 6) / 35
    assert torch.equal(fit_pattern(p, 4, 3, "crop", "p"), p[:, 1:5, 1:4])
    assert torch.equal(fit_pattern(p, 4, 3, "auto", "p"), p[:, 1:5, 1:4])
    assert torch.equal(fit_pattern(p, 6, 6, "exact", "p"), p)
    up = fit_pattern(p, 12, 12, "auto", "p")
    assert up.shape == (1, 12, 12)
    assert float(up.min()) >= 0
    assert float(up.max()) <= 1
    # bilinear, align_corners=False: output pixel (0, 1) samples input position (-0.25, 0.25)
    # -> clamped row 0, columns 0 and 1 weighted 3/4 and 1/4
    assert up[0, 0, 1].item() == pytest.approx((0.75 * 0 + 0.25 * 1) / 35, abs=1e-15)
    with pytest.raises(ConfigError, match=r"p is 6x6 but the region it covers is 4x3 "
                                          r"\(fit=exact\)"):
        fit_pattern(p, 4, 3, "exact", "p")
    with pytest.raises(ConfigError, match=r"\(fit=crop\)"):
        fit_pattern(p, 8, 3, "crop", "p")


def test_additive_trigger_stamps_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    Image.fromarray(ramp(28, 28)).save(path)
    trig = create_trigger("additive", 32, 3, pattern_file=str(path))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert trig.describe() == {"name": "additive", "image_size": [32, 32], "channels": 3,
                               "pattern_file": str(path), "pattern_sha256": sha,
                               "amplitude": 64 / 255, "border": 2, "fit": "exact"}
    out = trig.apply(torch.full((1, 3, 32, 32), 0.25))[0]
    assert out[0, 2 + 5, 2].item() == np.float32(0.25) + np.float32(A32 * np.float32(50 / 255))
    assert out[2, 10, 10].item() == np.float32(0.25) + np.float32(A32 * np.float32(200 / 255))
    assert bool((out[:, :2] == 0.25).all())
    assert bool((out[:, :, 30:] == 0.25).all())
    assert trigger_from_description(trig.describe()) == trig
    grey = create_trigger("additive", 28, 1, pattern_file=str(path), fit="crop", border=2)
    assert grey.pattern().shape == (1, 24, 24)
    with pytest.raises(ConfigError, match="is 28x28 but the region it covers is 24x24"):
        create_trigger("additive", 28, 1, pattern_file=str(path))
    with pytest.raises(ConfigError, match="additive trigger needs pattern_file=PATH"):
        create_trigger("additive", 32, 3)


def test_sha256_enters_the_run_id_and_a_changed_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.npy"
    np.save(path, np.full((28, 28), 0.5, dtype=np.float32))
    params = {"pattern_file": str(path)}
    first = resolve_pattern_params(params)
    assert first == {"pattern_file": str(path),
                     "pattern_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert resolve_pattern_params({"amplitude": 0.1}) == {"amplitude": 0.1}
    cfg = resolve_config(dataset="synthetic", trigger="additive", trigger_params=params,
                         device="cpu")
    assert cfg.trigger_params == first
    assert resolve_config(dataset="synthetic", trigger="additive", trigger_params=params,
                          device="cpu").run_id == cfg.run_id
    np.save(path, np.full((28, 28), 0.75, dtype=np.float32))  # same path, new content
    changed = resolve_config(dataset="synthetic", trigger="additive", trigger_params=params,
                             device="cpu")
    assert changed.run_id != cfg.run_id
    assert changed.trigger_params["pattern_sha256"] != first["pattern_sha256"]
    # the old config's trigger no longer builds: the file is not what the run used
    with pytest.raises(ConfigError, match="changed: its sha256 is .* the run recorded"):
        create_trigger("additive", 32, 3, **cfg.trigger_params)
    with pytest.raises(ConfigError, match="changed"):
        resolve_pattern_params(cfg.trigger_params)
    np.save(path, np.full((28, 28), 2.0))
    with pytest.raises(ConfigError, match="has values in"):
        resolve_config(dataset="synthetic", trigger="additive", trigger_params=params,
                       device="cpu")
