"""The wanet trigger (Nguyen and Tran 2021): the warp grid, exact sampling, the noise mode."""

from __future__ import annotations

import pytest
import torch

from dal_backdoor.errors import ConfigError
from triggers import create_trigger, trigger_info
from triggers.global_pattern import splitmix64
from triggers.wanet import control_field


def test_control_field_is_seeded_and_normalised() -> None:
    p = control_field(4, 0)
    u = [(z >> 11) * 2.0**-53 for z in splitmix64(0, 32)]
    raw = torch.tensor(u, dtype=torch.float64).view(2, 4, 4) * 2 - 1
    assert torch.equal(p, raw / raw.abs().mean())
    assert p.abs().mean().item() == pytest.approx(1.0, abs=1e-15)
    assert p[0, 0, 0].item() == pytest.approx(1.5262381430524634, abs=1e-15)


def test_grid_is_a_small_clamped_displacement_of_the_identity() -> None:
    trig = create_trigger("wanet", 32, 3)
    assert trig.describe() == {"name": "wanet", "image_size": [32, 32], "channels": 3,
                               "k": 4, "s": 0.5, "seed": 0}
    g = trig.grid("cpu", torch.float64)[0]
    lin = torch.linspace(-1, 1, 32, dtype=torch.float64)
    identity = torch.stack([lin.view(1, 32).expand(32, 32), lin.view(32, 1).expand(32, 32)], -1)
    shift = (g - identity).abs()
    # s * |P_up| / 32 with bicubic overshoot: at most about half a pixel (2 / 31 per pixel)
    assert 0.0 < float(shift.max()) < 0.5 * 2.2 / 32
    assert float(g.min()) == -1.0
    assert float(g.max()) == 1.0
    # corners of the control field are kept by align_corners=True: g(0, 0) = clamp(-1 + ...)
    p = control_field(4, 0)
    assert g[0, 0, 0].item() == pytest.approx(max(-1.0, -1 + 0.5 * p[0, 0, 0].item() / 32))
    assert g[31, 31, 1].item() == pytest.approx(min(1.0, 1 + 0.5 * p[1, 3, 3].item() / 32))


def test_warp_samples_bilinearly_at_the_grid() -> None:
    # On the ramp I(y, x) = x / (W - 1), bilinear sampling at grid x gives exactly (x + 1) / 2.
    h, w = 20, 24
    trig = create_trigger("wanet", (h, w), 2, k=3, s=0.8, seed=5)
    ramp_x = (torch.arange(w, dtype=torch.float64) / (w - 1)).view(1, w).expand(h, w)
    ramp_y = (torch.arange(h, dtype=torch.float64) / (h - 1)).view(h, 1).expand(h, w)
    images = torch.stack([ramp_x, ramp_y]).unsqueeze(0)
    out = trig.apply(images)[0]
    g = trig.grid("cpu", torch.float64)[0]
    assert torch.allclose(out[0], (g[..., 0] + 1) / 2, atol=1e-12)
    assert torch.allclose(out[1], (g[..., 1] + 1) / 2, atol=1e-12)
    const = trig.apply(torch.full((3, 2, h, w), 0.25, dtype=torch.float64))
    assert torch.allclose(const, torch.full_like(const, 0.25), atol=1e-12)


def test_noise_mode_perturbs_each_sample_and_is_seeded() -> None:
    trig = create_trigger("wanet", 16, 1)
    grids = trig.noise_grid(3, torch.Generator().manual_seed(0))
    r = torch.rand(3, 16, 16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = (trig.grid("cpu", torch.float64) + (2 * r - 1) / 16).clamp(-1, 1)
    assert torch.equal(grids, expected)
    ramp = (torch.arange(16, dtype=torch.float64) / 15).view(1, 1, 1, 16).expand(3, 1, 16, 16)
    out = trig.warp_with_noise(ramp, torch.Generator().manual_seed(0))
    assert torch.allclose(out[:, 0], (expected[..., 0] + 1) / 2, atol=1e-12)
    assert not torch.equal(out[0], out[1])  # a fresh perturbation per sample
    again = trig.warp_with_noise(ramp, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    with pytest.raises(ConfigError, match="expects float images"):
        trig.warp_with_noise(torch.zeros(1, 1, 16, 16, dtype=torch.uint8), torch.Generator())


def test_uint8_parameters_and_threat_model() -> None:
    trig = create_trigger("wanet", 32, 3)
    u = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(1))
    expected = (trig.apply(u.float() / 255) * 255).round().to(torch.uint8)
    assert torch.equal(trig.apply_uint8(u), expected)
    assert "noise-mode samples" in trigger_info("wanet").threat_model
    with pytest.raises(ConfigError, match="wanet trigger k=1 is not in"):
        create_trigger("wanet", 32, 3, k=1)
    with pytest.raises(ConfigError, match="wanet trigger s=0 is not in"):
        create_trigger("wanet", 32, 3, s=0)
