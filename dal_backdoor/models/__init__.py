"""Networks, by name: ``create_model("resnet18", num_classes=10)``, ``list_models()``.

Each entry is declared once below (name, factory ``"module:function"`` imported on first use,
``ModelInfo``); a factory is ``(num_classes, *, in_channels, width) -> nn.Module``, so adding
an architecture is its factory plus one ``MODELS.add`` line. Parameters are initialised from
torch's global generator, or from a fresh generator seeded with ``seed`` (leaving the global
one as it was) when ``seed`` is given. Importing this package imports no torch.
``init`` names the initialisation scheme (``INITS``: "pytorch", PyTorch's module defaults as
the DAL authors' code, or "torchvision", torchvision's ResNet init).

A name of the form ``module:function`` is a researcher's own network
(``dal_backdoor.models.user``): ``params`` then holds the function's keyword arguments and the
recorded source hash; :func:`resolve_model` records that hash and checks the network once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


def _factory(name: str, init: str, params: Mapping[str, Any]) -> Callable[..., nn.Module]:
    """``(num_classes, *, in_channels, width) -> nn.Module`` for model ``name``."""
    from dal_backdoor.errors import ConfigError
    from dal_backdoor.models import user

    if not user.is_reference(name):
        factory = MODELS.get(name)
        if params:
            raise ConfigError(f"model {name} takes no model params; got "
                              f"{', '.join(sorted(params))}")
        return functools.partial(factory, init=init)
    fn, _, _ = user.load_function(name, params, list_models())
    kwargs = user.user_kwargs(params)
    if user.check_init(name, fn, init, INITS[0]):
        kwargs["init"] = init
    return functools.partial(_checked, name, fn, kwargs)


def _checked(name: str, fn: Callable[..., Any], kwargs: dict[str, Any], num_classes: int,
             **shape: int) -> nn.Module:
    """``fn(num_classes, **shape, **kwargs)``, which must be an ``nn.Module``."""
    from torch import nn

    from dal_backdoor.errors import ConfigError

    try:
        model = fn(num_classes, **shape, **kwargs)
    except Exception as exc:  # the user's code: one line, not a traceback
        raise ConfigError(f"model {name!r} failed to build: {type(exc).__name__}: "
                          f"{' '.join(str(exc).split())}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model {name!r} returned {type(model).__name__}; allowed: an "
                          "nn.Module")
    return model


def create_model(
    name: str,
    num_classes: int,
    *,
    in_channels: int = 3,
    width: int = 64,
    seed: int | None = None,
    init: str = INITS[0],
    params: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Build model ``name`` (an ``nn.Module``) with ``num_classes`` outputs, ``in_channels``
    input channels, base width ``width`` (64 is the paper's ResNet18) and initialisation ``init``
    (one of ``INITS``); ``params``: a user model's ``model_params``. Invalid values raise
    ``ConfigError``."""
    import torch

    check_choice("init", init, INITS)
    check_number("num_classes", num_classes, low=1, integer=True)
    check_number("in_channels", in_channels, low=1, integer=True)
    check_number("width", width, low=1, integer=True)
    factory = _factory(name, init, params or {})
    if seed is None:
        return factory(num_classes, in_channels=in_channels, width=width)
    check_number("seed", seed, low=0, high=2**63 - 1, integer=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory(num_classes, in_channels=in_channels, width=width)


def resolve_model(name: str, params: Mapping[str, Any], *, num_classes: int, in_channels: int,
                  image_size: tuple[int, int], width: int, init: str) -> dict[str, Any]:
    """The ``model_params`` a run records: {} for a registered model (checked by name); for
    ``module:function``, the keyword arguments plus ``sha256`` and ``sys_path``, after building
    the network once and checking that a batch of two images gives ``(2, num_classes)``
    logits."""
    from dal_backdoor.models import user

    if not user.is_reference(name):
        from dal_backdoor.errors import ConfigError

        if name not in MODELS:
            raise ConfigError(f"unknown model {name!r}; allowed: {', '.join(list_models())}, "
                              "or your own as module:function (e.g. mynets:build)")
        if params:
            raise ConfigError(f"model {name} takes no model params; got "
                              f"{', '.join(sorted(params))}")
        return {}
    _, digest, sys_path = user.load_function(name, params, list_models())
    recorded = {**user.user_kwargs(params), "sha256": digest, "sys_path": sys_path}
    _check_forward(name, create_model(name, num_classes, in_channels=in_channels, width=width,
                                      seed=0, init=init, params=recorded),
                   num_classes, in_channels, image_size)
    return recorded


def _check_forward(name: str, model: nn.Module, num_classes: int, in_channels: int,
                   image_size: tuple[int, int]) -> None:
    import torch

    from dal_backdoor.errors import ConfigError

    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, in_channels, *image_size))
    except Exception as exc:  # the user's forward: one line, not a traceback
        raise ConfigError(f"model {name!r} fails on a batch of 2 images of {in_channels}x"
                          f"{image_size[0]}x{image_size[1]}: {type(exc).__name__}: "
                          f"{' '.join(str(exc).split())}") from None
    shape = tuple(getattr(out, "shape", ()))
    if shape != (2, num_classes):
        raise ConfigError(f"model {name!r} gives outputs of shape {shape} for 2 images; "
                          f"allowed: (2, {num_classes}) logits")


__all__ = ["INITS", "MODELS", "ModelInfo", "create_model", "list_models", "resolve_model"]
