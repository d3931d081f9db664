"""The trigger registry, self-description round trip and input validation (all triggers)."""

from __future__ import annotations

import json

import pytest
import torch

import triggers
from dal_backdoor.errors import ConfigError
from triggers import (
    Trigger,
    create_trigger,
    list_triggers,
    trigger_from_description,
    trigger_info,
)
from triggers.catalog import TRIGGERS
from triggers.info import TriggerInfo, TriggerParam

NON_DEFAULT = {"local": {"size": 2, "top": 1, "pattern": [[0.5, 1.0], [0.0, 0.25]]},
               "global": {"amplitude": 0.1, "seed": 3, "border": 1},
               "grating": {"amplitude": 0.1, "seed": 3, "border": 1},
               "weng": {"amplitude": "32/255", "border": 1, "fit": "resize"},
               "blended": {"alpha": 0.3, "test_alpha": 0.5, "seed": 2},
               "badnets-random": {"size": 2, "pattern": "white", "seed": 4},
               "sig": {"delta": "10/255", "frequency": 3},
               "wanet": {"k": 3, "s": 0.7, "seed": 1}}
#: triggers that need no parameter (``additive`` needs a pattern file: tests/triggers/)
PLAIN = ["local", "global", "grating", "weng", "blended", "badnets-random", "sig", "wanet"]
EXPECTED_PARAMS = {"local": ["size", "margin", "top", "left", "pattern"],
                   "global": ["amplitude", "seed", "border"],
                   "grating": ["amplitude", "seed", "border"],
                   "weng": ["amplitude", "border", "fit"],
                   "blended": ["alpha", "test_alpha", "seed", "pattern_file", "pattern_sha256",
                               "fit"],
                   "badnets-random": ["size", "pattern", "seed"],
                   "sig": ["delta", "frequency"],
                   "wanet": ["k", "s", "seed"]}


def test_builtin_triggers_are_listed_in_declaration_order() -> None:
    assert list_triggers() == ["local", "weng", "grating", "global", "additive", "blended",
                               "badnets-random", "sig", "wanet"]
    assert "dal-backdoor" in (triggers.__doc__ or "")


@pytest.mark.parametrize("name", PLAIN)
def test_info_lists_every_parameter_with_default_and_meaning(name: str) -> None:
    info = trigger_info(name)
    assert info.name == name
    assert info.summary
    assert "\n" not in info.summary
    clean_label = name == "sig"
    assert info.threat_model.startswith("clean-label: " if clean_label else "dirty-label: ")
    assert [p.name for p in info.params] == EXPECTED_PARAMS[name]
    assert all(p.help for p in info.params)
    # the defaults shown are the ones used
    described = create_trigger(name, 32, 3).describe()
    for p in info.params:
        if p.default is not None and not isinstance(p.default, str) or p.name == "pattern":
            assert described[p.name] == p.default


@pytest.mark.parametrize("name", PLAIN)
def test_describe_round_trips_through_json(name: str) -> None:
    channels = 1 if name == "weng" else 2  # weng: a 1- or 3-channel pattern
    trig = create_trigger(name, (24, 20), channels, **NON_DEFAULT[name])
    text = json.dumps(trig.describe())
    again = trigger_from_description(json.loads(text))
    assert again == trig
    assert type(again) is type(trig)
    assert again.describe() == trig.describe()
    assert create_trigger(**json.loads(text)) == trig
    images = torch.rand(3, channels, 24, 20, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.apply(images), trig.apply(images))
    assert trig != create_trigger(name, (24, 20), channels)


@pytest.mark.parametrize("name", PLAIN)
def test_shape_and_dtype_are_checked(name: str) -> None:
    trig = create_trigger(name, 32, 3)
    with pytest.raises(ConfigError) as info:
        trig.apply(torch.zeros(2, 1, 28, 28))
    assert str(info.value) == (f"images of shape (2, 1, 28, 28) do not match the {name} "
                               "trigger's shape (B, 3, 32, 32)")
    with pytest.raises(ConfigError, match=r"shape \(3, 32, 32\) do not match"):
        trig.apply(torch.zeros(3, 32, 32))
    with pytest.raises(ConfigError, match="apply expects float images in \\[0, 1\\], got "
                                          "torch.uint8; use apply_uint8"):
        trig.apply(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ConfigError, match="apply_uint8 expects uint8 images, got torch.float32"):
        trig.apply_uint8(torch.zeros(1, 3, 32, 32))
    assert trig(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)  # __call__ is apply


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", PLAIN)
def test_cuda_and_cpu_stamp_identically(name: str) -> None:
    trig = create_trigger(name, 32, 3)
    gen = torch.Generator().manual_seed(0)
    u = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=gen)
    f = u.to(torch.float32) / 255
    out_u = trig.apply_uint8(u.cuda())
    out_f = trig.apply(f.cuda())
    assert out_u.device.type == "cuda"
    assert out_f.device.type == "cuda"
    if name == "wanet":  # grid_sample's CUDA and CPU kernels may round differently
        diff = (out_u.cpu().to(torch.int16) - trig.apply_uint8(u).to(torch.int16)).abs()
        assert int(diff.max()) <= 1
        assert torch.allclose(out_f.cpu(), trig.apply(f), atol=1e-6)
        return
    assert torch.equal(out_u.cpu(), trig.apply_uint8(u))
    assert torch.equal(out_f.cpu(), trig.apply(f))


def test_unknown_name_and_parameter() -> None:
    with pytest.raises(ConfigError) as unknown:
        create_trigger("blend", 32, 3)
    head, allowed = str(unknown.value).split("; allowed: ")
    assert head == "unknown trigger 'blend'"
    assert sorted(allowed.split(", ")) == sorted(list_triggers())
    with pytest.raises(ConfigError) as info:
        create_trigger("local", 32, 3, amplitude=0.1)
    assert str(info.value) == ("local trigger has no parameter 'amplitude'; allowed: size, "
                               "margin, top, left, pattern")


@pytest.mark.parametrize(
    ("image_size", "channels", "message"),
    [
        ((32, 32, 3), 3, "image_size=(32, 32, 3) is not an int or an (H, W) pair"),
        (0, 3, "image height=0 is not in [1, 4096]"),
        ("32", 3, "image_size='32' is not an int or an (H, W) pair"),
        (32, 0, "channels=0 is not in [1, 64]"),
    ],
)
def test_bad_image_size_or_channels(image_size: object, channels: int, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        create_trigger("local", image_size, channels)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_bad_descriptions() -> None:
    with pytest.raises(ConfigError, match="trigger description lacks image_size, channels"):
        trigger_from_description({"name": "local"})
    with pytest.raises(ConfigError, match="must be a mapping"):
        trigger_from_description(["local"])  # type: ignore[arg-type]


def test_a_new_trigger_is_one_class_and_one_declaration() -> None:
    @TRIGGERS.register("test-invert", TriggerInfo(
        "test-invert", "Inverts every pixel (a test-only trigger).",
        (TriggerParam("gain", 1.0, "multiplier"),)))
    class Invert(Trigger):
        name = "test-invert"

        def __init__(self, image_size: int, channels: int, gain: float = 1.0) -> None:
            super().__init__(image_size, channels)
            self.gain = gain

        def params(self) -> dict:
            return {"gain": self.gain}

        def _apply_float(self, images: torch.Tensor) -> torch.Tensor:
            return (1 - images) * self.gain

    try:
        assert list_triggers()[-1] == "test-invert"
        trig = create_trigger("test-invert", 4, 1)
        assert trigger_info("test-invert").summary == "Inverts every pixel (a test-only trigger)."
        u = torch.tensor([0, 1, 128, 255], dtype=torch.uint8).view(1, 1, 2, 2).repeat(1, 1, 2, 2)
        out = trig.apply_uint8(u)[0, 0]
        assert out[:2].tolist() == [[255, 254, 255, 254], [127, 0, 127, 0]]
        assert trigger_from_description(trig.describe()) == trig
    finally:
        TRIGGERS.remove("test-invert")
    assert "test-invert" not in list_triggers()


def test_a_trigger_class_must_match_its_declaration() -> None:
    class Broken(Trigger):
        name = "test-broken"

        # gain is the undeclared parameter the check must catch
        def __init__(self, image_size: int, channels: int, gain: float = 1.0) -> None:  # noqa: ARG002
            super().__init__(image_size, channels)

    with pytest.raises(RuntimeError, match=r"info params \[\] != Broken.__init__ parameters "
                                           r"\['gain'\]"):
        TRIGGERS.register("test-broken", TriggerInfo("test-broken", "broken"))(Broken)
    with pytest.raises(RuntimeError, match=r"Broken.name is 'test-broken'"):
        TRIGGERS.register("other", TriggerInfo("other", "x", (TriggerParam("gain", 1, "g"),)))(
            Broken)
    assert "test-broken" not in list_triggers()
    assert "other" not in list_triggers()
