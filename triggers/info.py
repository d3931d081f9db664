"""What describes a trigger without building it (torch-free): ``TriggerParam``, ``TriggerInfo``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The threat model of the paper's (BadNets-style) attacks.
DIRTY_LABEL = ("dirty-label: poisoned training images (drawn from the other classes) get the "
               "trigger and the target label")


@dataclass(frozen=True)
class TriggerParam:
    """One parameter of a trigger: its name, default (as shown to users) and meaning."""

    name: str
    default: Any
    help: str


@dataclass(frozen=True)
class TriggerInfo:
    """What ``dal-backdoor triggers`` shows: name, one-line summary and parameters.

    ``params`` lists every keyword argument of the trigger class after ``image_size`` and
    ``channels``, in order (checked when the class is loaded).
    """

    name: str
    summary: str
    params: tuple[TriggerParam, ...] = ()
    #: Which images are poisoned and how they are labelled (``dal-backdoor triggers``, manifest).
    threat_model: str = DIRTY_LABEL
    #: Machine-readable threat model, read by the poisoner: ``False`` (dirty-label) poisons images
    #: of the other classes and relabels them to the target; ``True`` (clean-label) poisons
    #: images of the target class and keeps their labels (the ASR set then also excludes the
    #: target class).
    clean_label: bool = False
    #: WaNet's noise mode: the trigger has ``warp_with_noise`` and accepts ``cross_ratio`` > 0.
    noise_mode: bool = False

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)
