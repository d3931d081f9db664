"""Clean accuracy and backdoor metrics of a trained model.

The paper's protocol (Section 5.6, following Weng et al. 2020): "We first feed clean test samples
into the target model to calculate the test accuracy, then remove test samples which are
classified into the target class and add triggers into all remained test images to compute the
backdoor success rate." We report, all as fractions in [0, 1] (the CLI shows percentages):

- ``clean_acc``  = correct / all clean test images.
- ``asr`` (paper) = triggered images predicted as the target / test images whose *clean*
  prediction is not the target. For a clean-label attack (``clean_label=True``, e.g. SIG, whose
  poisons are target-class images) the set also drops the test images *labelled* as the target,
  as clean-label papers do (Barni et al. 2019; Turner et al. 2019): a target-class image
  predicted as the target is no evidence of a backdoor. The denominator is then the test images
  whose clean prediction AND true label are both not the target.
- ``asr_true`` (BackdoorBench's convention) = triggered images predicted as the target / test
  images whose *true* label is not the target.
- ``robust_acc`` (RA) = triggered images still predicted as their true label / test images whose
  true label is not the target.

Each rate comes with its numerator and denominator. A rate whose denominator is 0 (e.g. ``asr``
of a model that predicts the target class for every clean image, or ``asr_true`` when every test
image belongs to the target class) is ``None``, never NaN, and ``BackdoorMetrics.notes`` says why.
With ``trigger=None`` only the clean fields are set.

Each image set goes through the model once: the clean predictions once and the triggered
predictions once for all test images; the subsets above are masks over those predictions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from dal_backdoor import accel
from dal_backdoor.data.transforms import normalize_uint8
from dal_backdoor.validation import check_number


class UInt8Trigger(Protocol):
    """What the evaluator needs of a trigger: a batch op on uint8 (B, C, H, W) images."""

    def apply_uint8(self, images: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class BackdoorMetrics:
    """Clean accuracy and backdoor metrics; rates are fractions in [0, 1] or None (see notes)."""

    clean_acc: float | None
    clean_correct: int
    clean_total: int
    asr: float | None = None
    asr_hits: int | None = None
    asr_total: int | None = None
    asr_true: float | None = None
    asr_true_hits: int | None = None
    asr_true_total: int | None = None
    robust_acc: float | None = None
    robust_correct: int | None = None
    robust_total: int | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (``notes`` as a list)."""
        out = asdict(self)
        out["notes"] = list(self.notes)
        return out


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside; afterwards ``model.train(previous)`` restores the top-level mode."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _resolve_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    model_device = _model_device(model)
    if device is None:
        return model_device
    device = torch.device(device)
    if device.type != model_device.type or (
        device.index is not None and model_device.index is not None
        and device.index != model_device.index
    ):
        raise ValueError(f"model is on {model_device} but device={device}; move the model first")
    return model_device


def _check_images(images: Tensor) -> None:
    if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        dtype = images.dtype if isinstance(images, Tensor) else None
        raise TypeError(f"expected uint8 images of shape (N, C, H, W), got {dtype} {shape}")


def _predict(
    model: nn.Module,
    images: Tensor,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int,
    device: str | torch.device | None,
    channels_last: bool,
    autocast_dtype: torch.dtype | None,
    transform: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    _check_images(images)
    check_number("batch_size", batch_size, low=1, integer=True)
    dev = _resolve_device(model, device)
    chunks: list[Tensor] = []
    with _eval_mode(model), torch.inference_mode(), accel.autocast(dev, autocast_dtype):
        for start in range(0, images.shape[0], batch_size):
            batch = images[start:start + batch_size]
            if transform is not None:
                batch = _stamped(transform, batch)
            batch = batch.to(dev, non_blocking=True)
            x = normalize_uint8(batch, mean, std, channels_last=channels_last)
            chunks.append(model(x).argmax(dim=1))
    if not chunks:
        return torch.empty(0, dtype=torch.long)
    return torch.cat(chunks).to("cpu", torch.long)


def _stamped(transform: Callable[[Tensor], Tensor], batch: Tensor) -> Tensor:
    out = transform(batch)
    if not isinstance(out, Tensor) or out.dtype != torch.uint8 or out.shape != batch.shape:
        got = f"{out.dtype} {tuple(out.shape)}" if isinstance(out, Tensor) else type(out).__name__
        raise TypeError(f"trigger.apply_uint8 must return uint8 images of shape "
                        f"{tuple(batch.shape)}, got {got}")
    return out


def predict(
    model: nn.Module,
    images_uint8: Tensor,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int = 1000,
    device: str | torch.device | None = None,
    channels_last: bool = False,
    autocast_dtype: torch.dtype | None = None,
) -> Tensor:
    """Predicted classes (LongTensor on the CPU) of uint8 images (N, C, H, W).

    The images are normalised per channel with ``mean``/``std`` (for pixel values in [0, 1]) and
    moved, batch by batch, to the model's device (``device``, when given, must be where the model
    is). The model runs in eval mode under ``torch.inference_mode`` and its previous train/eval
    mode is restored afterwards. ``autocast_dtype`` (e.g. ``torch.bfloat16``) turns on autocast
    on the model's device (CUDA or CPU). Predictions stay on the device until one final copy.
    """
    return _predict(model, images_uint8, mean=mean, std=std, batch_size=batch_size,
                    device=device, channels_last=channels_last, autocast_dtype=autocast_dtype)


def _check_labels(labels: Tensor, n: int) -> Tensor:
    if not isinstance(labels, Tensor) or labels.ndim != 1 or labels.shape[0] != n:
        shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"expected {n} labels of shape ({n},), got {shape}")
    return labels.to("cpu", torch.long)


def accuracy(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int = 1000,
    device: str | torch.device | None = None,
    channels_last: bool = False,
    autocast_dtype: torch.dtype | None = None,
) -> tuple[int, int]:
    """``(correct, total)`` of the model's predictions on uint8 ``images`` against ``labels``."""
    labels = _check_labels(labels, images.shape[0])
    pred = predict(model, images, mean=mean, std=std, batch_size=batch_size, device=device,
                   channels_last=channels_last, autocast_dtype=autocast_dtype)
    return int((pred == labels).sum()), int(labels.shape[0])


def _rate(hits: int, total: int) -> float | None:
    return hits / total if total > 0 else None


def evaluate_backdoor(
    model: nn.Module,
    test_images: Tensor,
    test_labels: Tensor,
    trigger: UInt8Trigger | None,
    target_class: int,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int = 1000,
    device: str | torch.device | None = None,
    channels_last: bool = False,
    autocast_dtype: torch.dtype | None = None,
    clean_label: bool = False,
) -> BackdoorMetrics:
    """Clean accuracy, ASR (paper protocol), ASR_true and robust accuracy (see module docs).

    ``clean_label``: the attack is clean-label, so the ASR set also excludes the target class.

    ``trigger.apply_uint8`` is called on uint8 batches (B, C, H, W) where the test images live
    (before they are moved to the model's device) and must return new uint8 images of the same
    shape. ``trigger=None`` measures clean accuracy only.
    """
    options = dict(mean=mean, std=std, batch_size=batch_size, device=device,
                   channels_last=channels_last, autocast_dtype=autocast_dtype)
    _check_images(test_images)
    labels = _check_labels(test_labels, test_images.shape[0])
    target = check_number("target_class", target_class, low=0, integer=True)
    clean_pred = _predict(model, test_images, **options)
    clean_correct = int((clean_pred == labels).sum())
    clean_total = int(labels.shape[0])
    notes: list[str] = []
    if clean_total == 0:
        notes.append("clean_acc: the test set is empty")
    if trigger is None:
        return BackdoorMetrics(_rate(clean_correct, clean_total), clean_correct, clean_total,
                               notes=tuple(notes))

    triggered_pred = _predict(model, test_images, transform=trigger.apply_uint8, **options)
    hit_target = triggered_pred == target
    kept_paper = clean_pred != target  # paper: drop images *predicted* as the target when clean
    if clean_label:
        kept_paper &= labels != target  # clean-label: drop the target class as well
    kept_true = labels != target  # BackdoorBench: drop images *labelled* as the target
    asr_hits, asr_total = int((hit_target & kept_paper).sum()), int(kept_paper.sum())
    true_hits, true_total = int((hit_target & kept_true).sum()), int(kept_true.sum())
    robust_correct = int(((triggered_pred == labels) & kept_true).sum())
    if asr_total == 0 and clean_total > 0:
        notes.append(f"asr: the model predicts the target class {target} for every clean test "
                     "image, so no image is left to attack")
    if true_total == 0 and clean_total > 0:
        notes.append(f"asr_true, robust_acc: every test image is labelled as the target class "
                     f"{target}")
    return BackdoorMetrics(
        clean_acc=_rate(clean_correct, clean_total),
        clean_correct=clean_correct,
        clean_total=clean_total,
        asr=_rate(asr_hits, asr_total),
        asr_hits=asr_hits,
        asr_total=asr_total,
        asr_true=_rate(true_hits, true_total),
        asr_true_hits=true_hits,
        asr_true_total=true_total,
        robust_acc=_rate(robust_correct, true_total),
        robust_correct=robust_correct,
        robust_total=true_total,
        notes=tuple(notes),
    )
