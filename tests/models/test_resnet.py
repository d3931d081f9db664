from __future__ import annotations

import pytest
import torch
from torch import nn

from dal_backdoor.errors import ConfigError
from dal_backdoor.models import create_model, list_models
from dal_backdoor.models.resnet import BasicBlock


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def expected_params(blocks: list[int], num_classes: int, in_channels: int, width: int) -> int:
    """Closed-form count: 3x3 convs without bias, BN (2 per channel), 1x1 conv+BN shortcuts."""
    total = 9 * in_channels * width + 2 * width  # stem conv + BN
    in_planes = width
    for stage, n in enumerate(blocks):
        planes = width * 2**stage
        for b in range(n):
            total += 9 * in_planes * planes + 2 * planes + 9 * planes * planes + 2 * planes
            stride = 1 if stage == 0 or b > 0 else 2
            if stride != 1 or in_planes != planes:
                total += in_planes * planes + 2 * planes
            in_planes = planes
    return total + in_planes * num_classes + num_classes


def test_registry_lists_resnets() -> None:
    assert list_models() == ["resnet18", "resnet34"]
    with pytest.raises(ConfigError, match="unknown model 'vgg'; allowed: resnet18, resnet34"):
        create_model("vgg", 10)


def test_resnet18_has_the_papers_parameter_count() -> None:
    assert n_params(create_model("resnet18", 10)) == 11_173_962


@pytest.mark.parametrize(
    ("name", "blocks", "num_classes", "in_channels", "width"),
    [
        ("resnet18", [2, 2, 2, 2], 100, 3, 64),
        ("resnet18", [2, 2, 2, 2], 10, 1, 16),
        ("resnet18", [2, 2, 2, 2], 7, 2, 8),
        ("resnet34", [3, 4, 6, 3], 10, 3, 8),
    ],
)
def test_parameter_count_matches_closed_form(name: str, blocks: list[int], num_classes: int,
                                             in_channels: int, width: int) -> None:
    model = create_model(name, num_classes, in_channels=in_channels, width=width)
    assert n_params(model) == expected_params(blocks, num_classes, in_channels, width)


def test_resnet34_default_count() -> None:
    # the CIFAR ResNet34 is a well-known 21,282,122 parameters for 10 classes
    assert n_params(create_model("resnet34", 10)) == 21_282_122


def test_cifar_stem_and_no_maxpool() -> None:
    model = create_model("resnet18", 10, width=8)
    assert model.conv1.kernel_size == (3, 3)
    assert model.conv1.stride == (1, 1)
    assert model.conv1.padding == (1, 1)
    assert model.conv1.bias is None
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    strides = [model.layer1[0].conv1.stride, model.layer2[0].conv1.stride,
               model.layer3[0].conv1.stride, model.layer4[0].conv1.stride]
    assert strides == [(1, 1), (2, 2), (2, 2), (2, 2)]
    assert isinstance(model.layer1[0].shortcut, nn.Identity)  # same shape: identity
    assert isinstance(model.layer2[0].shortcut, nn.Sequential)
    assert model.linear.in_features == 64


def test_torchvision_style_init() -> None:
    model = create_model("resnet18", 10, width=16, seed=0, init="torchvision")
    conv = model.layer3[1].conv2  # 64 -> 64, 3x3: fan_out = 64 * 9
    expected_std = (2.0 / (64 * 9)) ** 0.5
    assert conv.weight.std().item() == pytest.approx(expected_std, rel=0.05)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.equal(m.weight, torch.ones_like(m.weight))
            assert torch.equal(m.bias, torch.zeros_like(m.bias))


def test_seed_gives_identical_weights_and_leaves_global_rng() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = create_model("resnet18", 10, width=4, seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    b = create_model("resnet18", 10, width=4, seed=5)
    c = create_model("resnet18", 10, width=4, seed=6)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


@pytest.mark.parametrize(("channels", "size"), [(3, 32), (1, 28), (3, 8), (1, 13)])
def test_forward_shapes(channels: int, size: int) -> None:
    model = create_model("resnet18", 10, in_channels=channels, width=4).eval()
    with torch.no_grad():
        out = model(torch.randn(2, channels, size, size))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_too_small_input_is_a_clear_error() -> None:
    model = create_model("resnet18", 10, width=4).eval()
    with pytest.raises(ValueError, match=r"allowed: height and width >= 8"):
        model(torch.randn(1, 3, 7, 7))


def test_channels_last_matches_contiguous() -> None:
    model = create_model("resnet18", 10, width=4, seed=0).eval()
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x)
        model_cl = model.to(memory_format=torch.channels_last)
        out = model_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_basic_block_shortcut_shapes() -> None:
    block = BasicBlock(4, 8, stride=2)
    assert block(torch.randn(1, 4, 8, 8)).shape == (1, 8, 4, 4)
    assert isinstance(BasicBlock(4, 4).shortcut, nn.Identity)


def test_invalid_arguments() -> None:
    with pytest.raises(ConfigError, match=r"num_classes=0 is not in \[1, inf\)"):
        create_model("resnet18", 0)
    with pytest.raises(ConfigError, match=r"width=0 is not in \[1, inf\)"):
        create_model("resnet18", 10, width=0)
    with pytest.raises(ConfigError, match="in_channels"):
        create_model("resnet18", 10, in_channels=1.5)


def test_trains_a_step() -> None:
    torch.manual_seed(0)
    model = create_model("resnet18", 4, in_channels=1, width=4, seed=0)
    x = torch.randn(8, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    y = torch.arange(8) % 4
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    model.train()
    for _ in range(5):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(p.grad is not None for p in model.parameters())
    assert losses[-1] < losses[0]
