"""Initialisation schemes: PyTorch's module defaults (the authors', default) and torchvision's."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dal_backdoor.errors import ConfigError
from dal_backdoor.models import INITS, create_model
from dal_backdoor.models.resnet import _init_like_torchvision, resnet18


def _fan_in(weight: torch.Tensor) -> int:
    return weight.shape[1] * math.prod(weight.shape[2:])


def test_default_is_pytorch_and_both_are_offered() -> None:
    assert INITS == ("pytorch", "torchvision")
    a = create_model("resnet18", 10, width=4, seed=3)
    b = create_model("resnet18", 10, width=4, seed=3, init="pytorch")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_pytorch_init_conv_weights_are_uniform_within_one_over_sqrt_fan_in() -> None:
    # kaiming_uniform_(a=sqrt(5)): gain sqrt(2 / 6), bound = sqrt(3) * gain / sqrt(fan_in)
    # = 1 / sqrt(fan_in), so w ~ U(-b, b): max |w| <= b, variance b^2 / 3.
    model = create_model("resnet18", 10, width=16, seed=0)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 20  # stem + 16 block convs + 3 shortcuts
    for conv in convs:
        w = conv.weight.detach().double()
        bound = 1 / math.sqrt(_fan_in(w))
        assert w.abs().max().item() <= bound
        if w.numel() >= 9_000:  # enough samples for a 5% check (relative s.e. sqrt(0.8/n))
            assert w.var().item() == pytest.approx(bound**2 / 3, rel=0.05)
            assert w.abs().max().item() > 0.99 * bound
    big = model.layer4[1].conv2.weight.detach().double()  # 128 -> 128, 3x3: fan_in 1152
    assert big.numel() == 147_456
    assert big.var().item() == pytest.approx(1 / (3 * 1152), rel=0.02)
    assert big.mean().item() == pytest.approx(0.0, abs=3 * math.sqrt(1 / (3 * 1152) / 147_456))


def test_pytorch_init_batchnorm_and_linear_head() -> None:
    model = create_model("resnet18", 10, width=16, seed=0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.equal(m.weight, torch.ones_like(m.weight))
            assert torch.equal(m.bias, torch.zeros_like(m.bias))
            assert torch.equal(m.running_mean, torch.zeros_like(m.running_mean))
            assert torch.equal(m.running_var, torch.ones_like(m.running_var))
    head = model.linear
    assert head.in_features == 128
    bound = 1 / math.sqrt(128)
    assert head.weight.abs().max().item() <= bound
    assert head.bias.abs().max().item() <= bound
    assert head.weight.var().item() == pytest.approx(bound**2 / 3, rel=0.1)  # 1,280 samples


def test_torchvision_init_keeps_the_old_statistics() -> None:
    model = create_model("resnet18", 10, width=16, seed=0, init="torchvision")
    w = model.layer4[1].conv2.weight.detach().double()  # fan_out = 128 * 9
    assert w.std().item() == pytest.approx(math.sqrt(2 / (128 * 9)), rel=0.01)
    # a normal with that std exceeds the uniform bound 1/sqrt(fan_in) = 0.0295 (about 3.3 s.d.)
    assert w.abs().max().item() > 1 / math.sqrt(128 * 9)
    pytorch = create_model("resnet18", 10, width=16, seed=0)
    assert pytorch.layer4[1].conv2.weight.std().item() == pytest.approx(
        math.sqrt(1 / (3 * 128 * 9)), rel=0.01)


def test_torchvision_init_reproduces_the_weights_of_runs_stored_before_the_option() -> None:
    # Before the option, the model was built with PyTorch's defaults and then re-initialised
    # like torchvision, all from one seeded generator: the same seed must give the same weights.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        old = resnet18(10, width=4)
        _init_like_torchvision(old)
    new = create_model("resnet18", 10, width=4, seed=11, init="torchvision")
    for (name, p), q in zip(old.state_dict().items(), new.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    # the head is left alone by the torchvision init: identical under both schemes
    pytorch = create_model("resnet18", 10, width=4, seed=11)
    assert torch.equal(pytorch.linear.weight, new.linear.weight)
    assert not torch.equal(pytorch.conv1.weight, new.conv1.weight)


@pytest.mark.parametrize("init", INITS)
def test_same_seed_same_weights_other_seed_other_weights(init: str) -> None:
    a = create_model("resnet18", 10, width=4, seed=5, init=init)
    b = create_model("resnet18", 10, width=4, seed=5, init=init)
    c = create_model("resnet18", 10, width=4, seed=6, init=init)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.layer1[0].conv1.weight, c.layer1[0].conv1.weight)


def test_unknown_init_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown init 'kaiming'; allowed: pytorch, torchvision"):
        create_model("resnet18", 10, width=4, init="kaiming")
