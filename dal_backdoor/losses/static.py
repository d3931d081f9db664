"""The static robust losses (no epoch dependence): CE, MAE, GCE, RCE, SCE, NCE, NCE+RCE, AGCE,
NCE+AGCE, TCE, JS, Poly-1 and BTL, declared (with their ``LossInfo``) in ``catalog``.

Defaults of the losses in the paper's Table 1 are its CIFAR-10 column (see ``presets``). AGCE
alone (not in Table 1) defaults to a = 1, q = 2, the defaults of the AGCE class in the AGCE
authors' code and in the DAL authors' copy of it (XiuchuanLi/DAL, ``utils/losses.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor

from dal_backdoor.losses import functional as F
from dal_backdoor.losses.base import FunctionalLoss, LossModule
from dal_backdoor.losses.catalog import BTL_NUM_ITERS

Factory = Callable[..., LossModule]


def _static(
    name: str, fn: Callable[..., Tensor], fixed: Mapping[str, Any] | None = None
) -> Factory:
    """The factory of a static loss: ``fn(logits, targets, **hparams, **fixed)``."""

    def factory(  # every loss factory takes total_epochs and seed
        num_classes: int, hparams: Mapping[str, Any], *, total_epochs: int | None, seed: int  # noqa: ARG001
    ) -> LossModule:
        return FunctionalLoss(name, num_classes, hparams, fn, fixed)

    return factory


ce = _static("ce", F.ce)
mae = _static("mae", F.mae)
gce = _static("gce", F.gce)
rce = _static("rce", F.rce)
sce = _static("sce", F.sce)
nce = _static("nce", F.nce)
nce_rce = _static("nce_rce", F.nce_rce)
agce = _static("agce", F.agce)
nce_agce = _static("nce_agce", F.nce_agce)
tce = _static("tce", F.tce)
js = _static("js", F.js)
poly1 = _static("poly1", F.poly1)
btl = _static("btl", F.btl, fixed={"num_iters": BTL_NUM_ITERS})
