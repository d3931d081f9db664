"""The trainer: data preparation, one epoch of training, per-epoch evaluation, and ``fit``.

Data preparation order (``prepare_data``): load the full training split -> label noise on the
full split (so CIFAR-N's per-image labels line up) -> class-balanced training subset (selected by
the *clean* labels) -> poisoning of ``num_poison`` images whose observed label is not the target.
Every random step draws from its own stream derived from the run's seed (``derive_seed``), so the
same seed gives the same noisy labels, the same poisoned indices, the same batches and (on CPU)
the same weights.

``fit`` records every epoch: a full-state checkpoint (atomic), then one row in the results store.
A run killed at any moment restarts from its last checkpoint with ``resume=True`` and finishes
with the same metrics as an uninterrupted run (on CPU; cuDNN kernels may differ on GPU).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dal_backdoor import accel
from dal_backdoor.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from dal_backdoor.config import RunConfig, check_noise_params
from dal_backdoor.data import create_dataset
from dal_backdoor.data.datasets import ImageDataset, stratified_subset_indices
from dal_backdoor.data.loader import DeviceLoader
from dal_backdoor.errors import CheckpointError, ConfigError
from dal_backdoor.evaluate import evaluate_backdoor
from dal_backdoor.io import atomic_write_json, atomic_write_with, remove_stale_temp_files

log = logging.getLogger(__name__)

#: Sample groups for per-group training accuracy (the paper's Figure 4 view).
GROUPS = ("clean", "noisy", "poisoned")
CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
CONFIG = "config.json"
MANIFEST = "manifest.json"
METRICS = "metrics.json"


def derive_seed(seed: int, stream: str) -> int:
    """An independent 63-bit seed for one random stream ("noise", "poison", "loader", ...)."""
    digest = hashlib.sha256(f"dal-backdoor:{int(seed)}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


# -- data ---------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class PreparedData:
    """Training tensors after noise and poisoning, the test set, and what was done to them.

    ``groups[i]`` is 0 (clean), 1 (label-noised) or 2 (poisoned) for training sample ``i``;
    ``clean_labels`` are the true labels before noise and poisoning.
    """

    train_images: Tensor
    train_labels: Tensor
    clean_labels: Tensor
    groups: Tensor
    test: ImageDataset
    num_classes: int
    in_channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    trigger: Any = None
    manifest: Any = None
    noise: dict[str, Any] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        """What a saved model needs to be rebuilt and evaluated, plus a data summary."""
        counts = torch.bincount(self.groups, minlength=len(GROUPS)).tolist()
        return {
            "num_classes": self.num_classes, "in_channels": self.in_channels,
            "image_size": list(self.image_size), "mean": list(self.mean), "std": list(self.std),
            "num_train": int(self.train_labels.numel()), "num_test": len(self.test),
            **{f"num_{g}": int(c) for g, c in zip(GROUPS, counts, strict=True)},
            "noise": self.noise,
        }


def _subset_indices(labels: Tensor, size: int, seed: int, what: str, name: str) -> Tensor:
    """Class-balanced indices of ``size`` samples; a size above the data is a ConfigError."""
    if size > len(labels):
        raise ConfigError(f"{what}={size} exceeds the {len(labels)} samples of {name}; "
                          f"allowed: integers in [1, {len(labels)}]")
    return stratified_subset_indices(labels, size, seed)


def load_test_set(cfg: RunConfig) -> ImageDataset:
    """The (possibly subsetted) test split of the run's data set."""
    test = create_dataset(cfg.dataset, cfg.data_root, train=False, **cfg.dataset_params)
    if cfg.test_subset is None:
        return test
    return test.subset(_subset_indices(test.labels, cfg.test_subset,
                                       derive_seed(cfg.subset_seed, "test-subset"),
                                       "test_subset", test.name))


def load_datasets(cfg: RunConfig) -> tuple[ImageDataset, ImageDataset]:
    """The full training split and the (possibly subsetted) test split."""
    train = create_dataset(cfg.dataset, cfg.data_root, train=True, **cfg.dataset_params)
    return train, load_test_set(cfg)


def _apply_noise(cfg: RunConfig, train: ImageDataset) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """(observed labels, flipped mask, summary) for the full training split."""
    if cfg.noise_kind == "none":
        return train.labels.clone(), torch.zeros(len(train), dtype=torch.bool), {}
    from dal_backdoor.data.noise import noisy_labels_for_run

    noisy = noisy_labels_for_run(cfg, train, derive_seed(cfg.seed, "noise"))
    summary = {"kind": noisy.kind, "nominal_rate": noisy.nominal_rate,
               "expected_rate": noisy.expected_rate, "actual_rate_full_split": noisy.actual_rate}
    return noisy.labels, noisy.flipped, summary


def prepare_data(cfg: RunConfig) -> PreparedData:
    """Load -> label noise -> training subset -> poisoning (see the module docstring)."""
    train, test = load_datasets(cfg)
    check_noise_params(cfg.noise_params)
    if not 0 <= cfg.target_class < train.num_classes:
        raise ConfigError(f"target_class={cfg.target_class} is out of range; allowed: integers "
                          f"in [0, {train.num_classes - 1}]")
    labels, flipped, noise = _apply_noise(cfg, train)
    images, clean = train.images, train.labels
    if cfg.train_subset is not None:
        idx = _subset_indices(clean, cfg.train_subset, derive_seed(cfg.subset_seed, "train-subset"),
                              "train_subset", train.name)
        images, clean, labels, flipped = (images[idx].contiguous(), clean[idx], labels[idx],
                                          flipped[idx])
    if noise:
        noise["actual_rate"] = float(flipped.double().mean()) if flipped.numel() else 0.0
        noise["num_flipped"] = int(flipped.sum())
    groups = flipped.long()
    trigger = manifest = None
    if cfg.trigger != "none":  # with num_poison 0: the trigger is only evaluated
        from triggers import create_trigger

        trigger = create_trigger(cfg.trigger, train.image_size, train.channels,
                                 **cfg.trigger_params)
    if cfg.poisoned:
        from dal_backdoor.data.poison import poison, poison_mask

        images, labels, manifest = poison(images, labels, trigger, cfg.num_poison,
                                          cfg.target_class, derive_seed(cfg.seed, "poison"),
                                          num_classes=train.num_classes)
        groups = torch.where(poison_mask(len(labels), manifest), 2, groups)
    return PreparedData(
        train_images=images, train_labels=labels, clean_labels=clean, groups=groups, test=test,
        num_classes=train.num_classes, in_channels=train.channels, image_size=train.image_size,
        mean=train.mean, std=train.std, trigger=trigger, manifest=manifest, noise=noise,
    )


# -- model, loss, optimiser ---------------------------------------------------------------------

def build_model(cfg: RunConfig, num_classes: int, in_channels: int) -> nn.Module:
    from dal_backdoor.models import create_model

    model = create_model(cfg.model, num_classes, in_channels=in_channels, width=cfg.width,
                         seed=derive_seed(cfg.seed, "model"), init=cfg.init)
    model = model.to(cfg.device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def build_loss(cfg: RunConfig, data: PreparedData) -> nn.Module:
    from dal_backdoor.losses import create_loss

    loss = create_loss(cfg.loss, data.num_classes, total_epochs=cfg.epochs,
                       seed=derive_seed(cfg.seed, "loss"), **cfg.loss_params)
    if hasattr(loss, "set_class_weights"):  # NLNL weights classes by inverse frequency
        from dal_backdoor.losses.functional import inverse_frequency_weights

        loss.set_class_weights(inverse_frequency_weights(data.train_labels, data.num_classes))
    return loss.to(cfg.device)


def build_optimizer(cfg: RunConfig, model: nn.Module) -> tuple[torch.optim.Optimizer, Any]:
    """SGD with momentum and weight decay, cosine-annealed over ``epochs`` (paper, Sec. 5.1)."""
    extra = {"fused": True} if cfg.device == "cuda" else {}
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay, **extra)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    return optimizer, scheduler


def _autocast(cfg: RunConfig) -> contextlib.AbstractContextManager[Any]:
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
) -> dict[str, Any]:
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
    loss_value, per_group = values[0], values[1:1 + len(GROUPS)]
    counts = [int(c) for c in values[1 + len(GROUPS):]]  # samples trained on, per group
    n = max(sum(counts), 1)
    if not math.isfinite(loss_value):
        raise FloatingPointError(f"training diverged: the mean training loss is {loss_value}; "
                                 "lower the learning rate or check the loss hyper-parameters")
    out: dict[str, Any] = {"train_loss": loss_value / n, "train_acc": sum(per_group) / n}
    for name, hits_g, count in zip(GROUPS, per_group, counts, strict=True):
        out[f"num_{name}"] = count
        out[f"train_acc_{name}"] = hits_g / count if count else None
    return out


def evaluate_epoch(model: nn.Module, cfg: RunConfig, data: PreparedData,
                   test_images: Tensor | None = None) -> dict[str, Any]:
    """Clean accuracy and (with a trigger) ASR, ASR_true and robust accuracy on the test set.

    ``test_images`` may be the test images already moved to the model's device (``fit`` does
    this once, so evaluation does not copy them from the host every epoch)."""
    images = data.test.images if test_images is None else test_images
    metrics = evaluate_backdoor(
        model, images, data.test.labels, data.trigger, cfg.target_class,
        mean=data.mean, std=data.std, batch_size=cfg.eval_batch_size, device=cfg.device,
        channels_last=cfg.channels_last,
        autocast_dtype=accel.autocast_dtype(cfg.precision),
    ).to_dict()
    return metrics


# -- the run ------------------------------------------------------------------------------------

@dataclass
class Callbacks:
    """Progress hooks (all optional): the CLI draws bars, the sweep sends events."""

    on_start: Callable[[RunConfig, int], None] | None = None
    on_epoch_start: Callable[[int, int], None] | None = None
    on_batch: Callable[[int, int], None] | None = None
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None


@dataclass
class RunResult:
    run_id: str
    config: RunConfig
    out_dir: Path
    final_metrics: dict[str, Any]
    history: list[dict[str, Any]]
    resumed_from: int  # 0: fresh start; k: resumed after epoch k; epochs: was already finished


def open_store(db: str | Path) -> Any:
    from dal_backdoor.store import ResultsStore

    return ResultsStore(db)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"{path} is not valid JSON; delete the run directory to start "
                          "again") from None


def _check_out_dir(cfg: RunConfig, out_dir: Path) -> None:
    """Refuse a run directory that belongs to another config."""
    existing = _read_json(out_dir / CONFIG)
    if existing is not None and existing.get("run_id") != cfg.run_id:
        raise ConfigError(f"{out_dir} holds run {existing.get('run_id')!r}, not this config's "
                          f"run {cfg.run_id}; use another --out directory")


def _finished_result(cfg: RunConfig, out_dir: Path) -> RunResult | None:
    metrics = _read_json(out_dir / METRICS)
    if metrics is None or metrics.get("run_id") != cfg.run_id or not (out_dir / MODEL).exists():
        return None
    return RunResult(cfg.run_id, cfg, out_dir, metrics["final"], metrics["history"],
                     resumed_from=cfg.epochs)


def _final_metrics(history: list[dict[str, Any]], data: PreparedData) -> dict[str, Any]:
    final = dict(history[-1])
    final["epochs_done"] = final.pop("epoch")
    final["total_train_seconds"] = sum(h["train_seconds"] for h in history)
    final["total_seconds"] = sum(h["epoch_seconds"] for h in history)
    if data.noise:
        final["noise_actual_rate"] = data.noise["actual_rate"]
    return final


def fit(
    cfg: RunConfig,
    db: str | Path,
    out_dir: str | Path,
    *,
    resume: bool = False,
    keep_checkpoint: bool = False,
    callbacks: Callbacks | None = None,
) -> RunResult:
    """Train ``cfg`` into ``out_dir`` and record it in the results store ``db``.

    ``out_dir`` receives config.json (resolved config, run id, data summary, provenance),
    manifest.json (poisoned runs), model.pt (state dict), metrics.json (history and final
    metrics) and, while the run is unfinished, checkpoint.pt. A finished run in ``out_dir`` is
    returned as is. With ``resume`` an unfinished run continues from its checkpoint (or starts
    fresh if it has none); without it, an existing checkpoint is an error.
    """
    from dal_backdoor.provenance import provenance

    cb = callbacks or Callbacks()
    out_dir = Path(out_dir)
    _check_out_dir(cfg, out_dir)
    done = _finished_result(cfg, out_dir)
    if done is not None:
        with open_store(db) as store:
            if not store.is_finished(cfg.run_id):
                _record_finished(store, cfg, done, provenance(cfg.device), out_dir)
        return done
    ckpt_path = out_dir / CHECKPOINT
    state = None
    if ckpt_path.exists():
        state = load_checkpoint(ckpt_path, expected_run_id=cfg.run_id)
        if not resume:
            raise ConfigError(f"{out_dir} has a checkpoint of this run after epoch "
                              f"{state['epoch']}; pass --resume to continue it or use another "
                              "--out directory")

    # Everything that can reject the input happens before anything is written.
    data = prepare_data(cfg)
    model = build_model(cfg, data.num_classes, data.in_channels)
    loss_fn = build_loss(cfg, data)
    optimizer, scheduler = build_optimizer(cfg, model)
    loader = DeviceLoader(data.train_images, data.train_labels, batch_size=cfg.batch_size,
                          mean=data.mean, std=data.std, device=cfg.device, augment=cfg.augment,
                          shuffle=True, seed=derive_seed(cfg.seed, "loader"),
                          channels_last=cfg.channels_last)
    if cfg.device == "cuda":
        torch.backends.cudnn.benchmark = True

    history: list[dict[str, Any]] = []
    first_epoch = 1
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            loss_fn.load_state_dict(state["loss"])
            loader.load_state_dict(state["loader"])
            set_rng_state(state["rng"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {ckpt_path} does not fit this run "
                                  f"({' '.join(str(exc).split())[:160]}); delete it to start "
                                  "again") from None
        history = list(state["history"])
        first_epoch = int(state["epoch"]) + 1
        log.info("resuming run %s after epoch %d", cfg.run_id, first_epoch - 1)

    prov = provenance(cfg.device)
    with open_store(db) as store:  # a corrupt or foreign store fails here, before any write
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(out_dir)
        atomic_write_json(out_dir / CONFIG, {"run_id": cfg.run_id, "config": cfg.to_dict(),
                                             "data": data.info(), "provenance": prov})
        if data.manifest is not None:
            data.manifest.save(out_dir / MANIFEST)
        store.start_run(cfg.run_id, cfg.to_dict(), prov)
        store.truncate_epochs(cfg.run_id, first_epoch - 1)
        for row in history:  # re-sync rows the checkpoint has but the store lost
            store.record_epoch(cfg.run_id, row["epoch"], row)
        if data.manifest is not None:
            store.save_manifest(cfg.run_id, data.manifest.to_dict())

    if cb.on_start:
        cb.on_start(cfg, first_epoch)
    test_images = data.test.images.to(cfg.device)
    net = accel.compile_model(model) if cfg.compile else model  # what trains and evaluates
    for epoch in range(first_epoch, cfg.epochs + 1):
        row = _run_epoch(cfg, epoch, net, loader, loss_fn, optimizer, scheduler, data, cb,
                         test_images)
        history.append(row)
        save_checkpoint(ckpt_path, {
            "run_id": cfg.run_id, "epoch": epoch, "history": history,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "loss": loss_fn.state_dict(),
            "loader": loader.state_dict(), "rng": rng_state(),
        })
        with open_store(db) as store:
            store.record_epoch(cfg.run_id, epoch, row)
        if cb.on_epoch_end:
            cb.on_epoch_end(row)

    final = _final_metrics(history, data)
    result = RunResult(cfg.run_id, cfg, out_dir, final, history, resumed_from=first_epoch - 1)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_with(out_dir / MODEL, lambda fh: torch.save(weights, fh))
    with open_store(db) as store:
        _record_finished(store, cfg, result, prov, out_dir)
    if not keep_checkpoint:
        ckpt_path.unlink(missing_ok=True)
    return result


def _record_finished(store: Any, cfg: RunConfig, result: RunResult, prov: dict[str, Any],
                     out_dir: Path) -> None:
    """metrics.json (atomic) then the store's finished row; both idempotent."""
    atomic_write_json(out_dir / METRICS, {"run_id": cfg.run_id, "final": result.final_metrics,
                                          "history": result.history})
    if store.get_run(cfg.run_id) is None:
        store.start_run(cfg.run_id, cfg.to_dict(), prov)
        for row in result.history:
            store.record_epoch(cfg.run_id, row["epoch"], row)
    store.finish_run(cfg.run_id, result.final_metrics)


def _run_epoch(cfg: RunConfig, epoch: int, model: nn.Module, loader: DeviceLoader,
               loss_fn: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
               data: PreparedData, cb: Callbacks, test_images: Tensor) -> dict[str, Any]:
    if cb.on_epoch_start:
        cb.on_epoch_start(epoch, cfg.epochs)
    loss_fn.set_epoch(epoch)
    lr = optimizer.param_groups[0]["lr"]
    start = time.perf_counter()
    train = train_one_epoch(model, loader, loss_fn, optimizer, data.groups,
                            autocast=lambda: _autocast(cfg), on_batch=cb.on_batch)
    scheduler.step()
    train_seconds = time.perf_counter() - start
    evaluated = evaluate_epoch(model, cfg, data, test_images)
    row: dict[str, Any] = {"epoch": epoch, "lr": lr, **train, **evaluated,
                           **loss_fn.current_values(), "train_seconds": train_seconds,
                           "epoch_seconds": time.perf_counter() - start}
    return row


# -- saved models -------------------------------------------------------------------------------

def load_trained_model(run_dir: str | Path, device: str = "cpu"
                       ) -> tuple[nn.Module, RunConfig, dict[str, Any]]:
    """The model saved by ``fit`` in ``run_dir``, its config and its data info."""
    from dal_backdoor.models import create_model

    run_dir = Path(run_dir)
    saved = _read_json(run_dir / CONFIG)
    if saved is None or not (run_dir / MODEL).exists():
        raise ConfigError(f"{run_dir} holds no finished run (config.json and model.pt are "
                          "written by `dal-backdoor train`)")
    cfg = RunConfig.from_dict(saved["config"]).replace(device=device)
    info = saved["data"]
    model = create_model(cfg.model, info["num_classes"], in_channels=info["in_channels"],
                         width=cfg.width)
    try:
        weights = torch.load(run_dir / MODEL, map_location="cpu", weights_only=True)
        model.load_state_dict(weights)
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{run_dir / MODEL} cannot be loaded "
                              f"({' '.join(str(exc).split())[:160]})") from None
    return model.to(device).eval(), cfg, info
