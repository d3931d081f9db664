"""Everything a run needs to continue bit-for-bit, as one object with one state dict.

``TrainingState`` bundles the model, optimiser, LR scheduler, loss, loader, the epoch just
finished and the metric history, and takes the global RNG states with it (as Lightning Fabric's
state dict does). ``state_dict()`` lists the checkpoint's keys once; ``load_state_dict()``
restores them in the same order and translates any mismatch into one ``CheckpointError``.
``save``/``load`` go through ``dal_backdoor.checkpoint`` (atomic write, ``weights_only`` read).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dal_backdoor.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from dal_backdoor.data.loader import DeviceLoader
from dal_backdoor.errors import CheckpointError
from dal_backdoor.losses.base import LossModule

#: The checkpoint's keys (besides ``format_version``, which ``save_checkpoint`` adds).
STATE_KEYS = ("run_id", "epoch", "history", "model", "optimizer", "scheduler", "loss", "loader",
              "rng")


@dataclass
class TrainingState:
    """The live training objects of one run plus its progress (``epoch`` 0: nothing trained)."""

    run_id: str
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loss: LossModule
    loader: DeviceLoader
    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def state_dict(self) -> dict[str, Any]:
        """Model, optimiser, scheduler, loss, loader and RNG states, epoch and history."""
        return {
            "run_id": self.run_id, "epoch": self.epoch, "history": self.history,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "loss": self.loss.state_dict(),
            "loader": self.loader.state_dict(), "rng": rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any], source: str | Path = "the checkpoint"
                        ) -> None:
        """Restore every part; a state that does not fit is one CheckpointError naming
        ``source``. The global RNG states are restored last."""
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.loss.load_state_dict(state["loss"])
            self.loader.load_state_dict(state["loader"])
            set_rng_state(state["rng"])
            history, epoch = list(state["history"]), int(state["epoch"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(f"checkpoint {source} does not fit this run "
                                  f"({' '.join(str(exc).split())[:160]}); delete it to start "
                                  "again") from None
        self.history, self.epoch = history, epoch

    def save(self, path: str | Path) -> None:
        """Write the state dict to ``path`` atomically."""
        save_checkpoint(path, self.state_dict())

    @staticmethod
    def read(path: str | Path, run_id: str) -> dict[str, Any]:
        """A checkpoint's state dict, checked to be intact and to belong to ``run_id``."""
        return load_checkpoint(path, expected_run_id=run_id)
