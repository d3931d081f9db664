#!/usr/bin/env python
"""Training and evaluation throughput of our pipeline next to a reference-style pipeline.

This is a measuring tool, not a test: it prints throughputs and their ratios and asserts nothing
(the closing verdict line only compares the numbers with the project's targets).

Mode ``compare`` (the default)
------------------------------
Two pipelines run one after the other in this process, on the same device, with the same model
(the CIFAR ResNet18 of ``dal_backdoor.models`` with base width ``--width``, built from the same
seed), the same batch size, the same images and the same SGD hyper-parameters:

* **ours**: the project's training path. The whole uint8 data set lives on the device in a
  ``DeviceLoader``, which performs the random crop (4 pixels of zero padding) and the horizontal
  flip as batched tensor ops; ``dal_backdoor.train.train_one_epoch`` trains and keeps its loss and
  accuracy sums on the device (one host synchronisation per call). Precision and memory format
  are resolved as the trainer resolves them (``dal_backdoor.accel``): ``--precision auto`` is bf16
  autocast on CUDA and fp32 on the CPU, ``--precision bf16`` also runs the CPU in bf16 (fast on
  CPUs with AMX); channels-last is on for CUDA and, on the CPU, from width 16 up. CUDA adds fused
  SGD; ``--compile`` wraps the model as ``dal-backdoor train --compile`` does
  (``accel.compile_model``: frames that fail to compile run eagerly; if even that fails, a note
  is printed and the eager model is used). Evaluation is
  ``dal_backdoor.evaluate.predict`` with batches of ``--eval-batch-size`` (same precision), called
  on CPU-resident images exactly as the trainer's per-epoch evaluation calls it. ``--loss dal``
  trains ours with the DAL loss (at epoch 1 of 150) instead of cross-entropy.
* **reference**: the way the DAL authors' code (like most CIFAR code descending from
  ``kuangliu/pytorch-cifar``) trains. A ``Dataset`` of PIL images (converted once from the same
  uint8 tensors) whose ``__getitem__`` applies ``RandomCrop(size, padding=4)``,
  ``RandomHorizontalFlip()``, ``ToTensor()`` and ``Normalize(mean, std)``; a ``DataLoader`` with
  ``--workers`` worker processes (persistent, pinned memory on CUDA); an fp32 model in the default
  memory format (PyTorch's defaults, so cuDNN may run its convolutions in TF32 on Ampere and
  newer GPUs, as in the authors' runs); plain SGD; cross-entropy; and ``loss.item()`` plus an
  accuracy ``.item()`` after every step (two host synchronisations per step). Evaluation runs
  ``ToTensor()`` + ``Normalize()`` through a ``DataLoader`` with batches of 128 in fp32 under
  ``torch.no_grad()``; as in the authors' test loop its workers are not persistent, so each pass
  starts them.

How it is timed: each pipeline first trains ``--warmup-steps`` untimed steps (cuDNN autotuning,
``torch.compile``, worker start-up, allocator growth), then ``--steps`` timed steps drawn from the
same continuing batch stream (default: one epoch's worth, ``--num-images // --batch-size``
steps). Every step is a full batch (``drop_last``), so both pipelines do the same work per step.
CUDA is synchronised before every clock read. Evaluation is timed over one pass over the first
``--eval-images`` images, after an untimed forward pass on one batch. Reported per pipeline:
training and evaluation images/s, peak memory, and (from a nominal FLOP count) achieved training
TFLOP/s; then the ratios ours/reference. Peak memory on CUDA is ``max_memory_allocated`` with the
peak statistics reset between the pipelines. On the CPU it is the process's peak RSS from
``getrusage``, a high-water mark that never goes down: ours runs first, so its number is its own
peak, while the reference's is the larger of both (its worker processes are not included).

FLOPs: one training step (forward + backward) of the CIFAR ResNet18 at 32x32 and width 64 costs
about 3.33 GFLOP per image (3 x 1.11 GFLOP forward); other widths scale it by (width/64)^2, other
image sizes by H*W/(32*32). ``--check-flops`` counts one training step of batch 1 with
``torch.utils.flop_counter.FlopCounterMode``, prints the number next to the nominal one and exits.
On CUDA the achieved TFLOP/s is compared with the dense bf16 peak of the GPU, when the GPU is in
the small table below.

Mode ``concurrent``
-------------------
Aggregate training throughput of K independent copies of our pipeline sharing one device, for
each K in ``--concurrency``: K processes (``spawn``) each load the data, build the pipeline and
warm up, wait at a common barrier, then train ``--steps`` timed steps. The aggregate throughput is
all images trained divided by the time from the first start to the last finish. On the CPU each
process gets ``max(1, cores // K)`` torch threads (``cores``: ``--threads`` if given, else the
cores this process may use). From the best aggregate throughput (and a single-process evaluation
throughput measured afterwards) it projects the wall time of the paper's Table 6 sweep: 36 runs x
150 epochs x 50,000 training images, plus two evaluation passes (clean and triggered) over the
10,000 test images after every epoch.

CPU timings need an otherwise idle machine: when other jobs occupy the cores, torch's OpenMP
threads wait on each other and a step can take ten times longer, at random. On a shared machine
pass ``--threads`` below the number of idle cores.

Data: the first ``--num-images`` CIFAR-10 training images when ``create_dataset("cifar10", root)``
finds them under ``--root``, otherwise (or with ``--synthetic``) seeded random CIFAR-shaped uint8
images with random labels; the output says which.

Examples::

    python scripts/bench_epoch.py --device cuda --compile --json bench.json
    python scripts/bench_epoch.py --device cpu --num-images 512 --width 8 --warmup-steps 1 \\
        --steps 3 --workers 1
    python scripts/bench_epoch.py --mode concurrent --concurrency 1,2,4,8 --steps 50
    python scripts/bench_epoch.py --check-flops --width 64
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import multiprocessing as mp
import os
import platform
import queue as queue_module
import sys
import time
import traceback
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol, TypeVar

import torch
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from dal_backdoor.accel import auto_channels_last, autocast, autocast_dtype, compile_model
from dal_backdoor.config import PRECISIONS, resolve_precision
from dal_backdoor.data import create_dataset
from dal_backdoor.data.datasets import ImageDataset
from dal_backdoor.data.loader import DeviceLoader
from dal_backdoor.errors import DataNotFoundError
from dal_backdoor.evaluate import predict
from dal_backdoor.io import atomic_write_text
from dal_backdoor.losses import create_loss
from dal_backdoor.models import create_model
from dal_backdoor.store import to_jsonable
from dal_backdoor.train import train_one_epoch

try:  # Unix only; without it the CPU memory column reads "n/a"
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]

T = TypeVar("T")

# -- fixed settings -------------------------------------------------------------------------------

NUM_CLASSES = 10
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
MODEL_SEED = 0
DATA_SEED = 0
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 1e-4
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


# -- configuration --------------------------------------------------------------------------------

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


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got {text!r}")
    return values


def parse_args(argv: Sequence[str] | None = None) -> BenchConfig:
    """Parse the command line into a ``BenchConfig`` (device and defaults resolved)."""
    parser = argparse.ArgumentParser(
        description="Training/eval throughput of our pipeline vs a reference-style pipeline.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--root", default="data", help="where CIFAR-10 is looked for")
    parser.add_argument("--synthetic", action="store_true",
                        help="use synthetic CIFAR-shaped data even if CIFAR-10 is there")
    parser.add_argument("--num-images", type=_positive_int, default=50_000,
                        help="training images (at most the 50,000 of CIFAR-10)")
    parser.add_argument("--eval-images", type=_positive_int, default=10_000,
                        help="images per evaluation pass (at most --num-images)")
    parser.add_argument("--batch-size", type=_positive_int, default=128)
    parser.add_argument("--eval-batch-size", type=_positive_int, default=1000,
                        help=f"our evaluation batch (the reference uses {REF_EVAL_BATCH})")
    parser.add_argument("--width", type=_positive_int, default=64,
                        help="ResNet18 base width (64 is the paper's model)")
    parser.add_argument("--loss", choices=("ce", "dal"), default="ce",
                        help="our training loss (the reference always uses cross-entropy)")
    parser.add_argument("--warmup-steps", type=_non_negative_int, default=10)
    parser.add_argument("--steps", type=_positive_int, default=None,
                        help="timed training steps (default: one epoch over --num-images)")
    parser.add_argument("--workers", type=_non_negative_int, default=2,
                        help="DataLoader worker processes of the reference pipeline")
    parser.add_argument("--threads", type=_positive_int, default=None,
                        help="torch CPU threads (default: torch's choice); on a CPU shared with "
                             "other jobs use fewer threads than cores, or timings collapse")
    parser.add_argument("--mode", choices=("compare", "concurrent"), default="compare")
    parser.add_argument("--concurrency", type=_int_list, default=(1, 2, 4, 8),
                        help="comma-separated numbers of concurrent runs (concurrent mode)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="our memory format (default: as the trainer, on for CUDA and on the "
                             "CPU from width 16)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="ours: auto is bf16 autocast on CUDA and fp32 on the CPU, as in the "
                             "trainer; the reference is always fp32")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile our model (falls back to eager on failure)")
    parser.add_argument("--check-flops", action="store_true",
                        help="count the FLOPs of one training step of batch 1, print, exit")
    parser.add_argument("--json", metavar="OUT", default=None, help="also write all numbers here")
    args = parser.parse_args(argv)

    if args.device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    else:
        device = args.device
    channels_last = (auto_channels_last(device, args.width) if args.channels_last is None
                     else args.channels_last)
    return BenchConfig(
        mode=args.mode, device=device, root=args.root, synthetic=args.synthetic,
        num_images=args.num_images, eval_images=min(args.eval_images, args.num_images),
        batch_size=args.batch_size, eval_batch_size=args.eval_batch_size, width=args.width,
        loss=args.loss, warmup_steps=args.warmup_steps, steps=args.steps, workers=args.workers,
        threads=args.threads, concurrency=tuple(args.concurrency), channels_last=channels_last,
        precision=resolve_precision(args.precision, device), compile=args.compile,
        check_flops=args.check_flops, json=args.json,
    )


# -- data -----------------------------------------------------------------------------------------

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


def endless(batches: Iterable[T]) -> Generator[T, None, None]:
    """Epoch after epoch of ``batches`` (each ``iter()`` is a new epoch); never ends.

    ``batches`` must yield at least one item per epoch (guaranteed here: N >= batch size).
    """
    while True:
        yield from batches


class StepLoader:
    """``steps`` batches taken from a shared endless stream, shaped for ``train_one_epoch``.

    ``train_one_epoch`` needs ``len()``, iteration and ``.device`` of its loader; drawing from
    one continuing stream lets the warm-up and the timed steps follow each other without an
    epoch restart in between. ``images`` counts the samples handed out.
    """

    def __init__(self, stream: Iterator[tuple[Tensor, ...]], steps: int,
                 device: torch.device) -> None:
        self.stream, self.steps, self.device = stream, steps, device
        self.images = 0

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        for _ in range(self.steps):
            batch = next(self.stream)
            self.images += int(batch[1].shape[0])
            yield batch


class PilImages(Dataset):
    """A torchvision-style data set: PIL images and int labels, ``transform`` per item."""

    def __init__(self, images: Sequence[Image.Image], labels: Sequence[int],
                 transform: Callable[[Image.Image], Tensor]) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.transform(self.images[index]), self.labels[index]


def to_pil_images(images: Tensor) -> list[Image.Image]:
    """uint8 (N, C, H, W) -> N PIL images (RGB for 3 channels, L for 1)."""
    arrays = images.permute(0, 2, 3, 1).contiguous().numpy()
    if arrays.shape[-1] == 1:
        arrays = arrays[..., 0]
    return [Image.fromarray(array) for array in arrays]


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


# -- the two pipelines ----------------------------------------------------------------------------

class Pipeline(Protocol):
    """What the timing code needs of a pipeline."""

    notes: list[str]

    def warm_up(self, steps: int) -> None: ...

    def train(self, steps: int) -> int: ...

    def warm_up_eval(self) -> None: ...

    def evaluate(self) -> int: ...

    def close(self) -> None: ...


def _build_model(data: ImageDataset, width: int, device: torch.device) -> nn.Module:
    model = create_model("resnet18", NUM_CLASSES, in_channels=data.channels, width=width,
                         seed=MODEL_SEED)
    return model.to(device)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


class OurPipeline:
    """The project's training and evaluation path (see the module docstring)."""

    def __init__(self, data: ImageDataset, cfg: BenchConfig, device: torch.device) -> None:
        cuda = device.type == "cuda"
        self.cfg, self.device = cfg, device
        self.notes: list[str] = []
        self.model = _build_model(data, cfg.width, device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.net: nn.Module = self.model  # what trains: the model or its torch.compile wrapper
        self.eval_net: nn.Module = self.model
        extra: dict[str, Any] = {"fused": True} if cuda else {}
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM,
                                         weight_decay=WEIGHT_DECAY, **extra)
        if cfg.loss == "dal":
            loss_fn = create_loss("dal", NUM_CLASSES, total_epochs=DAL_TOTAL_EPOCHS)
            loss_fn.set_epoch(1)
        else:
            loss_fn = create_loss("ce", NUM_CLASSES)
        self.loss_fn = loss_fn.to(device)
        loader = DeviceLoader(data.images, data.labels, batch_size=cfg.batch_size,
                              mean=data.mean, std=data.std, device=device, augment=True,
                              shuffle=True, seed=DATA_SEED, channels_last=cfg.channels_last,
                              drop_last=True)
        self.stream = endless(loader)
        self.groups = torch.zeros(len(data), dtype=torch.int64, device=device)  # all "clean"
        self.autocast_dtype = autocast_dtype(cfg.precision)
        self.eval_images = data.images[:cfg.eval_images]  # on the CPU, as the trainer has them
        self.mean, self.std = data.mean, data.std
        self._compile_pending = cfg.compile

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        return autocast(self.device, self.autocast_dtype)

    def _train_with(self, net: nn.Module, steps: int) -> int:
        if steps <= 0:
            return 0
        loader: Any = StepLoader(self.stream, steps, self.device)  # duck-types a DeviceLoader
        train_one_epoch(net, loader, self.loss_fn, self.optimizer, self.groups,
                        autocast=self._autocast)
        return loader.images

    def _predict(self, net: nn.Module, images: Tensor) -> Tensor:
        return predict(net, images, mean=self.mean, std=self.std,
                       batch_size=self.cfg.eval_batch_size, device=self.device,
                       channels_last=self.cfg.channels_last, autocast_dtype=self.autocast_dtype)

    def _fallback(self, what: str, exc: Exception) -> None:
        note = f"torch.compile failed for {what} ({_first_line(exc)}); ran eager"
        print(f"note: {note}", flush=True)
        self.notes.append(note)

    def warm_up(self, steps: int) -> None:
        """Untimed steps; with ``--compile`` the first one compiles (or falls back to eager)."""
        if self._compile_pending:
            self._compile_pending = False
            try:
                compiled = compile_model(self.model)  # the trainer's --compile path
                self._train_with(compiled, 1)  # compiling is lazy: errors surface here
            except Exception as exc:
                self._fallback("training", exc)
                self._train_with(self.model, 1)
            else:
                self.net = self.eval_net = compiled
            steps -= 1
        self._train_with(self.net, steps)

    def train(self, steps: int) -> int:
        return self._train_with(self.net, steps)

    def warm_up_eval(self) -> None:
        head = self.eval_images[:self.cfg.eval_batch_size]
        if self.eval_net is not self.model:
            try:
                self._predict(self.eval_net, head)
                return
            except Exception as exc:
                self._fallback("evaluation", exc)
                self.eval_net = self.model
        self._predict(self.eval_net, head)

    def evaluate(self) -> int:
        return int(self._predict(self.eval_net, self.eval_images).shape[0])

    def close(self) -> None:
        self.stream.close()


class ReferencePipeline:
    """A reference-style pipeline like the DAL authors' code (see the module docstring)."""

    def __init__(self, data: ImageDataset, cfg: BenchConfig, device: torch.device,
                 pil_images: Sequence[Image.Image]) -> None:
        cuda = device.type == "cuda"
        self.device = device
        self.notes: list[str] = []
        normalize = transforms.Normalize(data.mean, data.std)
        train_transform = transforms.Compose([
            transforms.RandomCrop(data.image_size, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            normalize,
        ])
        eval_transform = transforms.Compose([transforms.ToTensor(), normalize])
        labels = data.labels.tolist()
        self.train_loader = DataLoader(
            PilImages(pil_images, labels, train_transform), batch_size=cfg.batch_size,
            shuffle=True, drop_last=True, num_workers=cfg.workers, pin_memory=cuda,
            persistent_workers=cfg.workers > 0, generator=torch.Generator().manual_seed(DATA_SEED),
        )
        n_eval = cfg.eval_images
        self.eval_set = PilImages(pil_images[:n_eval], labels[:n_eval], eval_transform)
        self.eval_loader = DataLoader(self.eval_set, batch_size=REF_EVAL_BATCH, shuffle=False,
                                      num_workers=cfg.workers, pin_memory=cuda)
        self.stream = endless(self.train_loader)
        self.model = _build_model(data, cfg.width, device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM,
                                         weight_decay=WEIGHT_DECAY)
        self.loss_fn = nn.CrossEntropyLoss()
        self.loss_sum, self.correct = 0.0, 0

    def train(self, steps: int) -> int:
        """The authors' loop: per-step ``.item()`` for the running loss and accuracy."""
        self.model.train()
        images = 0
        for _ in range(steps):
            x, y = next(self.stream)
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            logits = self.model(x)
            loss = self.loss_fn(logits, y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.loss_sum += loss.item()
            self.correct += logits.argmax(dim=1).eq(y).sum().item()
            images += int(y.shape[0])
        return images

    def warm_up(self, steps: int) -> None:
        self.train(steps)

    def warm_up_eval(self) -> None:
        """One forward pass on one batch, built in-process (the workers start in the timed pass,
        as they do for every evaluation in the authors' code)."""
        count = min(REF_EVAL_BATCH, len(self.eval_set))
        x = torch.stack([self.eval_set[i][0] for i in range(count)]).to(self.device)
        self.model.eval()
        with torch.no_grad():
            self.model(x)

    def evaluate(self) -> int:
        self.model.eval()
        images = correct = 0
        with torch.no_grad():
            for x, y in self.eval_loader:
                x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
                correct += self.model(x).argmax(dim=1).eq(y).sum().item()
                images += int(y.shape[0])
        return images

    def close(self) -> None:
        """Stop the persistent workers (they exit when the loader's iterator is collected)."""
        self.stream.close()
        del self.stream, self.train_loader, self.eval_loader
        gc.collect()


# -- measurements ---------------------------------------------------------------------------------

@dataclass
class PipelineResult:
    """Throughput and memory of one pipeline."""

    name: str
    train_images: int
    train_seconds: float
    eval_images: int
    eval_seconds: float
    peak_memory_mib: float | None
    notes: list[str] = field(default_factory=list)

    @property
    def train_images_per_s(self) -> float:
        return self.train_images / self.train_seconds if self.train_images else float("nan")

    @property
    def eval_images_per_s(self) -> float:
        return self.eval_images / self.eval_seconds

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["train_images_per_s"] = self.train_images_per_s
        out["eval_images_per_s"] = self.eval_images_per_s
        return out


def timed(fn: Callable[[], int], device: torch.device) -> tuple[int, float]:
    """(what ``fn`` returns, its wall time in seconds), CUDA synchronised on both sides."""
    synchronize(device)
    start = time.perf_counter()
    count = fn()
    synchronize(device)
    return count, time.perf_counter() - start


def measure(name: str, pipe: Pipeline, cfg: BenchConfig, device: torch.device) -> PipelineResult:
    """Warm up, time ``cfg.timed_steps()`` training steps, warm up eval, time one eval pass."""
    pipe.warm_up(cfg.warmup_steps)
    train_images, train_seconds = timed(lambda: pipe.train(cfg.timed_steps()), device)
    pipe.warm_up_eval()
    eval_images, eval_seconds = timed(pipe.evaluate, device)
    return PipelineResult(name, train_images, train_seconds, eval_images, eval_seconds,
                          peak_memory_mib(device), list(pipe.notes))


def measure_our_eval(data: ImageDataset, cfg: BenchConfig, device: torch.device) -> PipelineResult:
    """Our evaluation throughput alone (single process, untrained model: same cost)."""
    release_memory(device)
    pipe = OurPipeline(data, cfg, device)
    try:
        pipe.warm_up(1 if cfg.compile else 0)  # compile once, so evaluation can reuse it
        pipe.warm_up_eval()
        eval_images, eval_seconds = timed(pipe.evaluate, device)
        return PipelineResult("ours", 0, float("nan"), eval_images, eval_seconds,
                              peak_memory_mib(device), list(pipe.notes))
    finally:
        pipe.close()
        del pipe
        release_memory(device)


def sweep_projection(train_images_per_s: float, eval_images_per_s: float) -> dict[str, float]:
    """Hours for the Table 6 sweep at the given training and evaluation throughputs."""
    train_images = SWEEP_RUNS * SWEEP_EPOCHS * SWEEP_TRAIN_IMAGES
    eval_images = SWEEP_RUNS * SWEEP_EPOCHS * SWEEP_TEST_IMAGES * SWEEP_EVAL_PASSES
    train_hours = train_images / train_images_per_s / 3600
    eval_hours = eval_images / eval_images_per_s / 3600
    return {"train_images": train_images, "eval_images": eval_images,
            "train_hours": train_hours, "eval_hours": eval_hours,
            "total_hours": train_hours + eval_hours}


def flops_summary(images_per_s: float, gflop_per_image: float,
                  peak: float | None) -> tuple[float, float | None]:
    """(achieved TFLOP/s, share of ``peak`` or None)."""
    tflops = images_per_s * gflop_per_image / 1e3
    return tflops, (tflops / peak if peak else None)


# -- concurrent mode ------------------------------------------------------------------------------

def _concurrent_worker(rank: int, cfg: BenchConfig, threads: int | None, barrier: Any,
                       results: Any) -> None:
    """One concurrent run: set up and warm up, meet the others at the barrier, train, report."""
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        device = torch.device(cfg.device)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        data = load_data(cfg.root, cfg.num_images, synthetic=cfg.synthetic)
        pipe = OurPipeline(data, cfg, device)
        pipe.warm_up(cfg.warmup_steps)
        synchronize(device)
        barrier.wait()
        start_wall = time.time()
        images, seconds = timed(lambda: pipe.train(cfg.timed_steps()), device)
        results.put({"rank": rank, "ok": True, "images": images, "seconds": seconds,
                     "start": start_wall, "end": time.time(), "notes": pipe.notes})
    except BaseException:
        barrier.abort()  # release the others instead of leaving them at the barrier
        results.put({"rank": rank, "ok": False, "error": traceback.format_exc()})


def run_k_concurrent(cfg: BenchConfig, k: int, threads: int | None) -> dict[str, Any]:
    """Start ``k`` worker processes, collect their reports, and aggregate them."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(k)
    results = ctx.Queue()
    procs = [ctx.Process(target=_concurrent_worker, args=(rank, cfg, threads, barrier, results),
                         daemon=True) for rank in range(k)]
    for proc in procs:
        proc.start()
    reports: dict[int, dict[str, Any]] = {}
    try:
        while len(reports) < k:
            try:
                report = results.get(timeout=1.0)
            except queue_module.Empty:
                for rank, proc in enumerate(procs):  # a crashed worker never reports
                    if rank not in reports and proc.exitcode not in (None, 0):
                        barrier.abort()
                        reports[rank] = {"rank": rank, "ok": False,
                                         "error": f"worker exited with code {proc.exitcode}"}
                continue
            reports[report["rank"]] = report
    finally:
        for proc in procs:
            proc.join(timeout=60)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join()
    failed = [r["error"] for r in reports.values() if not r["ok"]]
    if failed:
        primary = [e for e in failed if "BrokenBarrierError" not in e] or failed
        raise RuntimeError(f"{len(failed)} of {k} concurrent runs failed; first error:\n"
                           + primary[0])
    runs = [reports[rank] for rank in range(k)]
    images = sum(r["images"] for r in runs)
    span = max(r["end"] for r in runs) - min(r["start"] for r in runs)
    per_run = [r["images"] / r["seconds"] for r in runs]
    notes = sorted({note for r in runs for note in r["notes"]})
    return {"k": k, "threads_per_process": threads, "images": images, "span_seconds": span,
            "aggregate_images_per_s": images / span,
            "mean_run_images_per_s": sum(per_run) / k, "slowest_run_seconds":
            max(r["seconds"] for r in runs), "notes": notes}


# -- output ---------------------------------------------------------------------------------------

def fmt(value: float | None, spec: str = ",.1f", suffix: str = "") -> str:
    """``value`` formatted with ``spec``, or "n/a" for None / NaN."""
    if value is None or value != value:
        return "n/a"
    return f"{value:{spec}}{suffix}"


def print_pairs(title: str, pairs: Sequence[tuple[str, str]]) -> None:
    """A title and aligned ``key : value`` lines."""
    print(title)
    width = max(len(key) for key, _ in pairs)
    for key, value in pairs:
        print(f"  {key:<{width}} : {value}")


def print_grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [f"{cells[0]:<{widths[0]}}"]
        parts += [f"{cell:>{w}}" for cell, w in zip(cells[1:], widths[1:], strict=True)]
        return "  " + "   ".join(parts)

    print(line(header))
    print("  " + "-" * (sum(widths) + 3 * (len(widths) - 1)))
    for row in rows:
        print(line(row))


def write_json(path: str, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` as strict JSON (NaN -> null), atomically."""
    text = json.dumps(to_jsonable(payload), indent=2, allow_nan=False) + "\n"
    atomic_write_text(path, text)
    print(f"wrote {path}")


def environment(cfg: BenchConfig, device: torch.device,
                data: ImageDataset | None) -> dict[str, Any]:
    """What the numbers were measured on, for the table header and the JSON file."""
    env: dict[str, Any] = {
        "device": device_description(device), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
        "config": asdict(cfg),
    }
    if data is not None:
        env.update(data=data.name, num_images=len(data), image_size=list(data.image_size))
    return env


def header_pairs(cfg: BenchConfig, env: dict[str, Any], params: int) -> list[tuple[str, str]]:
    steps = cfg.timed_steps()
    return [
        ("device", env["device"]),
        ("torch", env["torch"]),
        ("data", env["data"]),
        ("model", f"resnet18 (CIFAR), width {cfg.width}, {params:,} parameters"),
        ("batch size", f"{cfg.batch_size} (full batches only)"),
        ("training images", f"{env['num_images']:,} in the set; {cfg.warmup_steps} warm-up + "
                            f"{steps} timed steps = {steps * cfg.batch_size:,} timed images"),
        ("evaluation images", f"{cfg.eval_images:,} per pass"),
    ]


def print_header(title: str, cfg: BenchConfig, device: torch.device,
                 data: ImageDataset) -> tuple[dict[str, Any], int]:
    """Print a mode's header; return the environment record and the model's parameter count."""
    env = environment(cfg, device, data)
    params = sum(p.numel() for p in _build_model(data, cfg.width, torch.device("cpu"))
                 .parameters())
    print_pairs(title, header_pairs(cfg, env, params))
    return env, params


def verdict_line(device: torch.device, ratio: float | None, share: float | None) -> str:
    """One line: our training throughput against the project's targets."""
    if ratio is None:
        if device.type == "cuda" and share is not None:
            ok = share >= TARGET_GPU_PEAK_SHARE
            return (f"verdict: {'PASS' if ok else 'FAIL'} (peak share only; the ratio needs "
                    f"--mode compare): {share:.1%} of bf16 peak, target >= "
                    f"{TARGET_GPU_PEAK_SHARE:.0%}")
        return "verdict: not evaluated (the ratio target needs --mode compare)"
    if device.type != "cuda":
        ok = ratio >= TARGET_CPU_RATIO
        return (f"verdict: {'PASS' if ok else 'FAIL'}: CPU training ratio ours/ref "
                f"{ratio:.2f}x, target >= {TARGET_CPU_RATIO:.1f}x")
    ratio_ok = ratio >= TARGET_GPU_RATIO
    if share is None:
        return (f"verdict: {'PASS' if ratio_ok else 'FAIL'} on the ratio only (bf16 peak of this "
                f"GPU unknown): ratio {ratio:.2f}x, target >= {TARGET_GPU_RATIO:.1f}x")
    ok = ratio_ok and share >= TARGET_GPU_PEAK_SHARE
    return (f"verdict: {'PASS' if ok else 'FAIL'}: GPU training ratio ours/ref {ratio:.2f}x "
            f"(target >= {TARGET_GPU_RATIO:.1f}x), {share:.1%} of bf16 peak "
            f"(target >= {TARGET_GPU_PEAK_SHARE:.0%})")


def print_projection(label: str, projection: dict[str, float], train_ips: float,
                     eval_ips: float) -> None:
    print(f"  {label}: {projection['total_hours']:,.1f} h = training "
          f"{projection['train_hours']:,.1f} h ({projection['train_images']:,} images at "
          f"{train_ips:,.0f} img/s) + evaluation {projection['eval_hours']:,.1f} h "
          f"({projection['eval_images']:,} images at {eval_ips:,.0f} img/s)")


SWEEP_ASSUMPTIONS = (
    f"assumes: {SWEEP_RUNS} runs x {SWEEP_EPOCHS} epochs x {SWEEP_TRAIN_IMAGES:,} training "
    f"images; after every epoch {SWEEP_EVAL_PASSES} evaluation passes (clean + triggered) over "
    f"{SWEEP_TEST_IMAGES:,} test images; every image costs what it cost here (same model, width, "
    "batch size, loss); no start-up, checkpoint or logging time"
)


# -- modes ----------------------------------------------------------------------------------------

def run_compare(cfg: BenchConfig, device: torch.device, data: ImageDataset) -> dict[str, Any]:
    """Measure ours, then the reference; print the table; return the numbers."""
    env, params = print_header("bench_epoch: ours vs reference-style pipeline (mode compare)",
                               cfg, device, data)
    extras = (f"{cfg.precision}, channels_last={cfg.channels_last}"
              + (", fused SGD" if device.type == "cuda" else ""))
    print(f"  ours      : DeviceLoader + train_one_epoch, {extras}, "
          f"compile={cfg.compile}, loss={cfg.loss}, eval batch {cfg.eval_batch_size}")
    print(f"  reference : PIL + torchvision transforms, DataLoader workers={cfg.workers}, fp32, "
          f"SGD, CE, .item() per step, eval batch {REF_EVAL_BATCH}")
    rss_start = max_rss_mib()

    release_memory(device)
    print("measuring ours ...", flush=True)
    ours_pipe = OurPipeline(data, cfg, device)
    ours = measure("ours", ours_pipe, cfg, device)
    ours_pipe.close()
    del ours_pipe
    release_memory(device)

    print("measuring reference ...", flush=True)
    start = time.perf_counter()
    pil_images = to_pil_images(data.images)
    pil_seconds = time.perf_counter() - start
    release_memory(device)
    ref_pipe = ReferencePipeline(data, cfg, device, pil_images)
    try:
        ref = measure("reference", ref_pipe, cfg, device)
    finally:
        ref_pipe.close()
        del ref_pipe
        release_memory(device)

    gflop = nominal_train_gflop_per_image(cfg.width, data.image_size)
    peak = bf16_peak_tflops(device)
    ours_tflops, ours_share = flops_summary(ours.train_images_per_s, gflop, peak)
    ref_tflops, ref_share = flops_summary(ref.train_images_per_s, gflop, peak)
    train_ratio = ours.train_images_per_s / ref.train_images_per_s
    eval_ratio = ours.eval_images_per_s / ref.eval_images_per_s
    memory_label = ("peak memory allocated (MiB)" if device.type == "cuda"
                    else "peak RSS so far (MiB) [1]")

    def ratio(a: float | None, b: float | None) -> str:
        return fmt(a / b if a is not None and b else None, ".2f", "x")

    rows = [
        ["train images/s", fmt(ours.train_images_per_s), fmt(ref.train_images_per_s),
         fmt(train_ratio, ".2f", "x")],
        ["train ms/step", fmt(1e3 * ours.train_seconds / max(1, cfg.timed_steps()), ".2f"),
         fmt(1e3 * ref.train_seconds / max(1, cfg.timed_steps()), ".2f"), ""],
        ["eval images/s", fmt(ours.eval_images_per_s), fmt(ref.eval_images_per_s),
         fmt(eval_ratio, ".2f", "x")],
        [memory_label, fmt(ours.peak_memory_mib), fmt(ref.peak_memory_mib),
         ratio(ours.peak_memory_mib, ref.peak_memory_mib)],
        [f"train TFLOP/s [{gflop:.3g} GFLOP/img]", fmt(ours_tflops, ".3f"),
         fmt(ref_tflops, ".3f"), ""],
    ]
    if device.type == "cuda":
        rows.append([f"share of bf16 peak ({fmt(peak, '.0f')} TFLOP/s)",
                     fmt(ours_share, ".1%"), fmt(ref_share, ".1%"), ""])
    print()
    print_grid(["metric", "ours", "reference", "ours/ref"], rows)
    print(f"  reference set-up: PIL conversion of {len(data):,} images took {pil_seconds:.2f} s "
          "(once, untimed)")
    if device.type != "cuda":
        print(f"  [1] process high-water mark (starts at {fmt(rss_start)} MiB after loading the "
              "data; ours ran first; reference workers not included)")
    for note in ours.notes + ref.notes:
        print(f"  note: {note}")

    ours_projection = sweep_projection(ours.train_images_per_s, ours.eval_images_per_s)
    ref_projection = sweep_projection(ref.train_images_per_s, ref.eval_images_per_s)
    print("\nprojected Table 6 sweep, one run at a time (see --mode concurrent for several):")
    print_projection("ours", ours_projection, ours.train_images_per_s, ours.eval_images_per_s)
    print_projection("reference", ref_projection, ref.train_images_per_s, ref.eval_images_per_s)
    print(f"  {SWEEP_ASSUMPTIONS}")
    verdict = verdict_line(device, train_ratio, ours_share)
    print()
    print(verdict)
    return {
        "mode": "compare", **env, "parameters": params, "ours": ours.to_dict(),
        "reference": ref.to_dict(), "reference_pil_conversion_seconds": pil_seconds,
        "ratios": {"train": train_ratio, "eval": eval_ratio},
        "flops": {"nominal_train_gflop_per_image": gflop, "bf16_peak_tflops": peak,
                  "ours_train_tflops": ours_tflops, "ours_peak_share": ours_share,
                  "reference_train_tflops": ref_tflops, "reference_peak_share": ref_share},
        "rss_mib_after_loading": rss_start,
        "projection_hours": {"ours": ours_projection, "reference": ref_projection},
        "verdict": verdict,
    }


def run_concurrent(cfg: BenchConfig, device: torch.device, data: ImageDataset) -> dict[str, Any]:
    """Aggregate throughput of K concurrent runs of our pipeline; print; return the numbers."""
    env, params = print_header(
        "bench_epoch: concurrent runs of our pipeline on one device (mode concurrent)",
        cfg, device, data)
    print(f"  runs      : K in {', '.join(map(str, cfg.concurrency))}; each process spawns, loads "
          "the data, warms up, waits at a barrier, then trains")
    cores = cfg.threads or usable_cpus()
    rows: list[dict[str, Any]] = []
    for k in cfg.concurrency:
        threads = max(1, cores // k) if device.type == "cpu" else None
        print(f"measuring K={k} ...", flush=True)
        rows.append(run_k_concurrent(cfg, k, threads))
    print("measuring our evaluation (single process) ...", flush=True)
    eval_result = measure_our_eval(data, cfg, device)

    gflop = nominal_train_gflop_per_image(cfg.width, data.image_size)
    peak = bf16_peak_tflops(device)
    base = next((row for row in rows if row["k"] == 1), rows[0])
    for row in rows:
        row["speedup"] = row["aggregate_images_per_s"] / base["aggregate_images_per_s"]
        row["tflops"], row["peak_share"] = flops_summary(row["aggregate_images_per_s"], gflop,
                                                          peak)
    header = ["K", "threads/proc", "aggregate img/s", f"speed-up vs K={base['k']}",
              "mean img/s per run", "slowest run s", "TFLOP/s"]
    if device.type == "cuda":
        header.append("bf16 peak share")
    table = []
    for row in rows:
        cells = [str(row["k"]), fmt(row["threads_per_process"], "d"),
                 fmt(row["aggregate_images_per_s"]), fmt(row["speedup"], ".2f", "x"),
                 fmt(row["mean_run_images_per_s"]), fmt(row["slowest_run_seconds"], ".2f"),
                 fmt(row["tflops"], ".3f")]
        if device.type == "cuda":
            cells.append(fmt(row["peak_share"], ".1%"))
        table.append(cells)
    print()
    print_grid(header, table)
    print(f"  our evaluation: {fmt(eval_result.eval_images_per_s)} img/s (single process, "
          f"batch {cfg.eval_batch_size}, {eval_result.eval_images:,} images)")
    for note in sorted({n for row in rows for n in row["notes"]} | set(eval_result.notes)):
        print(f"  note: {note}")

    best = max(rows, key=lambda row: row["aggregate_images_per_s"])
    projection = sweep_projection(best["aggregate_images_per_s"], eval_result.eval_images_per_s)
    print(f"\nprojected Table 6 sweep at the best aggregate rate (K={best['k']}):")
    print_projection("ours", projection, best["aggregate_images_per_s"],
                     eval_result.eval_images_per_s)
    print(f"  {SWEEP_ASSUMPTIONS}; training at K={best['k']} runs at a time; evaluation at the "
          "single-process rate, not overlapped with training (pessimistic)")
    verdict = verdict_line(device, None, best["peak_share"])
    print()
    print(verdict)
    return {
        "mode": "concurrent", **env, "parameters": params, "runs": rows,
        "eval": eval_result.to_dict(), "best_k": best["k"],
        "flops": {"nominal_train_gflop_per_image": gflop, "bf16_peak_tflops": peak},
        "projection_hours": projection, "verdict": verdict,
    }


def run_check_flops(cfg: BenchConfig, device: torch.device) -> dict[str, Any]:
    """Count one training step of batch 1 and compare with the nominal figure."""
    size = (32, 32)
    nominal = nominal_train_gflop_per_image(cfg.width, size)
    measured = measured_train_gflop_per_image(cfg.width, size)
    env = environment(cfg, device, None)
    print_pairs("bench_epoch: FLOPs of one training step (forward + backward), batch 1", [
        ("model", f"resnet18 (CIFAR), width {cfg.width}, 32x32 input"),
        ("measured", f"{measured:.4f} GFLOP/image (torch.utils.flop_counter.FlopCounterMode)"),
        ("nominal", f"{nominal:.4f} GFLOP/image (3.33 x (width/64)^2 x H*W/1024)"),
        ("measured/nominal", f"{measured / nominal:.3f}"),
    ])
    return {"mode": "check-flops", **env, "measured_gflop_per_image": measured,
            "nominal_gflop_per_image": nominal}


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    device = torch.device(cfg.device)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if cfg.check_flops:
        payload = run_check_flops(cfg, device)
    else:
        data = load_data(cfg.root, cfg.num_images, synthetic=cfg.synthetic)
        if len(data) < cfg.batch_size:
            raise SystemExit(f"error: {len(data)} images are fewer than one batch of "
                             f"{cfg.batch_size}; raise --num-images or lower --batch-size")
        cfg = dataclasses.replace(cfg, num_images=len(data),
                                  eval_images=min(cfg.eval_images, len(data)))
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # as our trainer and the authors' code do
        run = run_compare if cfg.mode == "compare" else run_concurrent
        payload = run(cfg, device, data)
    if cfg.json:
        write_json(cfg.json, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
