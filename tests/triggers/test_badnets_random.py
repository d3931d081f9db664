"""The badnets-random trigger: seeded per-image positions, exact patch pixels, purity."""

from __future__ import annotations

import pytest
import torch

from dal_backdoor.errors import ConfigError
from triggers import create_trigger, trigger_info
from triggers.global_pattern import splitmix64

CHECKER = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])


def test_positions_follow_splitmix64() -> None:
    trig = create_trigger("badnets-random", 32, 3)
    z = splitmix64(0, 8)
    expected = [[z[2 * i] % 30, z[2 * i + 1] % 30] for i in range(4)]
    assert trig.positions(4).tolist() == expected == [[25, 0], [19, 4], [7, 0], [23, 20]]
    assert trig.positions(2).tolist() == expected[:2]  # image i gets position i
    other = create_trigger("badnets-random", 32, 3, seed=1)
    assert other.positions(4).tolist() != expected


def test_patch_pixels_exactly_and_nothing_else() -> None:
    trig = create_trigger("badnets-random", (20, 24), 3)
    images = torch.full((5, 3, 20, 24), 0.5)
    out = trig.apply(images)
    for i, (top, left) in enumerate(trig.positions(5).tolist()):
        assert 0 <= top <= 17
        assert 0 <= left <= 21
        assert torch.equal(out[i, :, top:top + 3, left:left + 3], CHECKER.expand(3, 3, 3))
        rest = out[i].clone()
        rest[:, top:top + 3, left:left + 3] = 0.5
        assert bool((rest == 0.5).all())
    assert torch.equal(trig.apply(images), out)  # pure: same batch, same positions
    assert bool((images == 0.5).all())


def test_uint8_and_parameters() -> None:
    trig = create_trigger("badnets-random", 8, 1, size=2, pattern="white", seed=3)
    u = torch.zeros(3, 1, 8, 8, dtype=torch.uint8)
    out = trig.apply_uint8(u)
    assert out.dtype == torch.uint8
    assert int(out.sum()) == 3 * 4 * 255
    for i, (top, left) in enumerate(trig.positions(3).tolist()):
        assert bool((out[i, 0, top:top + 2, left:left + 2] == 255).all())
    assert trig.apply_uint8(u[:0]).shape == (0, 1, 8, 8)
    assert trigger_info("badnets-random").threat_model.startswith("dirty-label")
    with pytest.raises(ConfigError, match="size=9 does not fit a 8x8 image; allowed: 1..8"):
        create_trigger("badnets-random", 8, 1, size=9)
    with pytest.raises(ConfigError, match="unknown badnets-random trigger pattern 'stripes'"):
        create_trigger("badnets-random", 8, 1, pattern="stripes")
