#!/usr/bin/env python
"""Training and evaluation throughput of our pipeline next to a reference-style pipeline.

This is a measuring tool, not a test: it prints throughputs and their ratios and asserts nothing
(the closing verdict line only compares the numbers with the project's targets).

Mode ``compare`` (the default)
------------------------------
Two pipelines run one after the other in this process, on the same device, with the same model
(the CIFAR ResNet18 of ``dal_backdoor.models`` with base width ``--width``, built from the same
seed), the same batch size, the same images and the same SGD hyper-parameters:

* **ours**: the trainer itself. A ``RunConfig`` is resolved from the command line
  (``bench.pipelines.run_config``: the paper's recipe at ``--width``/``--batch-size``, with the
  given loss, device, precision, memory format and compile setting) and the pipeline is built by
  ``dal_backdoor.train``'s own builders (``build_model``, ``build_loss``, ``build_optimizer``,
  ``build_loader``), so it cannot drift from ``dal-backdoor train``. The whole uint8 data set lives
  on the device in the ``DeviceLoader``, which performs the random crop (4 pixels of zero padding)
  and the horizontal flip as batched tensor ops; ``train_one_epoch`` trains under the trainer's
  autocast and keeps its sums on the device (one host synchronisation per call). Precision and
  memory format resolve as in the trainer: ``--precision auto`` is bf16 autocast on CUDA and fp32
  on the CPU, ``--precision bf16`` also runs the CPU in bf16 (fast on CPUs with AMX);
  channels-last is on for CUDA and, on the CPU, from width 16 up. CUDA adds fused SGD;
  ``--compile`` wraps the model with ``accel.compile_model`` as ``dal-backdoor train --compile``
  does (frames that fail to compile run eagerly; if even that fails, a note is printed and the
  eager model is used). Evaluation is the trainer's ``evaluate_epoch`` (batches of
  ``--eval-batch-size``, same precision) on test images moved to the device once, as ``fit``
  does. ``--loss dal`` trains ours with the DAL loss (Table 1 preset, at epoch 1 of 150) instead
  of cross-entropy.
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
import dataclasses
import sys
from collections.abc import Sequence

import torch
from bench.common import REF_EVAL_BATCH, BenchConfig, load_data
from bench.output import run_check_flops, run_compare, run_concurrent, write_json

from dal_backdoor.accel import auto_channels_last
from dal_backdoor.config import PRECISIONS, resolve_precision


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

