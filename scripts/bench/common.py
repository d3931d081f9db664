"""What the benchmark's modules share: settings, the command line's config, data, device and
FLOP helpers."""

from __future__ import annotations

import gc
import os
import platform
import sys
from dataclasses import dataclass, replace

import torch
from torch import nn

from dal_backdoor.data import create_dataset
from dal_backdoor.data.datasets import ImageDataset
from dal_backdoor.errors import DataNotFoundError
from dal_backdoor.models import create_model

try:  # Unix only; without it the CPU memory column reads "n/a"
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]

# -- fixed settings -------------------------------------------------------------------------------

NUM_CLASSES = 10
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
MODEL_SEED = 0  # the FLOP count's model (the pipelines build theirs from a RunConfig)
DATA_SEED = 0
DAL_TOTAL_EPOCHS = 150  # the paper's schedule length; the benchmark sits at epoch 1
REF_EVAL_BATCH = 128

#: Training FLOPs (forward + backward) per image of the CIFAR ResNet18, width 64, 32x32 input.
TRAIN_GFLOP_PER_IMAGE = 3.33
#: Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s. A GPU matches the first entry whose
#: substrings all occur in its name; None means "known but not in this table" (no share shown).
BF16_DENSE_PEAK_TFLOPS: tuple[tuple[tuple[str, ...], float | None], ...] = (
    (("H100", "PCIe"), 756.0),
    (("H100", "NVL"), None),  # other clocks and power limit than the SXM part
    (("H100",), 989.0),  # SXM
    (("H200",), 989.0),
    (("A100",), 312.0),
)

TARGET_CPU_RATIO = 1.3
TARGET_GPU_RATIO = 3.0
TARGET_GPU_PEAK_SHARE = 0.30

#: The paper's Table 6 sweep, for the wall-time projection of the concurrent mode.
SWEEP_RUNS = 36
SWEEP_EPOCHS = 150
SWEEP_TRAIN_IMAGES = 50_000
SWEEP_TEST_IMAGES = 10_000
SWEEP_EVAL_PASSES = 2  # clean and triggered test set after every epoch


# -- the command line ---------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchConfig:
    """The resolved command line (picklable: the concurrent workers receive it)."""

    mode: str
    device: str
    root: str
    synthetic: bool
    num_images: int
    eval_images: int
    batch_size: int
    eval_batch_size: int
    width: int
    loss: str
    warmup_steps: int
    steps: int | None
    workers: int
    threads: int | None
    concurrency: tuple[int, ...]
    channels_last: bool
    precision: str
    compile: bool
    check_flops: bool
    json: str | None

    def timed_steps(self) -> int:
        """``--steps``, or one epoch's worth of full batches."""
        return self.steps if self.steps is not None else self.num_images // self.batch_size


def load_data(root: str, num_images: int, *, synthetic: bool) -> ImageDataset:
    """The first ``num_images`` CIFAR-10 training images, or seeded synthetic CIFAR-shaped data.

    The data set's ``name`` says where the images came from (printed and saved with the numbers).
    """
    if synthetic:
        reason = "--synthetic"
    else:
        try:
            train = create_dataset("cifar10", root, train=True)
        except DataNotFoundError:
            reason = f"CIFAR-10 not found under {root!r}"
        else:
            n = min(num_images, len(train))
            source = f"CIFAR-10 training images from {root!r}"
            if n < num_images:
                source += f" (only {len(train)} exist: using {n})"
            return replace(train.subset(torch.arange(n)), name=source)
    generator = torch.Generator().manual_seed(DATA_SEED)
    images = torch.randint(0, 256, (num_images, 3, 32, 32), dtype=torch.uint8,
                           generator=generator)
    labels = torch.randint(0, NUM_CLASSES, (num_images,), dtype=torch.int64, generator=generator)
    return ImageDataset(f"synthetic CIFAR-shaped uint8, seed {DATA_SEED} ({reason})", images,
                        labels, tuple(f"class{i}" for i in range(NUM_CLASSES)), CIFAR_MEAN,
                        CIFAR_STD)


# -- device helpers -------------------------------------------------------------------------------

def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work (no-op on the CPU), so a clock read covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def release_memory(device: torch.device) -> None:
    """Collect garbage, return cached CUDA blocks and reset CUDA's peak statistics."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def max_rss_mib() -> float | None:
    """This process's peak resident set size so far (MiB), or None where unavailable."""
    if resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB


def peak_memory_mib(device: torch.device) -> float | None:
    """CUDA: peak allocated since the last reset; CPU: the process's peak RSS so far."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return max_rss_mib()


def usable_cpus() -> int:
    """CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine() or "unknown"
    return (f"CPU ({name}, {torch.get_num_threads()} torch threads, "
            f"{usable_cpus()} cores usable)")


def bf16_peak_tflops(device: torch.device) -> float | None:
    """Dense bf16 peak of a CUDA device from ``BF16_DENSE_PEAK_TFLOPS``; None if unknown."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for parts, peak in BF16_DENSE_PEAK_TFLOPS:
        if all(part in name for part in parts):
            return peak
    return None


def nominal_train_gflop_per_image(width: int, image_size: tuple[int, int]) -> float:
    """3.33 GFLOP at width 64 and 32x32, scaled by (width/64)^2 and by H*W/(32*32)."""
    height, wide = image_size
    return TRAIN_GFLOP_PER_IMAGE * (width / 64) ** 2 * (height * wide) / (32 * 32)


def measured_train_gflop_per_image(width: int, image_size: tuple[int, int],
                                   in_channels: int = 3) -> float:
    """FLOPs of one forward + backward pass of batch 1 counted by ``FlopCounterMode`` (GFLOP)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = create_model("resnet18", NUM_CLASSES, in_channels=in_channels, width=width,
                         seed=MODEL_SEED)
    model.train()
    x = torch.randn(1, in_channels, *image_size, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(1, dtype=torch.int64)
    with FlopCounterMode(display=False) as counter:
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
    return counter.get_total_flops() / 1e9


