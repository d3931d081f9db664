"""The blended trigger (Chen et al. 2017): exact blends, the seeded key, key files, test alpha."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dal_backdoor.errors import ConfigError
from triggers import create_trigger, trigger_from_description, trigger_info
from triggers.blended import noise_key
from triggers.global_pattern import splitmix64


def f32(value: float) -> float:
    return float(np.float32(value))


def test_default_key_is_seeded_uint8_noise() -> None:
    key = noise_key(3, 32, 32, 0)
    # the first SplitMix64(0) outputs, top byte: 226, 110, 6, 248 (C-order over C, H, W)
    assert (key[0, 0, :4] * 255).tolist() == [226.0, 110.0, 6.0, 248.0]
    assert [z >> 56 for z in splitmix64(0, 4)] == [226, 110, 6, 248]
    assert (key[2, 31, 31] * 255).item() == 32.0
    assert torch.equal(key, noise_key(3, 32, 32, 0))
    assert not torch.equal(key, noise_key(3, 32, 32, 1))
    assert torch.equal((key * 255).round(), key * 255)  # uint8 levels


def test_blend_exact_values_and_test_alpha() -> None:
    trig = create_trigger("blended", 32, 3)
    assert trig.describe() == {"name": "blended", "image_size": [32, 32], "channels": 3,
                               "alpha": 0.2, "test_alpha": 0.2, "seed": 0,
                               "pattern_file": None, "pattern_sha256": None, "fit": "resize"}
    out = trig.apply(torch.full((1, 3, 32, 32), 0.5))[0]
    # 0.5 * f32(0.8) + f32(0.2) * k, k = 226/255 and 110/255
    assert out[0, 0, 0].item() == 0.5772548913955688
    assert out[0, 0, 0].item() == f32(f32(0.5 * f32(0.8)) + f32(f32(0.2) * f32(226 / 255)))
    assert out[0, 0, 1].item() == f32(f32(0.5 * f32(0.8)) + f32(f32(0.2) * f32(110 / 255)))
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    k = trig.key().double()
    assert torch.allclose(trig.apply(x), 0.8 * x + 0.2 * k, atol=1e-7)
    strong = create_trigger("blended", 32, 3, alpha="1/10", test_alpha=0.3)
    assert strong.alpha == 0.1
    assert strong.for_evaluation().alpha == 0.3
    assert torch.allclose(strong.for_evaluation().apply(x), 0.7 * x + 0.3 * k, atol=1e-7)
    assert torch.allclose(strong.apply(x), 0.9 * x + 0.1 * k, atol=1e-7)
    assert trig.for_evaluation() is trig
    assert trigger_from_description(strong.describe()) == strong
    assert trigger_info("blended").threat_model.startswith("dirty-label")


def test_key_file_png_and_resize(tmp_path: Path) -> None:
    img = np.zeros((8, 8, 3), dtype=np.uint8)
    img[..., 0] = 255
    img[4:, :, 2] = 100
    path = tmp_path / "key.png"
    Image.fromarray(img).save(path)
    trig = create_trigger("blended", 8, 3, pattern_file=str(path), alpha=0.5)
    assert trig.describe()["pattern_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert torch.equal(trig.key(), torch.from_numpy(img.transpose(2, 0, 1) / 255).float())
    out = trig.apply(torch.zeros(1, 3, 8, 8))[0]
    assert out[0, 0, 0].item() == 0.5
    assert out[2, 7, 7].item() == f32(f32(0.5) * f32(100 / 255))
    grey = create_trigger("blended", 16, 1, pattern_file=str(path))  # resized, luminance
    assert grey.key().shape == (1, 16, 16)
    assert grey.key()[0, 0, 0].item() == pytest.approx(0.299, abs=1e-7)
    with pytest.raises(ConfigError, match="is 8x8 but the region it covers is 16x16"):
        create_trigger("blended", 16, 3, pattern_file=str(path), fit="exact")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"alpha": 0}, "blended trigger alpha=0 is not in (0, 1]"),
        ({"test_alpha": 1.5}, "blended trigger test_alpha=1.5 is not in (0, 1]"),
        ({"fit": "zoom"}, "blended trigger fit='zoom' is unknown"),
        ({"pattern_sha256": "ab"}, "blended trigger pattern_sha256 needs a pattern_file"),
    ],
)
def test_bad_parameters(params: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        create_trigger("blended", 32, 3, **params)
    assert message in str(info.value)


def test_uint8_path() -> None:
    trig = create_trigger("blended", 4, 1, alpha=0.5)
    u = torch.full((1, 1, 4, 4), 100, dtype=torch.uint8)
    k = trig.key()[0]
    expected = torch.round((f32(100 / 255) * 0.5 + 0.5 * k) * 255).to(torch.uint8)
    assert torch.equal(trig.apply_uint8(u)[0, 0], expected)
