"""The trainer: builders, one epoch of training, per-epoch evaluation, and ``fit``.

Data preparation lives in ``dal_backdoor.data.prepare``, the run folder's files in
``dal_backdoor.rundir``, the resumable state in ``dal_backdoor.training_state`` and the results
store rows in ``dal_backdoor.recorder``; this module puts them together.

``fit`` records every epoch: a full-state checkpoint (atomic), then one row in the results store.
A run killed at any moment restarts from its last checkpoint with ``resume=True`` and finishes
with the same metrics as an uninterrupted run (on CPU; cuDNN kernels may differ on GPU).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dal_backdoor import accel
from dal_backdoor.config import RunConfig
from dal_backdoor.data.loader import DeviceLoader
from dal_backdoor.data.prepare import GROUPS, PreparedData, derive_seed, prepare_data
from dal_backdoor.errors import ConfigError
from dal_backdoor.evaluate import evaluate_backdoor
from dal_backdoor.losses.base import LossModule
from dal_backdoor.recorder import RunRecorder
from dal_backdoor.rundir import RunDir
from dal_backdoor.signals import deferred_signals
from dal_backdoor.training_state import TrainingState

log = logging.getLogger(__name__)

Metrics = dict[str, Any]


# -- builders -----------------------------------------------------------------------------------

def build_model(cfg: RunConfig, num_classes: int, in_channels: int) -> nn.Module:
    from dal_backdoor.models import create_model

    model = create_model(cfg.model, num_classes, in_channels=in_channels, width=cfg.width,
                         seed=derive_seed(cfg.seed, "model"), init=cfg.init,
                         params=cfg.model_params)
    model = model.to(cfg.device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def build_loss(cfg: RunConfig, data: PreparedData) -> LossModule:
    from dal_backdoor.losses import create_loss

    loss = create_loss(cfg.loss, data.num_classes, total_epochs=cfg.epochs,
                       seed=derive_seed(cfg.seed, "loss"), **cfg.loss_params)
    if hasattr(loss, "set_class_weights"):  # NLNL weights classes by inverse frequency
        from dal_backdoor.losses.functional import inverse_frequency_weights

        loss.set_class_weights(inverse_frequency_weights(data.train_labels, data.num_classes))
    return loss.to(cfg.device)


def build_optimizer(cfg: RunConfig, model: nn.Module
                    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """SGD with momentum and weight decay, cosine-annealed over ``epochs`` (paper, Sec. 5.1)."""
    extra = {"fused": True} if cfg.device == "cuda" else {}
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay, **extra)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    return optimizer, scheduler


def build_loader(cfg: RunConfig, images: Tensor, labels: Tensor, mean: tuple[float, ...],
                 std: tuple[float, ...], *, drop_last: bool = False) -> DeviceLoader:
    """The shuffled, (optionally) augmenting training loader on ``cfg.device`` (the trainer
    keeps the last partial batch; ``drop_last`` is for benchmarks that time full batches)."""
    return DeviceLoader(images, labels, batch_size=cfg.batch_size, mean=mean, std=std,
                        device=cfg.device, augment=cfg.augment, shuffle=True,
                        seed=derive_seed(cfg.seed, "loader"), channels_last=cfg.channels_last,
                        drop_last=drop_last)


def build_training_state(cfg: RunConfig, data: PreparedData) -> TrainingState:
    """Model, loss, optimiser, scheduler and loader of a fresh run (built in this order)."""
    model = build_model(cfg, data.num_classes, data.in_channels)
    loss = build_loss(cfg, data)
    optimizer, scheduler = build_optimizer(cfg, model)
    loader = build_loader(cfg, data.train_images, data.train_labels, data.mean, data.std)
    return TrainingState(cfg.run_id, model, optimizer, scheduler, loss, loader)


def autocast_for(cfg: RunConfig) -> contextlib.AbstractContextManager[Any]:
    return accel.autocast(cfg.device, accel.autocast_dtype(cfg.precision))


# -- one epoch ----------------------------------------------------------------------------------

def train_one_epoch(
    model: nn.Module,
    loader: DeviceLoader,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    groups: Tensor,
    *,
    autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
    on_batch: Callable[[int, int], None] | None = None,
) -> Metrics:
    """One pass over ``loader``; returns mean loss, accuracy and accuracy per sample group.

    Sums stay on the device and are read once at the end (one synchronisation per epoch).
    Accuracy is measured on the observed (possibly noisy / poisoned) labels, in train mode, as
    the batches are trained on.
    """
    device = loader.device
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros(len(GROUPS), dtype=torch.float64, device=device)
    seen = torch.zeros(len(GROUPS), dtype=torch.float64, device=device)
    groups = groups.to(device)
    total_batches = len(loader)
    for step, (x, y, idx) in enumerate(loader, start=1):
        with autocast():
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach().double() * y.shape[0]
        hits = (logits.detach().argmax(dim=1) == y).double()
        correct.index_add_(0, groups[idx], hits)
        seen.index_add_(0, groups[idx], torch.ones_like(hits))
        if on_batch is not None:
            on_batch(step, total_batches)
    values = torch.cat([loss_sum.view(1), correct, seen]).tolist()  # the epoch's one sync
    return _epoch_summary(values[0], values[1:1 + len(GROUPS)], values[1 + len(GROUPS):])


def _epoch_summary(loss_value: float, per_group: list[float], seen: list[float]) -> Metrics:
    counts = [int(c) for c in seen]  # samples trained on, per group
    n = max(sum(counts), 1)
    if not math.isfinite(loss_value):
        raise FloatingPointError(f"training diverged: the mean training loss is {loss_value}; "
                                 "lower the learning rate or check the loss hyper-parameters")
    out: Metrics = {"train_loss": loss_value / n, "train_acc": sum(per_group) / n}
    for name, hits_g, count in zip(GROUPS, per_group, counts, strict=True):
        out[f"num_{name}"] = count
        out[f"train_acc_{name}"] = hits_g / count if count else None
    return out


def evaluate_epoch(model: nn.Module, cfg: RunConfig, data: PreparedData,
                   test_images: Tensor | None = None) -> Metrics:
    """Clean accuracy and (with a trigger) ASR, ASR_true and robust accuracy on the test set.

    Test images get ``trigger.for_evaluation()`` (e.g. blended's ``test_alpha``); a clean-label
    attack's ASR set also excludes the target class (``evaluate_backdoor``).

    ``test_images`` may be the test images already moved to the model's device (``fit`` does
    this once, so evaluation does not copy them from the host every epoch)."""
    images = data.test.images if test_images is None else test_images
    trigger = data.trigger.for_evaluation() if data.trigger is not None else None
    return evaluate_backdoor(
        model, images, data.test.labels, trigger, cfg.target_class,
        mean=data.mean, std=data.std, batch_size=cfg.eval_batch_size, device=cfg.device,
        channels_last=cfg.channels_last,
        autocast_dtype=accel.autocast_dtype(cfg.precision), clean_label=data.clean_label,
    ).to_dict()


# -- the run ------------------------------------------------------------------------------------

@dataclass
class Callbacks:
    """Progress hooks (all optional): the CLI draws bars, the sweep sends events."""

    on_start: Callable[[RunConfig, int], None] | None = None
    on_epoch_start: Callable[[int, int], None] | None = None
    on_batch: Callable[[int, int], None] | None = None
    on_epoch_end: Callable[[Metrics], None] | None = None


@dataclass
class RunResult:
    run_id: str
    config: RunConfig
    out_dir: Path
    final_metrics: Metrics
    history: list[Metrics]
    resumed_from: int  # 0: fresh start; k: resumed after epoch k; epochs: was already finished


def fit(
    cfg: RunConfig,
    db: str | Path | RunRecorder,
    out_dir: str | Path,
    *,
    resume: bool = False,
    keep_checkpoint: bool = False,
    callbacks: Callbacks | None = None,
) -> RunResult:
    """Train ``cfg`` into ``out_dir`` and record it in the results store ``db`` (a path, or the
    ``RunRecorder`` of this run).

    ``out_dir`` receives config.json, manifest.json (poisoned runs), model.pt, metrics.json and,
    while the run is unfinished, checkpoint.pt (see ``dal_backdoor.rundir``). A finished run in
    ``out_dir`` is verified and returned as is. With ``resume`` an unfinished run continues from
    its checkpoint (or starts fresh if it has none); without it, a checkpoint is an error.
    """
    cb = callbacks or Callbacks()
    run_dir = RunDir(out_dir)
    with _recorder(db, cfg) as recorder:
        done = _reuse_finished(cfg, run_dir, recorder)
        if done is not None:
            return done
        saved = _saved_state(cfg, run_dir, resume)
        # Everything that can reject the input happens before anything is written.
        data = prepare_data(cfg)
        state = build_training_state(cfg, data)
        if saved is not None:
            state.load_state_dict(saved, run_dir.checkpoint)
            log.info("resuming run %s after epoch %d", cfg.run_id, state.epoch)
        resumed_from = state.epoch
        _begin(cfg, run_dir, recorder, data, state)
        if cb.on_start:
            cb.on_start(cfg, resumed_from + 1)
        _train_epochs(cfg, state, data, run_dir, recorder, cb)
        final = _final_metrics(state.history, data)
        run_dir.write_model(state.model)
        run_dir.write_metrics(cfg.run_id, final, state.history)
        recorder.finish(final, state.history)
    if not keep_checkpoint:
        run_dir.checkpoint.unlink(missing_ok=True)
    return RunResult(cfg.run_id, cfg, run_dir.path, final, state.history, resumed_from)


def _recorder(db: str | Path | RunRecorder, cfg: RunConfig
              ) -> contextlib.AbstractContextManager[RunRecorder]:
    """The caller's recorder (left open), or one for the store at ``db`` (closed after)."""
    if not isinstance(db, RunRecorder):
        return RunRecorder(db, cfg)
    if db.run_id != cfg.run_id:
        raise ValueError(f"the recorder is for run {db.run_id}, not for run {cfg.run_id}")
    return contextlib.nullcontext(db)


def _reuse_finished(cfg: RunConfig, run_dir: RunDir, recorder: RunRecorder) -> RunResult | None:
    """A finished run in ``run_dir`` (verified), recorded into the store if it is not there."""
    metrics = run_dir.finished_metrics(cfg.run_id)
    if metrics is None:
        run_dir.check_belongs_to(cfg.run_id)
        return None
    if not recorder.is_finished():  # the store learns the run with the folder's provenance
        recorder.finish(metrics["final"], metrics["history"], run_dir.provenance())
    return RunResult(cfg.run_id, cfg, run_dir.path, metrics["final"], metrics["history"],
                     resumed_from=cfg.epochs)


def _saved_state(cfg: RunConfig, run_dir: RunDir, resume: bool) -> dict[str, Any] | None:
    """The run's checkpoint, if there is one (then ``resume`` is required)."""
    if not run_dir.checkpoint.exists():
        return None
    saved = TrainingState.read(run_dir.checkpoint, cfg.run_id)
    if not resume:
        raise ConfigError(f"{run_dir.path} has a checkpoint of this run after epoch "
                          f"{saved['epoch']}; pass --resume to continue it or use another "
                          "--out directory")
    return saved


def _begin(cfg: RunConfig, run_dir: RunDir, recorder: RunRecorder, data: PreparedData,
           state: TrainingState) -> None:
    """Open the store (a corrupt or foreign one fails here, before any write), then write
    config.json, manifest.json and the store's start rows."""
    recorder.open()
    run_dir.create()
    run_dir.write_config(cfg, data.info(), recorder.provenance)
    if data.manifest is not None:
        run_dir.write_manifest(data.manifest)
    recorder.start(state.epoch, state.history,
                   None if data.manifest is None else data.manifest.to_dict())


def _train_epochs(cfg: RunConfig, state: TrainingState, data: PreparedData, run_dir: RunDir,
                  recorder: RunRecorder, cb: Callbacks) -> None:
    """The remaining epochs; after each, a checkpoint, then the store's row."""
    if cfg.device == "cuda":
        torch.backends.cudnn.benchmark = True
    test_images = data.test.images.to(cfg.device)
    net = accel.compile_model(state.model) if cfg.compile else state.model  # trains, evaluates
    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        row = run_epoch(cfg, epoch, net, state, data, test_images, cb)
        state.history.append(row)
        state.epoch = epoch
        with deferred_signals():  # the checkpoint and the store's row agree on the epoch
            state.save(run_dir.checkpoint)
            recorder.epoch(row)
        if cb.on_epoch_end:
            cb.on_epoch_end(row)


def run_epoch(cfg: RunConfig, epoch: int, net: nn.Module, state: TrainingState,
              data: PreparedData, test_images: Tensor, cb: Callbacks | None = None) -> Metrics:
    """Train epoch ``epoch`` with ``net`` (the model, possibly compiled), step the schedule,
    evaluate; returns the epoch's metrics row."""
    cb = cb or Callbacks()
    if cb.on_epoch_start:
        cb.on_epoch_start(epoch, cfg.epochs)
    state.loss.set_epoch(epoch)
    lr = state.optimizer.param_groups[0]["lr"]
    start = time.perf_counter()
    train = train_one_epoch(net, state.loader, state.loss, state.optimizer, data.groups,
                            autocast=lambda: autocast_for(cfg), on_batch=cb.on_batch)
    state.scheduler.step()
    train_seconds = time.perf_counter() - start
    evaluated = evaluate_epoch(net, cfg, data, test_images)
    return {"epoch": epoch, "lr": lr, **train, **evaluated, **state.loss.current_values(),
            "train_seconds": train_seconds, "epoch_seconds": time.perf_counter() - start}


def _final_metrics(history: list[Metrics], data: PreparedData) -> Metrics:
    final = dict(history[-1])
    final["epochs_done"] = final.pop("epoch")
    final["total_train_seconds"] = sum(h["train_seconds"] for h in history)
    final["total_seconds"] = sum(h["epoch_seconds"] for h in history)
    if data.noise:
        final["noise_actual_rate"] = data.noise["actual_rate"]
    return final
