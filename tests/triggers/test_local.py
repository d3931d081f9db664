"""The local trigger: exact pixels, position, pattern, and nothing else touched."""

from __future__ import annotations

import pytest
import torch

from dal_backdoor.errors import ConfigError
from triggers import LocalTrigger, create_trigger

CHECKER = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])


def rand_float(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def rand_uint8(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)


def test_default_is_weng_checkerboard_two_pixels_from_the_corner() -> None:
    trig = create_trigger("local", 32, 3)
    images = rand_float((4, 3, 32, 32))
    out = trig.apply(images)
    # rows H-5..H-3 = 27..29, cols W-5..W-3 = 27..29, every channel
    assert torch.equal(out[:, :, 27:30, 27:30], CHECKER.expand(4, 3, 3, 3))
    mask = torch.ones(32, 32, dtype=torch.bool)
    mask[27:30, 27:30] = False
    assert torch.equal(out[:, :, mask], images[:, :, mask])
    assert trig.describe() == {"name": "local", "image_size": [32, 32], "channels": 3,
                               "size": 3, "margin": 2, "top": 27, "left": 27,
                               "pattern": "checkerboard"}


def test_uint8_path_is_exact_and_leaves_other_pixels() -> None:
    trig = create_trigger("local", (28, 30), 1)
    images = rand_uint8((5, 1, 28, 30))
    out = trig.apply_uint8(images)
    assert out.dtype == torch.uint8
    assert torch.equal(out[:, 0, 23:26, 25:28], (255 * CHECKER).to(torch.uint8).expand(5, 3, 3))
    changed = (out != images).any(dim=(0, 1))
    assert not changed[:23].any()
    assert not changed[26:].any()
    assert not changed[:, :25].any()
    assert not changed[:, 28:].any()


def test_float_and_uint8_paths_agree_exactly() -> None:
    trig = create_trigger("local", 16, 3, size=4, pattern=[[0.3, 0.7, 0.5, 0.1]] * 4)
    images = rand_uint8((6, 3, 16, 16), seed=3)
    via_float = trig.apply(images.to(torch.float32) / 255)
    expected = (via_float * 255).round().to(torch.uint8)
    assert torch.equal(trig.apply_uint8(images), expected)


def test_inputs_are_not_modified() -> None:
    trig = create_trigger("local", 8, 3)
    f = rand_float((2, 3, 8, 8))
    u = rand_uint8((2, 3, 8, 8))
    f0, u0 = f.clone(), u.clone()
    out_f, out_u = trig.apply(f), trig.apply_uint8(u)
    assert torch.equal(f, f0)
    assert torch.equal(u, u0)
    assert out_f.data_ptr() != f.data_ptr()
    assert out_u.data_ptr() != u.data_ptr()
    # and the trigger's own cached patch survives repeated use
    assert torch.equal(trig.apply(f)[:, :, 3:6, 3:6], CHECKER.expand(2, 3, 3, 3))


def test_dtype_and_device_are_kept() -> None:
    trig = create_trigger("local", 8, 2)
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        out = trig.apply(torch.full((1, 2, 8, 8), 0.5, dtype=dtype))
        assert out.dtype == dtype
        assert out.device.type == "cpu"
        assert out[0, 1, 3, 3] == 1
        assert out[0, 1, 3, 4] == 0
        assert out[0, 1, 0, 0] == 0.5


def test_size_margin_and_explicit_position() -> None:
    trig = create_trigger("local", 10, 1, size=2, margin=0)
    out = trig.apply(torch.full((1, 1, 10, 10), 0.5))
    assert torch.equal(out[0, 0, 8:, 8:], torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert (trig.top, trig.left) == (8, 8)
    trig = create_trigger("local", (12, 10), 1, top=0, left=1)
    assert (trig.top, trig.left) == (0, 1)
    out = trig.apply(torch.full((1, 1, 12, 10), 0.5))
    assert torch.equal(out[0, 0, 0:3, 1:4], CHECKER)
    assert int((out != 0.5).sum()) == 9
    # only one coordinate given: the other still comes from the margin
    assert (create_trigger("local", 12, 1, top=4).left) == 12 - 2 - 3


def test_named_and_explicit_patterns() -> None:
    base = torch.full((1, 1, 9, 9), 0.5)
    inv = create_trigger("local", 9, 1, pattern="inverted-checkerboard").apply(base)
    assert torch.equal(inv[0, 0, 4:7, 4:7], 1 - CHECKER)
    white = create_trigger("local", 9, 1, pattern="white", size=2).apply(base)
    assert torch.equal(white[0, 0, 5:7, 5:7], torch.ones(2, 2))
    black = create_trigger("local", 9, 1, pattern="black").apply(base)
    assert torch.equal(black[0, 0, 4:7, 4:7], torch.zeros(3, 3))
    grid = [[0.25, 1.0], [0.0, 0.5]]
    trig = create_trigger("local", 9, 1, size=2, pattern="[[0.25, 1], [0, 0.5]]")
    assert trig.describe()["pattern"] == grid
    assert torch.equal(trig.apply(base)[0, 0, 5:7, 5:7], torch.tensor(grid))
    # 4 x 4 checkerboard generalises the 3 x 3 one: 1 where row + col is even
    big = create_trigger("local", 9, 1, size=4).apply(base)[0, 0, 3:7, 3:7]
    assert big.tolist() == [[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]]


@pytest.mark.parametrize(
    ("size", "params", "message"),
    [
        (4, {}, "local trigger of size 3 with margin 2 does not fit a 4x4 image "
                "(needs at least 5x5)"),
        (32, {"size": 0}, "local trigger size=0 is not in [1, inf)"),
        (32, {"margin": -1}, "local trigger margin=-1 is not in [0, inf)"),
        (32, {"top": 30}, "local trigger top=30 puts the 3x3 patch outside the 32x32 image; "
                          "allowed: 0..29"),
        (32, {"left": -1}, "local trigger left=-1 puts the 3x3 patch outside the 32x32 image"),
        (32, {"pattern": "stripes"}, "unknown local trigger pattern 'stripes'; allowed: "
                                     "checkerboard, inverted-checkerboard, white, black"),
        (32, {"pattern": [[1, 0], [0, 1]]}, "local trigger pattern must be 3x3 (size=3)"),
        (32, {"pattern": [[1, 0, 1], [0, 2, 0], [1, 0, 1]]},
         "local trigger pattern value=2 is not in [0, 1]"),
    ],
)
def test_bad_parameters(size: int, params: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        create_trigger("local", size, 3, **params)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_is_registered_class() -> None:
    assert isinstance(create_trigger("local", 32, 3), LocalTrigger)
