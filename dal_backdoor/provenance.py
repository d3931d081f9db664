"""Where a number came from: git commit, library versions, device, host."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path
from typing import Any, TypedDict

import dal_backdoor


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the checkout this package is imported from ("+dirty" when modified),
    or "unknown" outside a git checkout."""
    repo = Path(dal_backdoor.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def library_versions() -> dict[str, str]:
    import numpy
    import torch
    import torchvision

    return {
        "dal_backdoor": dal_backdoor.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "cuda": torch.version.cuda or "none",
        "cudnn": str(torch.backends.cudnn.version()),
    }


def device_name(device: Any) -> str:
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


class Provenance(TypedDict):
    """Where a run's numbers came from (config.json and the results store record it)."""

    git_commit: str
    versions: dict[str, str]
    device_name: str
    host: str


def provenance(device: Any = "cpu", *, probe: bool = True) -> Provenance:
    """The provenance of work done on ``device`` in this process. ``probe=False`` names the
    device without querying it (for a process that never ran the work, e.g. a sweep driver
    recording a worker that died: it must not initialise CUDA)."""
    name = device_name(device) if probe else f"{device} (not probed)"
    return Provenance(git_commit=git_commit(), versions=library_versions(), device_name=name,
                      host=platform.node())
