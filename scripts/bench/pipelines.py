"""The two pipelines the benchmark times: ours, built by the trainer's own builders from a
``RunConfig`` (so it cannot drift from ``dal-backdoor train``), and a reference-style one."""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import torch
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from bench.common import DAL_TOTAL_EPOCHS, DATA_SEED, REF_EVAL_BATCH, BenchConfig
from dal_backdoor.accel import compile_model
from dal_backdoor.config import RunConfig, resolve_config
from dal_backdoor.data.datasets import ImageDataset
from dal_backdoor.data.prepare import PreparedData
from dal_backdoor.train import (
    autocast_for,
    build_loader,
    build_loss,
    build_model,
    build_optimizer,
    evaluate_epoch,
    train_one_epoch,
)

T = TypeVar("T")


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


class Pipeline(Protocol):
    """What the timing code needs of a pipeline."""

    notes: list[str]

    def warm_up(self, steps: int) -> None: ...

    def train(self, steps: int) -> int: ...

    def warm_up_eval(self) -> None: ...

    def evaluate(self) -> int: ...

    def close(self) -> None: ...


def run_config(cfg: BenchConfig) -> RunConfig:
    """The trainer's config for what is timed: the paper's recipe (SGD lr 0.01, momentum 0.9,
    weight decay 1e-4, crop + flip) at ``--width``/``--batch-size`` with the command line's
    loss, device, precision, memory format and compile setting."""
    return resolve_config(dataset="cifar10", loss=cfg.loss, device=cfg.device,
                          precision=cfg.precision, channels_last=cfg.channels_last,
                          width=cfg.width, batch_size=cfg.batch_size,
                          eval_batch_size=cfg.eval_batch_size, compile=cfg.compile, augment=True,
                          epochs=DAL_TOTAL_EPOCHS, seed=DATA_SEED)


def prepared_data(data: ImageDataset, eval_images: int) -> PreparedData:
    """The benchmark's images as the trainer's ``PreparedData``: all clean, no trigger; the test
    set is the first ``eval_images`` images."""
    return PreparedData(
        train_images=data.images, train_labels=data.labels, clean_labels=data.labels,
        groups=torch.zeros(len(data), dtype=torch.int64),
        test=data.subset(torch.arange(eval_images)), num_classes=data.num_classes,
        in_channels=data.channels, image_size=data.image_size, mean=data.mean, std=data.std)


def reference_model(rc: RunConfig, data: PreparedData) -> nn.Module:
    """Our model at the same initialisation, in fp32 and the default memory format."""
    return build_model(rc.replace(channels_last=False), data.num_classes, data.in_channels)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


class OurPipeline:
    """``dal-backdoor train``'s path: ``build_model``/``build_loss``/``build_optimizer``/
    ``build_loader`` from ``run_config``, ``train_one_epoch`` under the trainer's autocast, and
    ``evaluate_epoch`` on test images moved to the device once (as ``fit`` does)."""

    def __init__(self, data: ImageDataset, cfg: BenchConfig, device: torch.device) -> None:
        self.rc = run_config(cfg)
        self.device = device
        self.data = prepared_data(data, cfg.eval_images)
        self.notes: list[str] = []
        self.model = build_model(self.rc, self.data.num_classes, self.data.in_channels)
        self.net: nn.Module = self.model  # what trains: the model or its torch.compile wrapper
        self.eval_net: nn.Module = self.model
        self.optimizer, _ = build_optimizer(self.rc, self.model)
        self.loss_fn = build_loss(self.rc, self.data)
        self.loss_fn.set_epoch(1)
        self.stream = endless(build_loader(self.rc, self.data.train_images,
                                           self.data.train_labels, self.data.mean,
                                           self.data.std, drop_last=True))
        self.groups = self.data.groups.to(device)
        self.test_images = self.data.test.images.to(device)
        head = min(cfg.eval_batch_size, len(self.data.test))
        self.head = dataclasses.replace(self.data, test=self.data.test.subset(torch.arange(head)))
        self._compile_pending = cfg.compile

    def _train_with(self, net: nn.Module, steps: int) -> int:
        if steps <= 0:
            return 0
        loader: Any = StepLoader(self.stream, steps, self.device)  # duck-types a DeviceLoader
        train_one_epoch(net, loader, self.loss_fn, self.optimizer, self.groups,
                        autocast=lambda: autocast_for(self.rc))
        return loader.images

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

    def _evaluate_head(self, net: nn.Module) -> None:
        evaluate_epoch(net, self.rc, self.head, self.head.test.images.to(self.device))

    def warm_up_eval(self) -> None:
        if self.eval_net is not self.model:
            try:
                self._evaluate_head(self.eval_net)
                return
            except Exception as exc:
                self._fallback("evaluation", exc)
                self.eval_net = self.model
        self._evaluate_head(self.eval_net)

    def evaluate(self) -> int:
        return int(evaluate_epoch(self.eval_net, self.rc, self.data,
                                  self.test_images)["clean_total"])

    def close(self) -> None:
        self.stream.close()


class ReferencePipeline:
    """A reference-style pipeline like the DAL authors' code (see the module docstring)."""

    def __init__(self, data: ImageDataset, cfg: BenchConfig, device: torch.device,
                 pil_images: Sequence[Image.Image]) -> None:
        rc = run_config(cfg)
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
        self.model = reference_model(rc, prepared_data(data, cfg.eval_images))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=rc.lr, momentum=rc.momentum,
                                         weight_decay=rc.weight_decay)
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
