"""Hardware fast paths: which precision and memory format a device runs best, and autocast.

``auto`` choices are measured rules, not guesses (numbers in ``docs/BENCHMARKS.md``):

* **precision** -- bf16 autocast on CUDA GPUs with native bf16; fp32 (as the paper trains)
  everywhere else, *including* CPUs with AMX / AVX512-BF16. There bf16 is an opt-in
  (``precision="bf16"``): a ResNet18 training step ran 2.7-3.3x faster, but in the 6-epoch ``ci``
  Table 6 setting it lowered CE's attack success rate from 95.8+-2.5 to 79.0+-12.1 (3 seeds; clean
  accuracy unchanged), i.e. it changes the quantity this tool measures when schedules are short.
  Weights, optimiser state and the loss stay fp32 under autocast.
* **channels_last** -- always on CUDA. On the CPU only from base width 16 up: at width 16 and 64
  it was 1.1-1.25x faster, at width 8 (the ``small`` preset) 0.6-0.8x as fast.

``compile_model`` is the opt-in ``torch.compile`` path (``--compile``): every frame that fails to
compile (no C++ compiler, an unsupported op) runs eagerly instead, before any of it has run, so a
failed compilation costs time but never changes a result.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import torch
from torch import nn

#: Smallest base width for which channels_last pays off on the CPU (measured; see module doc).
CPU_CHANNELS_LAST_MIN_WIDTH = 16


@functools.cache
def native_bf16(device: str) -> bool:
    """Whether ``device`` ("cpu" or "cuda") computes bf16 natively (not by emulation)."""
    if device == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device == "cpu":
        try:
            return bool(torch.backends.mkldnn.is_available()
                        and torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a build without the oneDNN probe
            return False
    return False


def auto_precision(device: str) -> str:
    """``"bf16"`` on a CUDA device with native bf16, else ``"fp32"`` (see the module doc)."""
    return "bf16" if device == "cuda" and native_bf16(device) else "fp32"


def auto_channels_last(device: str, width: int) -> bool:
    """channels_last on CUDA always; on the CPU from ``CPU_CHANNELS_LAST_MIN_WIDTH`` up."""
    return device == "cuda" or width >= CPU_CHANNELS_LAST_MIN_WIDTH


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a resolved precision (None: no autocast)."""
    return torch.bfloat16 if precision == "bf16" else None


def autocast(device: str | torch.device,
             dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    """``torch.autocast`` on ``device`` for ``dtype``, or a no-op context when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    device_type = device.type if isinstance(device, torch.device) else str(device).split(":")[0]
    return torch.autocast(device_type=device_type, dtype=dtype)


class CompiledModule(nn.Module):
    """``torch.compile(model)`` with dynamo's per-frame eager fallback switched on for its calls
    (the setting is scoped to this module's forward, not changed for the process).

    Train/eval mode and parameters are the wrapped model's; save ``model``, not this wrapper.
    """

    def __init__(self, model: nn.Module, backend: str | Any = "inductor") -> None:
        super().__init__()
        self.compiled = torch.compile(model, backend=backend)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        import torch._dynamo

        with torch._dynamo.config.patch(suppress_errors=True):
            return self.compiled(*args, **kwargs)


def compile_model(model: nn.Module, backend: str | Any = "inductor") -> nn.Module:
    """``model`` behind ``torch.compile`` with eager fallback (see ``CompiledModule``)."""
    return CompiledModule(model, backend=backend)


__all__ = ["CPU_CHANNELS_LAST_MIN_WIDTH", "CompiledModule", "auto_channels_last",
           "auto_precision", "autocast", "autocast_dtype", "compile_model", "native_bf16"]
