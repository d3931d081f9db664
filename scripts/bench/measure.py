"""Timing: one pipeline's throughput and memory, K concurrent runs, the sweep projection."""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_module
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from bench.common import (
    SWEEP_EPOCHS,
    SWEEP_EVAL_PASSES,
    SWEEP_RUNS,
    SWEEP_TEST_IMAGES,
    SWEEP_TRAIN_IMAGES,
    BenchConfig,
    load_data,
    peak_memory_mib,
    release_memory,
    synchronize,
)
from bench.pipelines import OurPipeline, Pipeline
from dal_backdoor.data.datasets import ImageDataset


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
