"""Backdoor poisoning: choose the samples, stamp the trigger, relabel, and record a manifest.

The protocol of the DAL paper's Section 5.6, after Weng et al. 2020: ``num_poison`` (100)
randomly chosen training images get the trigger and the target label (class 7 by default).
Here the candidates are the samples whose (possibly noisy) label is NOT the target class, so
every poison really is relabelled; ``num_poison`` of them are drawn uniformly without
replacement with ``torch.randperm`` on a CPU ``torch.Generator`` seeded by ``seed`` (same seed,
same indices on every machine). Images are uint8 ``(N, C, H, W)`` and are stamped through the
trigger's uint8 path (``Trigger.apply_uint8``), before any augmentation.

A :class:`PoisonManifest` records what was done (sorted indices, their labels before
poisoning, target class, trigger description, seed, counts) and a fingerprint:

    ``sha256`` = SHA-256 of the ASCII header ``"uint8 {k}x{C}x{H}x{W}\\n"`` followed by the
    C-contiguous bytes of the stamped images ``images[indices]`` (k = len(indices), in sorted
    index order, shape ``(k, C, H, W)``).

:meth:`PoisonManifest.apply` re-creates the poisoned set from the clean tensors and checks the
fingerprint, so a manifest cannot be silently applied to different data or a different trigger.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dal_backdoor.errors import ConfigError, DataNotFoundError
from dal_backdoor.io import atomic_write_json
from dal_backdoor.validation import check_number
from triggers import Trigger, trigger_from_description

MANIFEST_FORMAT = "dal-backdoor-poison-manifest"
MANIFEST_VERSION = 1
_MAX_SEED = 2**64 - 1


def _check_images_labels(images: torch.Tensor, labels: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        desc = (f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor)
                else type(images).__name__)
        raise ConfigError(f"poisoning needs uint8 images of shape (N, C, H, W), got {desc}")
    n = images.shape[0]
    if (not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64
            or tuple(labels.shape) != (n,)):
        desc = (f"{labels.dtype} {tuple(labels.shape)}" if isinstance(labels, torch.Tensor)
                else type(labels).__name__)
        raise ConfigError(f"poisoning needs int64 labels of shape ({n},), got {desc}")


def _check_target(target_class: int, num_classes: int) -> int:
    target = check_number("target_class", target_class, integer=True)
    if not 0 <= target < num_classes:
        raise ConfigError(f"target_class={target} is not in [0, {num_classes - 1}] "
                          f"({num_classes} classes)")
    return int(target)


def select_poison_indices(
    labels: torch.Tensor, num_poison: int, target_class: int, seed: int
) -> torch.Tensor:
    """Sorted int64 indices of ``num_poison`` samples drawn among those labelled != target.

    Uniform without replacement: the first ``num_poison`` entries of ``torch.randperm(pool)``
    on a CPU generator seeded with ``seed`` index the eligible samples (in index order).
    """
    s = int(check_number("seed", seed, low=0, high=_MAX_SEED, integer=True))
    labels = labels.cpu()
    eligible = torch.nonzero(labels != target_class).flatten()
    pool = int(eligible.numel())
    n = check_number("num_poison", num_poison, integer=True)
    if not 0 <= n <= pool:
        raise ConfigError(f"num_poison={n} is not in [0, {pool}]: {pool} of {labels.numel()} "
                          f"samples are eligible (label != target class {target_class})")
    gen = torch.Generator(device="cpu").manual_seed(s)
    chosen = eligible[torch.randperm(pool, generator=gen)[: int(n)]]
    return torch.sort(chosen).values


def stamp(images: torch.Tensor, trigger: Trigger) -> torch.Tensor:
    """The whole uint8 batch ``(B, C, H, W)`` with the trigger stamped, as a new tensor."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        got = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
        raise ConfigError(f"stamp needs uint8 images, got {got}")
    return trigger.apply_uint8(images)


def images_sha256(images: torch.Tensor) -> str:
    """SHA-256 of ``"uint8 {k}x{C}x{H}x{W}\\n"`` + the C-contiguous bytes of uint8 ``images``."""
    if images.dtype != torch.uint8:
        raise ConfigError(f"images_sha256 needs uint8 images, got {images.dtype}")
    header = "uint8 " + "x".join(str(d) for d in images.shape) + "\n"
    digest = hashlib.sha256(header.encode("ascii"))
    digest.update(images.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class PoisonManifest:
    """What :func:`poison` did, enough to re-create and verify it (see the module docstring).

    ``indices`` are sorted; ``original_labels[i]`` is the label of sample ``indices[i]``
    before poisoning; ``trigger`` is the trigger's ``describe()`` dict.
    """

    indices: tuple[int, ...]
    original_labels: tuple[int, ...]
    target_class: int
    trigger: dict[str, Any]
    seed: int
    num_poison: int
    num_samples: int
    sha256: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "indices", tuple(int(i) for i in self.indices))
        object.__setattr__(self, "original_labels", tuple(int(v) for v in self.original_labels))
        # a private JSON-normalised copy: the manifest never shares state with the caller
        object.__setattr__(self, "trigger", json.loads(json.dumps(dict(self.trigger))))
        self._validate()

    def __hash__(self) -> int:  # the generated one would fail on the ``trigger`` dict
        return hash((self.sha256, self.indices, self.target_class, self.num_samples))

    def _validate(self) -> None:
        k, n = len(self.indices), self.num_samples
        if len(self.original_labels) != k or self.num_poison != k:
            raise ConfigError(f"poison manifest is inconsistent: {k} indices, "
                              f"{len(self.original_labels)} original labels, num_poison="
                              f"{self.num_poison}")
        if list(self.indices) != sorted(set(self.indices)):
            raise ConfigError("poison manifest indices must be sorted and distinct")
        if k and (self.indices[0] < 0 or self.indices[-1] >= n):
            raise ConfigError(f"poison manifest indices must be in [0, {n}); got "
                              f"[{self.indices[0]}, {self.indices[-1]}]")
        if self.target_class in self.original_labels:
            raise ConfigError(f"poison manifest lists a sample already labelled with the target "
                              f"class {self.target_class}")
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise ConfigError(f"poison manifest sha256 {self.sha256!r} is not 64 hex digits")

    # -- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; :meth:`from_dict` of it (after JSON) equals ``self``."""
        return {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "num_samples": self.num_samples,
            "num_poison": self.num_poison,
            "target_class": self.target_class,
            "seed": self.seed,
            "trigger": json.loads(json.dumps(self.trigger)),
            "indices": list(self.indices),
            "original_labels": list(self.original_labels),
            "sha256": self.sha256,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PoisonManifest:
        """Parse :meth:`to_dict` output; a malformed dict is one ConfigError line."""
        if not isinstance(data, Mapping) or data.get("format") != MANIFEST_FORMAT:
            raise ConfigError(f"not a poison manifest (format is not {MANIFEST_FORMAT!r})")
        if data.get("version") != MANIFEST_VERSION:
            raise ConfigError(f"poison manifest version {data.get('version')!r} is not "
                              f"supported; allowed: {MANIFEST_VERSION}")
        fields = ("indices", "original_labels", "target_class", "trigger", "seed", "num_poison",
                  "num_samples", "sha256")
        missing = [f for f in fields if f not in data]
        if missing:
            raise ConfigError(f"poison manifest lacks {', '.join(missing)}")
        ints = {f: data[f] for f in ("target_class", "seed", "num_poison", "num_samples")}
        for name, value in ints.items():
            check_number(f"manifest {name}", value, low=0, integer=True)
        lists = {f: data[f] for f in ("indices", "original_labels")}
        for name, value in lists.items():
            if not isinstance(value, list) or not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in value):
                raise ConfigError(f"poison manifest {name} must be a list of integers")
        if not isinstance(data["trigger"], Mapping) or not isinstance(data["sha256"], str):
            raise ConfigError("poison manifest trigger must be a mapping and sha256 a string")
        return cls(indices=tuple(data["indices"]), original_labels=tuple(data["original_labels"]),
                   target_class=int(ints["target_class"]), trigger=dict(data["trigger"]),
                   seed=int(ints["seed"]), num_poison=int(ints["num_poison"]),
                   num_samples=int(ints["num_samples"]), sha256=data["sha256"])

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the manifest as JSON, atomically."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PoisonManifest:
        """Read a manifest written by :meth:`save`."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataNotFoundError(f"poison manifest not found: {path}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"poison manifest {path} is not valid JSON: {exc.msg} "
                              f"(line {exc.lineno})") from None
        return cls.from_dict(data)

    # -- re-creation ---------------------------------------------------------------------------

    def make_trigger(self) -> Trigger:
        """The trigger this manifest used."""
        return trigger_from_description(self.trigger)

    def apply(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor,
                                                                          torch.Tensor]:
        """Re-create the poisoned ``(images, labels)`` from the clean tensors, verified.

        Raises ConfigError if the data set size, the labels at the recorded indices or the
        fingerprint of the stamped images differ from the manifest (e.g. different data).
        """
        _check_images_labels(images, labels)
        if images.shape[0] != self.num_samples:
            raise ConfigError(f"poison manifest is for {self.num_samples} samples, got "
                              f"{images.shape[0]}")
        trigger = self.make_trigger()
        trigger.check_images(images)
        idx = torch.tensor(self.indices, dtype=torch.int64, device=labels.device)
        found = labels[idx].tolist()
        if found != list(self.original_labels):
            bad = next(i for i, (a, b) in enumerate(zip(found, self.original_labels, strict=True))
                       if a != b)
            raise ConfigError(f"labels do not match the poison manifest: sample "
                              f"{self.indices[bad]} has label {found[bad]}, manifest says "
                              f"{self.original_labels[bad]}")
        out_images, out_labels, stamped = _poison_at(images, labels, idx, trigger,
                                                     self.target_class)
        digest = images_sha256(stamped)
        if digest != self.sha256:
            raise ConfigError(f"poisoned images do not match the manifest: sha256 {digest[:12]}"
                              f"... != {self.sha256[:12]}... (different data or trigger?)")
        return out_images, out_labels


def _poison_at(
    images: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor, trigger: Trigger, target: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Copies of images/labels with ``idx`` stamped and relabelled, and the stamped rows."""
    out_images = images.clone()
    out_labels = labels.clone()
    idx = idx.to(images.device)
    stamped = trigger.apply_uint8(images[idx]) if idx.numel() else images[idx]
    out_images[idx] = stamped
    out_labels[idx.to(labels.device)] = target
    return out_images, out_labels, stamped


def poison(
    images: torch.Tensor,
    labels: torch.Tensor,
    trigger: Trigger,
    num_poison: int = 100,
    target_class: int = 7,
    seed: int = 0,
    *,
    num_classes: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, PoisonManifest]:
    """Poison ``num_poison`` samples labelled != ``target_class``; return NEW tensors + manifest.

    ``images`` uint8 ``(N, C, H, W)``, ``labels`` int64 ``(N,)`` (possibly noisy). The inputs
    are not modified. ``num_classes`` bounds ``target_class``; by default ``max(labels) + 1``.
    ``num_poison=0`` returns unchanged copies and an empty manifest.
    """
    _check_images_labels(images, labels)
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.numel() else 0
    k = int(check_number("num_classes", num_classes, low=0, integer=True))
    target = _check_target(target_class, k)
    if not isinstance(trigger, Trigger):
        raise ConfigError(f"trigger must be a triggers.Trigger, got {type(trigger).__name__}")
    trigger.check_images(images)
    idx = select_poison_indices(labels, num_poison, target, seed)
    original = labels.cpu()[idx]
    out_images, out_labels, stamped = _poison_at(images, labels, idx, trigger, target)
    manifest = PoisonManifest(
        indices=tuple(idx.tolist()), original_labels=tuple(original.tolist()),
        target_class=target, trigger=trigger.describe(), seed=int(seed),
        num_poison=int(idx.numel()), num_samples=int(images.shape[0]),
        sha256=images_sha256(stamped),
    )
    return out_images, out_labels, manifest


def poison_mask(num_samples: int, manifest: PoisonManifest) -> torch.Tensor:
    """Bool ``(num_samples,)`` tensor, True at the manifest's poisoned indices.

    ``num_samples`` must equal ``manifest.num_samples`` (a mask for other data is an error).
    """
    n = int(check_number("num_samples", num_samples, low=0, integer=True))
    if n != manifest.num_samples:
        raise ConfigError(f"num_samples={n} does not match the poison manifest's "
                          f"{manifest.num_samples} samples")
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.tensor(manifest.indices, dtype=torch.int64)] = True
    return mask
