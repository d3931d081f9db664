"""CE+SR: cross entropy with sparse regularisation whose weight grows every r epochs.

Zhou et al., "Learning with Noisy Labels via Sparse Regularization" (ICCV 2021), trained as in
the DAL authors' code: lambda(t) = lambda0 * rho^floor((t - 1) / r) (see
``dal_backdoor.schedules.SRLambdaSchedule``); Table 1's CIFAR-10 values are the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from dal_backdoor.losses import functional as F
from dal_backdoor.losses.base import LossModule
from dal_backdoor.schedules import SRLambdaSchedule


class CESRLoss(LossModule):
    """CE+SR with ``lam(t) = lam * rho^floor((t - 1) / r)``; ``current_values() = {"lam"}``."""

    def __init__(self, num_classes: int, hparams: Mapping[str, Any]) -> None:
        super().__init__("ce_sr", num_classes, hparams)
        self.schedule = SRLambdaSchedule(self.hparams["lam"], self.hparams["rho"],
                                         self.hparams["r"])
        self._lam = self.schedule.lam(1)

    def set_epoch(self, t: int) -> None:
        lam = self.schedule.lam(t)  # validates t before anything changes
        super().set_epoch(t)
        self._lam = lam

    def current_values(self) -> dict[str, float]:
        return {"lam": self._lam}

    def compute(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.ce_sr(logits, targets, tau=self.hparams["tau"], lam=self._lam,
                       p=self.hparams["p"])


def create_ce_sr(  # every loss factory takes total_epochs and seed
    num_classes: int, hparams: Mapping[str, Any], *, total_epochs: int | None, seed: int  # noqa: ARG001
) -> LossModule:
    return CESRLoss(num_classes, hparams)
