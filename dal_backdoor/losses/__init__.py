"""The robust-loss zoo: ``create_loss(name, num_classes, **hparams)``, ``list_losses()``,
``preset(name, dataset)`` (the paper's Table 1) and ``loss_info(name)``.

Pure functions live in ``dal_backdoor.losses.functional``; the modules, one file per family,
register themselves here in the paper's order: the static baselines (``static``), CE+SR
(``sr``), NLNL (``nlnl``) and the paper's DGCE and DAL (``dynamic``).
"""

from __future__ import annotations

# isort: off
# Importing a family registers its losses; this order is the order of list_losses().
from dal_backdoor.losses import static  # noqa: F401
from dal_backdoor.losses import sr  # noqa: F401
from dal_backdoor.losses import nlnl  # noqa: F401
from dal_backdoor.losses import dynamic  # noqa: F401
# isort: on
from dal_backdoor.losses.base import (
    LossInfo,
    LossModule,
    ParamSpec,
    create_loss,
    list_losses,
    loss_info,
)
from dal_backdoor.losses.dynamic import DALLoss
from dal_backdoor.losses.functional import inverse_frequency_weights
from dal_backdoor.losses.nlnl import NLNLLoss
from dal_backdoor.losses.presets import COLUMNS, TABLE1, preset, preset_column, table1_entry
from dal_backdoor.losses.sr import CESRLoss

__all__ = [
    "COLUMNS",
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
