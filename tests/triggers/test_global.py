"""The global trigger: bound, border, clipping, determinism, a non-trivial pattern."""

from __future__ import annotations

import hashlib

import pytest
import torch

from dal_backdoor.errors import ConfigError
from triggers import GlobalPatternTrigger, create_trigger
from triggers.global_pattern import DEFAULT_AMPLITUDE, grating_pattern, splitmix64

AMP = 64 / 255


def test_splitmix64_known_answers() -> None:
    # The published reference sequence for seed 1234567 (e.g. Rosetta Code, "Splitmix64").
    assert splitmix64(1234567, 5) == [6457827717110365317, 3203168211198807973,
                                      9817491932198370423, 4593380528125082431,
                                      16408922859458223821]


def test_default_amplitude_bound_and_border() -> None:
    trig = create_trigger("global", 32, 3)
    assert trig.describe() == {"name": "global", "image_size": [32, 32], "channels": 3,
                               "amplitude": AMP, "seed": 0, "border": 2}
    images = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    out = trig.apply(images)
    delta = (out - images).abs()
    assert float(delta.max()) <= AMP + 1e-6
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert torch.equal(out[:, :, border], images[:, :, border])
    assert float(delta[:, :, 2:30, 2:30].mean()) > 0.02  # the interior really changes


def test_on_mid_grey_the_change_is_the_pattern() -> None:
    trig = create_trigger("global", (20, 24), 3, border=1)
    out = trig.apply(torch.full((1, 3, 20, 24), 0.5, dtype=torch.float64))
    delta = out - 0.5
    assert float(delta.abs().max()) == pytest.approx(AMP, abs=1e-12)  # max |delta| == amplitude
    assert abs(float(delta[..., 1:19, 1:23].mean())) < 1e-12  # zero mean over the interior
    # same pattern on every channel
    assert torch.equal(delta[0, 0], delta[0, 1])
    assert torch.equal(delta[0, 0], delta[0, 2])
    assert torch.allclose(delta[0, 0, 1:19, 1:23], AMP * trig.pattern(), atol=1e-12)


def test_pattern_is_not_trivial() -> None:
    p = grating_pattern(28, 28, seed=0)
    assert p.shape == (28, 28)
    assert p.dtype == torch.float64
    assert float(p.abs().max()) == 1.0
    assert abs(float(p.mean())) < 1e-12
    assert 0.2 < float(p.std()) < 0.7
    assert len(torch.unique(p)) > 28 * 28 // 2  # not constant, not a few levels
    assert float((p > 0).float().mean()) == pytest.approx(0.5, abs=0.15)
    # neighbouring pixels are correlated (a texture, not white noise), but not identical
    corr = torch.corrcoef(torch.stack([p[:, :-1].flatten(), p[:, 1:].flatten()]))[0, 1]
    assert -0.95 < float(corr) < 0.95
    assert not torch.equal(grating_pattern(28, 28, seed=1), p)


def test_clipping_at_zero_and_one() -> None:
    trig = create_trigger("global", 16, 1)
    delta = trig.delta()[0, 0]
    zeros = trig.apply(torch.zeros(1, 1, 16, 16))[0, 0]
    ones = trig.apply(torch.ones(1, 1, 16, 16))[0, 0]
    assert torch.equal(zeros, delta.clamp(min=0))
    assert torch.equal(ones, (1 + delta).clamp(max=1))
    assert float(zeros.min()) == 0.0
    assert float(ones.max()) == 1.0
    assert bool((delta < 0).any())
    assert bool((delta > 0).any())


def test_deterministic_across_instances_calls_and_dtypes() -> None:
    a, b = create_trigger("global", 32, 3, seed=5), create_trigger("global", 32, 3, seed=5)
    assert torch.equal(a.pattern(), b.pattern())
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    first = a.apply(images)
    assert torch.equal(first, a.apply(images))
    assert torch.equal(first, b.apply(images))
    assert torch.equal(a.delta("cpu", torch.float64)[0, 0, 2:30, 2:30],
                       a.amplitude * a.pattern())


def test_pattern_is_pinned() -> None:
    # Regression pin: every machine and version must stamp this exact pattern (seed 0, a 32 x 32
    # image with a 2-pixel border -> 28 x 28 interior). A change here changes every global-
    # trigger experiment, so it must be deliberate.
    p = create_trigger("global", 32, 1).pattern()
    assert p[0, :4].tolist() == pytest.approx(
        [0.14364267916736695, -0.38628663853767287, -0.7436730013120199, -0.4948066974406504],
        abs=1e-12)
    assert float(p[13, 5]) == pytest.approx(0.9594906906193326, abs=1e-12)
    fingerprint = hashlib.sha256(p.to(torch.float32).numpy().tobytes()).hexdigest()
    assert fingerprint == "8704a72cf738f8d4672da56feab3aa5ab2f7df394a28b76515107ad4440456b5"


def test_different_seeds_give_different_patterns() -> None:
    a = create_trigger("global", 32, 3, seed=5)
    assert not torch.equal(a.pattern(), create_trigger("global", 32, 3, seed=6).pattern())


def test_delta_is_cached_per_device_and_dtype() -> None:
    trig = create_trigger("global", 8, 1, border=0)
    d32 = trig.delta("cpu", torch.float32)
    assert trig.delta(torch.device("cpu"), torch.float32) is d32
    d16 = trig.delta("cpu", torch.float16)
    assert d16 is not d32
    assert d16.dtype == torch.float16
    out = trig.apply(torch.full((2, 1, 8, 8), 0.5, dtype=torch.float16))
    assert out.dtype == torch.float16


def test_uint8_path_agrees_with_float_path() -> None:
    trig = create_trigger("global", 32, 3)
    gen = torch.Generator().manual_seed(4)
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8, generator=gen)
    expected = (trig.apply(images.to(torch.float32) / 255) * 255).round().to(torch.uint8)
    out = trig.apply_uint8(images)
    assert torch.equal(out, expected)
    diff = (out.to(torch.int16) - images.to(torch.int16)).abs()
    assert int(diff.max()) <= 64
    assert int(diff[..., :2, :].max()) == 0


def test_inputs_are_not_modified() -> None:
    trig = create_trigger("global", 8, 3, border=1)
    f = torch.full((1, 3, 8, 8), 0.5)
    u = torch.full((1, 3, 8, 8), 128, dtype=torch.uint8)
    trig.apply(f)
    trig.apply_uint8(u)
    assert bool((f == 0.5).all())
    assert bool((u == 128).all())


def test_parameters() -> None:
    trig = create_trigger("global", 32, 3, amplitude="32/255", seed=7, border=0)
    assert isinstance(trig, GlobalPatternTrigger)
    assert trig.describe()["amplitude"] == 32 / 255
    assert DEFAULT_AMPLITUDE == AMP
    out = trig.apply(torch.full((1, 3, 32, 32), 0.5, dtype=torch.float64))
    assert float((out - 0.5).abs().max()) == pytest.approx(32 / 255, abs=1e-12)
    assert bool((out[..., 0, :] != 0.5).any())  # border 0: the edge changes too


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"amplitude": 0}, "global trigger amplitude=0 is not in (0, 1]"),
        ({"amplitude": 1.5}, "global trigger amplitude=1.5 is not in (0, 1]"),
        ({"amplitude": "1/0"}, "global trigger amplitude='1/0' is not a number or a fraction"),
        ({"seed": -1}, "global trigger seed=-1 is not in [0, 1.84467e+19]"),
        ({"border": 15}, "global trigger border=15 leaves a 2x0 interior in a 32x30 image; "
                         "allowed: border <= 14"),
    ],
)
def test_bad_parameters(params: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        create_trigger("global", (32, 30), 3, **params)
    assert message in str(info.value)


def test_grating_is_the_legacy_global_trigger_under_its_own_name() -> None:
    # Stored runs with trigger="global" computed the grating: the name must keep stamping it.
    legacy, grating = create_trigger("global", 32, 3), create_trigger("grating", 32, 3)
    assert type(grating).__name__ == "GratingTrigger"
    assert isinstance(legacy, type(grating))
    assert legacy.describe() == {**grating.describe(), "name": "global"}
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    assert torch.equal(legacy.apply(images), grating.apply(images))
    assert torch.equal(legacy.pattern(), create_trigger("global", 32, 1).pattern())
    with pytest.raises(ConfigError, match="grating trigger amplitude=2 is not in"):
        create_trigger("grating", 32, 3, amplitude=2)
