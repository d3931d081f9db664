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

Every trigger is declared once in ``triggers.catalog`` (name, class, ``TriggerInfo``). Importing
this package (and listing triggers) does not import torch; the trigger classes and
``create_trigger`` load on first access.
"""

from __future__ import annotations

from dal_backdoor.registry import lazy_getattr
from triggers.catalog import TRIGGERS, list_triggers, trigger_info
from triggers.info import TriggerInfo, TriggerParam

# Torch-using names, imported when first used (keeps ``dal-backdoor --help`` free of torch).
_LAZY = {
    "GlobalPatternTrigger": "triggers.global_pattern",
    "LocalTrigger": "triggers.local",
    "Trigger": "triggers.base",
    "create_trigger": "triggers.base",
    "float_to_uint8": "triggers.base",
    "resolve_image_size": "triggers.base",
    "trigger_from_description": "triggers.base",
}

__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = [
    "TRIGGERS",
    "GlobalPatternTrigger",
    "LocalTrigger",
    "Trigger",
    "TriggerInfo",
    "TriggerParam",
    "create_trigger",
    "float_to_uint8",
    "list_triggers",
    "resolve_image_size",
    "trigger_from_description",
    "trigger_info",
]
