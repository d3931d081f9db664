"""The trigger interface and creation functions of dal-backdoor's ``triggers`` package.

A trigger is a pure batch operation on images of a fixed shape ``(B, C, H, W)``:

- :meth:`Trigger.apply` takes float images in [0, 1] (any float dtype, any device) and returns a
  NEW tensor of the same dtype and device with the trigger stamped; the input is never changed.
- :meth:`Trigger.apply_uint8` is the same operation on uint8 images in [0, 255]. It is defined
  as ``round(apply(images / 255) * 255)`` computed in float32 (round half to even, clipped to
  [0, 255]), so the two paths agree by construction; a subclass may override it with a faster
  exact equivalent.

Every trigger is made by :func:`create_trigger` from the declarations of ``triggers.catalog``
(one class per file, one ``TRIGGERS.add`` line each), describes itself with
:meth:`Trigger.describe` (its name and every resolved parameter, JSON-serialisable) and is
re-created from that description with :func:`trigger_from_description`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from dal_backdoor.errors import ConfigError
from dal_backdoor.validation import check_number
from triggers.catalog import TRIGGERS
from triggers.info import TriggerInfo, TriggerParam

__all__ = ["Trigger", "TriggerInfo", "TriggerParam", "create_trigger", "float_to_uint8",
           "resolve_image_size", "trigger_from_description"]

_MAX_SIDE = 4096
_MAX_CHANNELS = 64


def resolve_image_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    """``32`` -> ``(32, 32)``; ``(28, 32)`` or ``[28, 32]`` -> ``(28, 32)`` (height, width)."""
    if isinstance(image_size, (str, bytes)):
        raise ConfigError(f"image_size={image_size!r} is not an int or an (H, W) pair")
    if isinstance(image_size, Sequence):  # includes torch.Size
        if len(image_size) != 2:
            raise ConfigError(f"image_size={tuple(image_size)!r} is not an int or an (H, W) pair")
        h, w = image_size
    else:
        h = w = image_size
    height = check_number("image height", h, low=1, high=_MAX_SIDE, integer=True)
    width = check_number("image width", w, low=1, high=_MAX_SIDE, integer=True)
    return int(height), int(width)


class Trigger:
    """Base class: a stamp for images of shape ``(B, channels, *image_size)``.

    Subclasses set ``name`` (the name they are declared under in ``triggers.catalog``, whose
    ``TriggerInfo`` lists every keyword argument of ``__init__`` after ``image_size`` and
    ``channels``), implement :meth:`_apply_float` and :meth:`params`, and keep their state
    read-only after ``__init__``.
    """

    name: ClassVar[str] = ""

    def __init__(self, image_size: int | Sequence[int], channels: int) -> None:
        self.image_size: tuple[int, int] = resolve_image_size(image_size)
        self.channels: int = int(check_number("channels", channels, low=1, high=_MAX_CHANNELS,
                                              integer=True))

    # -- subclass interface -------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        """Every resolved parameter (JSON-serialisable), without name/image_size/channels."""
        raise NotImplementedError

    def _apply_float(self, images: torch.Tensor) -> torch.Tensor:
        """Stamp validated float images; must return a new tensor."""
        raise NotImplementedError

    # -- public API ----------------------------------------------------------------------------

    @property
    def expected_shape(self) -> str:
        """The accepted shape, e.g. ``(B, 3, 32, 32)``."""
        h, w = self.image_size
        return f"(B, {self.channels}, {h}, {w})"

    def check_images(self, images: torch.Tensor) -> None:
        """Raise ConfigError unless ``images`` is 4-D with this trigger's channels and size."""
        if not isinstance(images, torch.Tensor):
            raise ConfigError(f"{self.name} trigger expects a torch.Tensor, got "
                              f"{type(images).__name__}")
        shape = tuple(images.shape)
        ok = len(shape) == 4 and shape[1] == self.channels and shape[2:] == self.image_size
        if not ok:
            raise ConfigError(f"images of shape {shape} do not match the {self.name} trigger's "
                              f"shape {self.expected_shape}")

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """Return float images in [0, 1] with the trigger stamped (same dtype and device).

        The value range is not scanned (that would cost a pass over the batch); values outside
        [0, 1] are the caller's error.
        """
        self.check_images(images)
        if not images.is_floating_point():
            raise ConfigError(f"{self.name} trigger: apply expects float images in [0, 1], got "
                              f"{images.dtype}; use apply_uint8 for uint8 images")
        return self._apply_float(images)

    __call__ = apply

    def apply_uint8(self, images: torch.Tensor) -> torch.Tensor:
        """Return uint8 images with the trigger stamped: ``round(apply(images / 255) * 255)``."""
        self._check_uint8(images)
        as_float = images.to(torch.float32).div_(255.0)
        return float_to_uint8(self._apply_float(as_float))

    def _check_uint8(self, images: torch.Tensor) -> None:
        self.check_images(images)
        if images.dtype != torch.uint8:
            raise ConfigError(f"{self.name} trigger: apply_uint8 expects uint8 images, got "
                              f"{images.dtype}; use apply for float images in [0, 1]")

    def for_evaluation(self) -> Trigger:
        """The trigger stamped on test images (ASR): ``self`` unless a trigger has separate
        test-time parameters (e.g. ``blended``'s ``test_alpha``)."""
        return self

    def describe(self) -> dict[str, Any]:
        """``name``, ``image_size`` ([H, W]), ``channels`` and every resolved parameter.

        ``create_trigger(**trigger.describe())`` (or :func:`trigger_from_description`) builds
        an identical trigger.
        """
        h, w = self.image_size
        return {"name": self.name, "image_size": [h, w], "channels": self.channels,
                **self.params()}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trigger):
            return NotImplemented
        return self.describe() == other.describe()

    def __hash__(self) -> int:
        return hash(json.dumps(self.describe(), sort_keys=True))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "name")
        return f"{type(self).__name__}({args})"


def float_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [0, 1] -> uint8: ``round(x * 255)`` in float32, half to even, clipped to [0, 255].

    Never modifies ``images`` (``mul`` makes the copy that the in-place ops then reuse).
    """
    return images.to(torch.float32).mul(255.0).round_().clamp_(0, 255).to(torch.uint8)


# -- creation ---------------------------------------------------------------------------------

def create_trigger(
    name: str, image_size: int | Sequence[int], channels: int, **params: Any
) -> Trigger:
    """Create trigger ``name`` for images of ``image_size`` (int or (H, W)) and ``channels``.

    Unknown names and unknown parameters raise a one-line ConfigError listing what is allowed;
    bad parameter values raise the trigger's own ConfigError.
    """
    cls = TRIGGERS.get(name)
    allowed = list(TRIGGERS.info(name).param_names)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(f"{name} trigger has no parameter {', '.join(map(repr, unknown))}; "
                          f"allowed: {', '.join(allowed)}")
    return cls(image_size, channels, **params)


def trigger_from_description(description: Mapping[str, Any]) -> Trigger:
    """Re-create a trigger from :meth:`Trigger.describe` output (e.g. read from a manifest)."""
    if not isinstance(description, Mapping):
        raise ConfigError(f"a trigger description must be a mapping, got "
                          f"{type(description).__name__}")
    rest = dict(description)
    missing = [k for k in ("name", "image_size", "channels") if k not in rest]
    if missing:
        raise ConfigError(f"trigger description lacks {', '.join(missing)}: {description!r}")
    name = rest.pop("name")
    image_size = rest.pop("image_size")
    channels = rest.pop("channels")
    return create_trigger(name, image_size, channels, **rest)
