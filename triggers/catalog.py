"""Every trigger, declared once: name, class (``"module:Class"``, imported on first use) and
``TriggerInfo`` (summary and parameters). Torch-free, so listing triggers needs no torch.

The order of ``list_triggers()`` is the order of the ``TRIGGERS.add`` lines below (sorted by
name). Adding a trigger: a module in this package with a :class:`triggers.base.Trigger`
subclass whose ``name`` is the registered name, and one ``TRIGGERS.add`` line here; the
contract tests (``tests/triggers/test_contract.py``) then cover it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dal_backdoor.registry import Registry
from triggers.info import TriggerInfo, TriggerParam

if TYPE_CHECKING:  # torch-free at run time
    from triggers.base import Trigger

#: The named patterns of the ``local`` trigger (1.0 = white, 0.0 = black).
NAMED_PATTERNS = ("checkerboard", "inverted-checkerboard", "white", "black")


def check_trigger_class(name: str, cls: Callable[..., Any], info: TriggerInfo) -> None:
    """A trigger class must carry its registered name and accept exactly ``info.params``."""
    if getattr(cls, "name", None) != name:
        raise RuntimeError(f"trigger {name!r}: {cls.__name__}.name is "
                           f"{getattr(cls, 'name', None)!r}")
    init = [p for p in inspect.signature(cls.__init__).parameters
            if p not in {"self", "image_size", "channels"}]
    if init != list(info.param_names):
        raise RuntimeError(f"trigger {name!r}: info params {list(info.param_names)} != "
                           f"{cls.__name__}.__init__ parameters {init}")


TRIGGERS: Registry[TriggerInfo, Trigger] = Registry("trigger", on_load=check_trigger_class)

TRIGGERS.add("global", "triggers.global_pattern:GlobalPatternTrigger", TriggerInfo(
    "global",
    "A faint zero-mean grating pattern (default amplitude 64/255) added to the whole image.",
    (
        TriggerParam("amplitude", "64/255", "peak change of a pixel, in (0, 1] (or text like "
                                            "32/255)"),
        TriggerParam("seed", 0, "seed of the pattern (SplitMix64; same pattern everywhere)"),
        TriggerParam("border", 2, "width of the untouched frame in pixels"),
    ),
))

TRIGGERS.add("local", "triggers.local:LocalTrigger", TriggerInfo(
    "local",
    "A small patch (default: 3x3 checkerboard) replacing pixels near the bottom-right corner.",
    (
        TriggerParam("size", 3, "side of the square patch in pixels"),
        TriggerParam("margin", 2, "pixels between the patch and the bottom/right image edges"),
        TriggerParam("top", None, "explicit first row of the patch (overrides margin)"),
        TriggerParam("left", None, "explicit first column of the patch (overrides margin)"),
        TriggerParam("pattern", "checkerboard",
                     f"{', '.join(NAMED_PATTERNS)}, or a size x size grid in [0, 1] "
                     "(1 = white) as a list or JSON text"),
    ),
))


def list_triggers() -> list[str]:
    """Names accepted by :func:`create_trigger` (``triggers.base``)."""
    return TRIGGERS.names()


def trigger_info(name: str) -> TriggerInfo:
    """A trigger's one-line summary and its parameters (no torch import)."""
    return TRIGGERS.info(name)
