"""Networks, by name: ``create_model("resnet18", num_classes=10)``, ``list_models()``.

Each entry is declared once below (name, factory ``"module:function"`` imported on first use,
``ModelInfo``); a factory is ``(num_classes, *, in_channels, width) -> nn.Module``, so adding
an architecture is its factory plus one ``MODELS.add`` line. Parameters are initialised from
torch's global generator, or from a fresh generator seeded with ``seed`` (leaving the global
one as it was) when ``seed`` is given. Importing this package imports no torch.
``init`` names the initialisation scheme (``INITS``: "pytorch", PyTorch's module defaults as
the DAL authors' code, or "torchvision", torchvision's ResNet init).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dal_backdoor.registry import Registry
from dal_backdoor.validation import check_choice, check_number

if TYPE_CHECKING:  # torch-free at run time
    from torch import nn


@dataclass(frozen=True)
class ModelInfo:
    """A network's name and one-line description."""

    name: str
    summary: str


MODELS: Registry[ModelInfo, nn.Module] = Registry("model")
MODELS.add("resnet18", "dal_backdoor.models.resnet:resnet18", ModelInfo(
    "resnet18", "ResNet18, CIFAR variant (3x3 stem, stride 1, no max-pool)"))
MODELS.add("resnet34", "dal_backdoor.models.resnet:resnet34", ModelInfo(
    "resnet34", "ResNet34, CIFAR variant (3x3 stem, stride 1, no max-pool)"))
#: Initialisation schemes accepted by ``create_model(..., init=...)`` (first: the default).
INITS = ("pytorch", "torchvision")


def list_models() -> list[str]:
    """Registered model names (feeds ``click.Choice``)."""
    return MODELS.names()


def create_model(
    name: str,
    num_classes: int,
    *,
    in_channels: int = 3,
    width: int = 64,
    seed: int | None = None,
    init: str = INITS[0],
) -> nn.Module:
    """Build model ``name`` (an ``nn.Module``) with ``num_classes`` outputs, ``in_channels``
    input channels, base width ``width`` (64 is the paper's ResNet18) and initialisation ``init``
    (one of ``INITS``). Invalid values raise ``ConfigError``."""
    import torch

    factory = MODELS.get(name)
    check_choice("init", init, INITS)
    check_number("num_classes", num_classes, low=1, integer=True)
    check_number("in_channels", in_channels, low=1, integer=True)
    check_number("width", width, low=1, integer=True)
    if seed is None:
        return factory(num_classes, in_channels=in_channels, width=width, init=init)
    check_number("seed", seed, low=0, high=2**63 - 1, integer=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory(num_classes, in_channels=in_channels, width=width, init=init)


__all__ = ["INITS", "MODELS", "ModelInfo", "create_model", "list_models"]
