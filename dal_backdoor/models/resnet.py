"""ResNet for small images (the "CIFAR variant" of He et al. 2016, "Deep Residual Learning").

This is the network the DAL paper trains (Section 5.1: ResNet18) and the layout of the authors'
``resnet.py`` (the widely used CIFAR ResNet): a 3x3 stem convolution with stride 1 and padding 1
(no bias) + BatchNorm + ReLU and *no* max-pool, then four stages of ``BasicBlock``s of width
``w, 2w, 4w, 8w`` with strides ``1, 2, 2, 2``, a 1x1 convolution + BatchNorm shortcut wherever a
block changes the spatial size or the width, global average pooling and one linear layer.
ResNet18 has ``[2, 2, 2, 2]`` blocks per stage: 11,173,962 parameters for 10 classes, 3 input
channels and ``w = 64``.

Differences from the authors' code, on purpose:
- pooling is ``AdaptiveAvgPool2d(1)`` instead of a fixed 4x4 average pool, so any input of at
  least 8x8 works (28x28 Fashion-MNIST gives 4x4 maps after the last stage, 32x32 CIFAR too);
  on 32x32 inputs both are the same operation.

Initialisation (``init``, see ``INITS``):
- ``"pytorch"`` (default, the authors' ``resnet.py``): every module keeps PyTorch's own
  initialisation and nothing is re-initialised: convolutions and the linear head
  Kaiming-uniform with ``a = sqrt(5)``, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the linear
  bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), BatchNorm weights 1 and biases 0.
- ``"torchvision"`` (torchvision's ``resnet.py``): convolutions re-drawn Kaiming-normal
  (``mode="fan_out"``, ``nonlinearity="relu"``), BatchNorm weights 1 and biases 0, the linear
  head as PyTorch's default. The tool's only initialisation before the option existed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dal_backdoor.models import INITS  # declared torch-free in the package; first: default
from dal_backdoor.validation import check_choice

MIN_INPUT_SIZE = 8  # three stride-2 stages: 8x8 inputs end as 1x1 maps


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm, and an identity (or 1x1 conv + BN) shortcut."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR-style ResNet: 3x3 stride-1 stem, no max-pool, four stages, adaptive pooling."""

    def __init__(
        self,
        blocks_per_stage: Sequence[int],
        num_classes: int,
        *,
        in_channels: int = 3,
        width: int = 64,
        init: str = "pytorch",
    ) -> None:
        super().__init__()
        check_choice("init", init, INITS)
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages = []
        in_planes = width
        for index, num_blocks in enumerate(blocks_per_stage):
            planes = width * 2**index
            stride = 1 if index == 0 else 2
            layers = []
            for block_index in range(num_blocks):
                layers.append(BasicBlock(in_planes, planes, stride if block_index == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(in_planes, num_classes)
        if init == "torchvision":
            _init_like_torchvision(self)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] < MIN_INPUT_SIZE or x.shape[-2] < MIN_INPUT_SIZE:
            raise ValueError(f"input of size {tuple(x.shape[-2:])} is too small; "
                             f"allowed: height and width >= {MIN_INPUT_SIZE}")
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(torch.flatten(self.pool(out), 1))


def _init_like_torchvision(model: nn.Module) -> None:
    """Kaiming-normal (fan_out, ReLU) convolutions, BatchNorm (1, 0), as torchvision's ResNet."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def resnet18(num_classes: int, *, in_channels: int = 3, width: int = 64,
             init: str = "pytorch") -> ResNet:
    """ResNet18, CIFAR variant: BasicBlock x [2, 2, 2, 2]."""
    return ResNet((2, 2, 2, 2), num_classes, in_channels=in_channels, width=width, init=init)


def resnet34(num_classes: int, *, in_channels: int = 3, width: int = 64,
             init: str = "pytorch") -> ResNet:
    """ResNet34, CIFAR variant: BasicBlock x [3, 4, 6, 3]."""
    return ResNet((3, 4, 6, 3), num_classes, in_channels=in_channels, width=width, init=init)
