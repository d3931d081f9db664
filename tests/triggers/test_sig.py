"""The sig trigger (Barni et al. 2019): the sinusoid's exact values, clipping, clean-label info."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dal_backdoor.errors import ConfigError
from triggers import create_trigger, trigger_info

D = 20 / 255


def test_signal_exact_values() -> None:
    trig = create_trigger("sig", 32, 3)
    assert trig.describe() == {"name": "sig", "image_size": [32, 32], "channels": 3,
                               "delta": D, "frequency": 6.0}
    v = trig.signal()
    assert v.shape == (32,)
    assert v.dtype == torch.float32
    # 2 pi j 6 / 32 at j = 4 is 3 pi / 2: sin = -1; at j = 0: 0; at j = 16: 6 pi -> ~0
    assert v[0].item() == 0.0
    assert v[4].item() == float(np.float32(-D))
    assert abs(v[16].item()) < 1e-15
    assert v[1].item() == float(np.float32(D * math.sin(2 * math.pi * 6 / 32)))
    out = trig.apply(torch.full((2, 3, 32, 32), 0.5))
    assert out[1, 2, 17, 4].item() == float(np.float32(0.5) + np.float32(-D))
    assert torch.equal(out, (0.5 + v).expand(2, 3, 32, 32))  # every row and channel


def test_clipping_parameters_and_threat_model() -> None:
    trig = create_trigger("sig", (4, 8), 1, delta="40/255", frequency=2)
    v = trig.signal()  # 2 periods over 8 columns: 0, +d, 0, -d, ...
    assert v[1].item() == float(np.float32(40 / 255))
    assert v[3].item() == -v[1].item()
    assert bool((trig.apply(torch.zeros(1, 1, 4, 8))[0, 0, :, 3] == 0).all())
    assert bool((trig.apply(torch.ones(1, 1, 4, 8))[0, 0, :, 1] == 1).all())
    info = trigger_info("sig").threat_model
    assert info.startswith("clean-label")
    assert "target class" in info
    with pytest.raises(ConfigError, match="sig trigger frequency=0 is not in"):
        create_trigger("sig", 32, 3, frequency=0)
    with pytest.raises(ConfigError, match="sig trigger delta=2 is not in"):
        create_trigger("sig", 32, 3, delta=2)
