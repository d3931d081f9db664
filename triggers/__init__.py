"""dal-backdoor's backdoor-trigger library (the top-level package ``triggers`` of the
``dal-backdoor`` distribution; not a general-purpose package of that name).

Triggers are batch operations on images ``(B, C, H, W)``: ``apply`` on float images in [0, 1],
``apply_uint8`` on uint8 images, never in place, on any device. Built-in triggers, after Weng et
al. 2020 and Figure 5 of "Dynamics-Aware Loss for Learning with Label Noise" (Li et al.):

- ``local``: a 3x3 checkerboard patch 2 pixels from the bottom-right corner (``triggers.local``);
- ``weng``: Weng et al.'s colourful global trigger, the paper's (``triggers.weng``);
- ``grating``: our faint zero-mean grey grating (amplitude 64/255) over the whole image but a
  2-pixel border, clipped to [0, 1] (``triggers.global_pattern``); ``global`` is its legacy
  name (stored runs with ``trigger="global"`` used it);
- ``additive``: a user's pattern file added like ``weng`` (``triggers.additive``);
- attacks: ``blended``, ``badnets-random``, ``sig`` (clean-label), ``wanet`` (one module each).

Usage::

    from triggers import create_trigger, list_triggers, trigger_from_description
    trig = create_trigger("local", image_size=32, channels=3)
    same = trigger_from_description(trig.describe())

Adding a trigger is one file: a module in this package with a :class:`Trigger` subclass
decorated with ``@register_trigger("name")``; every module here is imported on import.
"""

from __future__ import annotations

import importlib
import pkgutil

from triggers.base import (
    Trigger,
    TriggerInfo,
    TriggerParam,
    create_trigger,
    float_to_uint8,
    list_triggers,
    register_trigger,
    resolve_image_size,
    trigger_from_description,
    trigger_info,
)
from triggers.global_pattern import GlobalPatternTrigger
from triggers.local import LocalTrigger


def _import_trigger_modules() -> None:
    """Import every module of this package so that their ``@register_trigger`` classes exist."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")


_import_trigger_modules()

__all__ = [
    "GlobalPatternTrigger",
    "LocalTrigger",
    "Trigger",
    "TriggerInfo",
    "TriggerParam",
    "create_trigger",
    "float_to_uint8",
    "list_triggers",
    "register_trigger",
    "resolve_image_size",
    "trigger_from_description",
    "trigger_info",
]
