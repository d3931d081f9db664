"""The robust-loss zoo: ``create_loss(name, num_classes, **hparams)``, ``list_losses()``,
``preset(name, dataset)`` (the paper's Table 1) and ``loss_info(name)``.

Every loss is declared once in ``dal_backdoor.losses.catalog`` (name, factory, ``LossInfo``),
in the paper's order. Pure functions live in ``dal_backdoor.losses.functional``; the modules,
one file per family: ``static``, ``sr`` (CE+SR), ``nlnl`` and ``dynamic`` (DGCE, DAL).
Importing this package does not import torch: the module classes below load on first access.
"""

from __future__ import annotations

from dal_backdoor.losses.catalog import LOSSES, create_loss, list_losses, loss_info
from dal_backdoor.losses.info import LossInfo, ParamSpec
from dal_backdoor.losses.presets import COLUMNS, TABLE1, preset, preset_column, table1_entry
from dal_backdoor.registry import lazy_getattr

# Torch-using names, imported when first used (keeps ``dal-backdoor --help`` free of torch).
_LAZY = {
    "CESRLoss": "dal_backdoor.losses.sr",
    "DALLoss": "dal_backdoor.losses.dynamic",
    "LossModule": "dal_backdoor.losses.base",
    "NLNLLoss": "dal_backdoor.losses.nlnl",
    "inverse_frequency_weights": "dal_backdoor.losses.functional",
}

__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = [
    "COLUMNS",
    "LOSSES",
    "TABLE1",
    "CESRLoss",
    "DALLoss",
    "LossInfo",
    "LossModule",
    "NLNLLoss",
    "ParamSpec",
    "create_loss",
    "inverse_frequency_weights",
    "list_losses",
    "loss_info",
    "preset",
    "preset_column",
    "table1_entry",
]
