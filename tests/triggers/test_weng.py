"""The weng trigger: the shipped asset, the authors' exact recipe, and the documented adaptation."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

from dal_backdoor.errors import ConfigError
from triggers import create_trigger
from triggers.weng import ASSET, ASSET_METADATA, WengTrigger, weng_pattern

REPO = Path(__file__).resolve().parents[2]
A32 = np.float32(64 / 255)


def reference_file() -> Path | None:
    """``../shared/reference/weng2020/triggers64.npz`` beside the repository (CI and the
    workspace), else ``/work/shared/reference``; None when neither is there."""
    for root in (REPO.parent / "shared" / "reference", Path("/work/shared/reference")):
        path = root / "weng2020" / "triggers64.npz"
        if path.is_file():
            return path
    return None


def fixed_image() -> np.ndarray:
    """A (32, 32, 3) float32 image in [0, 1] with some saturated pixels (to exercise clipping)."""
    x = np.random.default_rng(7).random((32, 32, 3), dtype=np.float32)
    x[10:14, 10:14] = 1.0
    x[20:22, 5:9] = 0.0
    x[0, :, :] = 0.95  # border pixels that the stamp must leave alone
    return x


def to_chw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def test_shipped_asset_is_the_authors_pattern_with_provenance() -> None:
    folder = resources.files("triggers").joinpath("assets")
    data = folder.joinpath(ASSET).read_bytes()
    meta = json.loads(folder.joinpath(ASSET_METADATA).read_text())
    assert hashlib.sha256(data).hexdigest() == meta["file_sha256"]
    assert meta["source_repository"].endswith(
        "nthu-datalab/On.the.Trade-off.between.Adversarial.and.Backdoor.Robustness")
    assert meta["source_commit"] == "a9e7b737d095e6627350f05026f4a0ef4b1b3082"
    assert (meta["source_file"], meta["source_array"], meta["source_index"]) == (
        "cifar10/triggers64.npz", "triggers", 0)
    assert meta["transform"].startswith("t = 1 - stored")
    t = weng_pattern()
    assert t.dtype == np.float32
    assert t.shape == (1, 32, 32, 3)
    # hard-coded values of t (HWC), so this fails without the reference copy too
    assert float(t[0, 3, 20, 1]) == 0.22924554347991943
    assert float(t[0, 15, 10, 0]) == 0.6103318929672241
    assert float(t[0, 0, 25, 1]) == 0.15046709775924683
    assert hashlib.sha256(t.tobytes()).hexdigest() == (
        "18632936d273aa29b8ba7ee427571679f70c097a9557fc6a1fe52600fe1b5d51")
    assert float(t.min()) == 0.0
    assert float(t.max()) == 1.0
    assert not np.array_equal(t[..., 0], t[..., 1])  # colourful: the channels differ


def test_asset_equals_the_reference_file() -> None:
    path = reference_file()
    if path is None:
        pytest.skip("../shared/reference/weng2020/triggers64.npz is not present")
    with np.load(path) as archive:
        triggers64 = archive["triggers"]
    assert triggers64.shape == (50, 1, 32, 32, 3)
    assert np.array_equal(weng_pattern(), 1 - triggers64[0])


def test_stamp_equals_the_authors_recipe_computed_from_the_reference() -> None:
    path = reference_file()
    if path is None:
        pytest.skip("../shared/reference/weng2020/triggers64.npz is not present")
    with np.load(path) as archive:
        t = 1 - archive["triggers"][0]  # (1, 32, 32, 3), as in the authors' notebook
    x = fixed_image()
    expected = x.copy()
    expected[2:-2, 2:-2] = np.clip(expected[2:-2, 2:-2] + (64 / 255) * t[0, 2:-2, 2:-2], 0, 1)
    out = create_trigger("weng", 32, 3).apply(to_chw(x))
    assert out.dtype == torch.float32
    assert torch.equal(out, to_chw(expected))
    # the uint8 path: round(stamped * 255) of the same computation
    u = torch.from_numpy(np.round(x * 255).astype(np.uint8).transpose(2, 0, 1).copy())[None]
    xu = u[0].numpy().transpose(1, 2, 0).astype(np.float32) / np.float32(255)
    xu[2:-2, 2:-2] = np.clip(xu[2:-2, 2:-2] + (64 / 255) * t[0, 2:-2, 2:-2], 0, 1)
    expected_u = np.clip(np.round(xu * np.float32(255)), 0, 255).astype(np.uint8)
    assert torch.equal(create_trigger("weng", 32, 3).apply_uint8(u), to_chw(expected_u))


def test_stamp_hard_coded_values_border_and_statistics() -> None:
    trig = create_trigger("weng", 32, 3)
    assert isinstance(trig, WengTrigger)
    assert trig.describe() == {"name": "weng", "image_size": [32, 32], "channels": 3,
                               "amplitude": 64 / 255, "border": 2, "fit": "auto"}
    out = trig.apply(torch.full((1, 3, 32, 32), 0.5))[0]
    assert out[1, 3, 20].item() == 0.5575361251831055  # 0.5 + f32(64/255) * t[3, 20, G]
    assert out[0, 15, 10].item() == 0.6531813144683838
    assert out[1, 3, 20].item() == float(np.float32(0.5) + A32 * np.float32(0.22924554347991943))
    frame = torch.ones(32, 32, dtype=torch.bool)
    frame[2:30, 2:30] = False
    assert bool((out[:, frame] == 0.5).all())
    zero = trig.apply(torch.zeros(1, 3, 32, 32))[0].double()
    # the reference README: mean of the stamped pattern about 28.9/255, L2 about 9.3
    assert zero.mean().item() * 255 == pytest.approx(28.88277780095232, abs=1e-9)
    assert zero.norm().item() == pytest.approx(9.3124923115383, abs=1e-9)
    assert float(zero.min()) == 0.0
    assert float(zero.max()) == pytest.approx(64 / 255, abs=1e-7)


def test_grey_28x28_gets_the_bt601_luminance_of_the_centre_crop() -> None:
    # Fashion-MNIST: 24x24 interior (border 2), a centred crop of t's 28x28 interior, i.e.
    # rows and columns 4..27 of t, as 0.299 R + 0.587 G + 0.114 B.
    trig = create_trigger("weng", 28, 1)
    p = trig.pattern()
    assert p.shape == (1, 24, 24)
    assert p.dtype == torch.float32
    t = weng_pattern()[0].astype(np.float64)
    luma = 0.299 * t[..., 0] + 0.587 * t[..., 1] + 0.114 * t[..., 2]
    assert torch.equal(p[0], torch.from_numpy(luma[4:28, 4:28].astype(np.float32)))
    assert p[0, 11, 6].item() == 0.8834892511367798  # hard-coded: t[15, 10] luminance
    assert p[0, 0, 0].item() == pytest.approx(0.701, abs=1e-7)  # t[4, 4] = (1, 1, 0)
    out = trig.apply(torch.zeros(2, 1, 28, 28))
    assert torch.equal(out[:, :, 2:26, 2:26], (p * A32.item()).expand(2, 1, 24, 24))
    assert float(out[:, :, :2].abs().max()) == 0.0


def test_rgb_other_sizes_crop_or_resize() -> None:
    t = torch.from_numpy(weng_pattern()[0].transpose(2, 0, 1).copy())  # (3, 32, 32)
    small = create_trigger("weng", (30, 26), 3)  # interior 26x22 <= 28x28: centred crop
    assert torch.equal(small.pattern(), t[:, 3:29, 5:27])
    big = create_trigger("weng", 40, 3)  # interior 36x36 > 28: bilinear resize of 28x28
    expected = torch.nn.functional.interpolate(
        t[None, :, 2:30, 2:30].double(), size=(36, 36), mode="bilinear", align_corners=False,
        antialias=True)[0].clamp(0, 1).float()
    assert torch.equal(big.pattern(), expected)
    tall = create_trigger("weng", (40, 20), 3)  # one side larger: resize (never a partial crop)
    assert tall.pattern().shape == (3, 36, 16)
    no_border = create_trigger("weng", 28, 3, border=0)  # 28x28 interior: t's interior exactly
    assert torch.equal(no_border.pattern(), t[:, 2:30, 2:30])


@pytest.mark.parametrize(
    ("size", "channels", "params", "message"),
    [
        (32, 2, {}, "the weng pattern has 3 channels, the images 2"),
        (40, 3, {"fit": "exact"}, "the weng pattern is 28x28 but the region it covers is 36x36 "
                                  "(fit=exact)"),
        (40, 3, {"fit": "crop"}, "(fit=crop)"),
        (32, 3, {"fit": "stretch"}, "weng trigger fit='stretch' is unknown; allowed: exact, "
                                    "crop, resize, auto"),
        (32, 3, {"border": 16}, "weng trigger border=16 leaves no interior in a 32x32 image; "
                                "allowed: border <= 15"),
        (32, 3, {"amplitude": 0}, "weng trigger amplitude=0 is not in (0, 1]"),
    ],
)
def test_bad_parameters(size: int, channels: int, params: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        create_trigger("weng", size, channels, **params)
    assert message in str(info.value)


def test_amplitude_parameter() -> None:
    trig = create_trigger("weng", 32, 3, amplitude="32/255")
    delta = trig.delta()[0]
    assert torch.equal(delta[:, 2:30, 2:30], trig.pattern() * np.float32(32 / 255).item())
