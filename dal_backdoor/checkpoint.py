"""Full-state checkpoints, written atomically and read with ``weights_only=True``.

A checkpoint holds everything a run needs to continue bit-for-bit (on CPU): model, optimizer,
LR scheduler, loss state (schedule epoch, NLNL's generator), loader generator, global RNG
states, the epoch just finished, the metric history so far, and the run id (the config hash).
A run killed at any moment resumes from the last complete checkpoint.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from dal_backdoor.errors import CheckpointError
from dal_backdoor.io import atomic_write_with

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Serialise ``state`` (tensors, dicts, lists, numbers, str) and replace ``path`` atomically."""
    payload = {"format_version": FORMAT_VERSION, **state}
    atomic_write_with(path, lambda fh: torch.save(payload, fh))


def load_checkpoint(path: str | Path, *, expected_run_id: str | None = None,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely; corrupt, foreign or other-config files raise CheckpointError."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError,
            zipfile.BadZipFile) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({reason}); "
                              "delete it to start the run again") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not a dal-backdoor checkpoint (format version "
                              f"{FORMAT_VERSION} expected)")
    if expected_run_id is not None and state.get("run_id") != expected_run_id:
        raise CheckpointError(
            f"checkpoint {path} belongs to run {state.get('run_id')!r}, not to the requested "
            f"config (run {expected_run_id}); use another --out directory or the same config"
        )
    return state


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
