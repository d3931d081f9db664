"""Networks, by name: ``create_model("resnet18", num_classes=10)``, ``list_models()``.

Each entry is a factory ``(num_classes, *, in_channels, width, init) -> nn.Module``; adding an
architecture is one ``@MODELS.register(name)`` function. ``init`` names the initialisation
scheme (``INITS``: "pytorch", PyTorch's module defaults as the DAL authors' code, or
"torchvision", torchvision's ResNet init). Parameters are initialised from torch's global
generator, or from a fresh generator seeded with ``seed`` (leaving the global one as it was)
when ``seed`` is given.
"""

from __future__ import annotations

import torch
from torch import nn

from dal_backdoor.models import resnet
from dal_backdoor.registry import Registry
from dal_backdoor.validation import check_choice, check_number

MODELS: Registry[nn.Module] = Registry("model")
MODELS.register("resnet18")(resnet.resnet18)
MODELS.register("resnet34")(resnet.resnet34)
#: Initialisation schemes accepted by ``create_model(..., init=...)`` (first: the default).
INITS = resnet.INITS


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
    """Build model ``name`` with ``num_classes`` outputs, ``in_channels`` input channels, base
    width ``width`` (64 is the paper's ResNet18) and initialisation ``init`` (one of ``INITS``).
    Invalid values raise ``ConfigError``."""
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


__all__ = ["INITS", "MODELS", "create_model", "list_models"]
