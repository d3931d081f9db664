"""The paper's own losses: DGCE (GCE with q(t) growing linearly) and DAL (DGCE + bootstrapping).

Li et al., "Dynamics-Aware Loss for Learning with Label Noise", Section 3.3 and Algorithm 1.
Both need T (``total_epochs``) for the schedule in ``dal_backdoor.schedules.DALSchedule``,
whose ``convention`` ("paper": Algorithm 1; "reference": the authors' code, epoch index
t - 1) is a hyper-parameter, as is DAL's ``bootstrap`` term ("max": -log max_k p_k, the
paper's Eq. 13; "entropy": the prediction entropy of the authors' later code). Defaults are
Table 1's CIFAR-10 column (q_start 0.8, q_end 1.5, lambda_end 1.0), convention "paper",
bootstrap "max".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from dal_backdoor.losses import functional as F
from dal_backdoor.losses.base import LossModule
from dal_backdoor.schedules import DALSchedule


class DALLoss(LossModule):
    """DAL (``lambda_end`` > 0 or = 0) following a ``DALSchedule``; also serves DGCE.

    ``current_values()`` is ``{"q": q(t), "lam": lam(t)}`` for DAL and ``{"q": q(t)}`` for
    DGCE. ``set_epoch(t)`` accepts t = 1..T only (ConfigError otherwise).
    """

    def __init__(
        self, name: str, num_classes: int, hparams: Mapping[str, Any], total_epochs: int
    ) -> None:
        super().__init__(name, num_classes, hparams)
        self.total_epochs = int(total_epochs)
        self.bootstrap = self.hparams.get("bootstrap", "max")
        self.schedule = DALSchedule(
            q_start=self.hparams["q_start"], q_end=self.hparams["q_end"],
            lambda_end=self.hparams.get("lambda_end", 0.0), total_epochs=self.total_epochs,
            convention=self.hparams["convention"],
        )
        self._values = self.schedule.values(1)

    def set_epoch(self, t: int) -> None:
        values = self.schedule.values(t)  # validates 1 <= t <= T before anything changes
        super().set_epoch(t)
        self._values = values

    def current_values(self) -> dict[str, float]:
        if self.name == "dgce":
            return {"q": self._values["q"]}
        return dict(self._values)

    def compute(self, logits: Tensor, targets: Tensor) -> Tensor:
        q, lam = self._values["q"], self._values["lam"]
        if self.name == "dgce" or lam == 0.0:
            return F.gce(logits, targets, q=q)
        return F.dal(logits, targets, q=q, lam=lam, bootstrap=self.bootstrap)


def create_dgce(  # every loss factory takes total_epochs and seed
    num_classes: int, hparams: Mapping[str, Any], *, total_epochs: int | None, seed: int  # noqa: ARG001
) -> LossModule:
    return DALLoss("dgce", num_classes, hparams, total_epochs=int(total_epochs or 0))


def create_dal(  # every loss factory takes total_epochs and seed
    num_classes: int, hparams: Mapping[str, Any], *, total_epochs: int | None, seed: int  # noqa: ARG001
) -> LossModule:
    return DALLoss("dal", num_classes, hparams, total_epochs=int(total_epochs or 0))
