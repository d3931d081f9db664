"""Backdoor poisoning: choose the samples, stamp the trigger, relabel, and record a manifest.

The protocol of the DAL paper's Section 5.6, after Weng et al. 2020: ``num_poison`` (100)
randomly chosen training images get the trigger and the target label (class 7 by default).

Two threat models (``TriggerInfo.clean_label`` in ``triggers.catalog``, recorded in the
manifest as ``label_mode``):

- dirty-label (every trigger but ``sig``): the candidates are the samples whose (possibly noisy)
  label is NOT the target class, so every poison really is relabelled;
- clean-label (``sig``, Barni et al. 2019): the candidates are the samples whose label IS the
  target class; they get the trigger and keep their labels.

``num_poison`` candidates are drawn uniformly without replacement with ``torch.randperm`` on a
CPU ``torch.Generator`` seeded by ``seed`` (same seed, same indices on every machine). Images are
uint8 ``(N, C, H, W)`` and are stamped through the trigger's uint8 path
(``Trigger.apply_uint8``), before any augmentation.

WaNet's noise mode (``cross_ratio`` > 0, only for triggers with ``TriggerInfo.noise_mode``):
``round(cross_ratio * num_poison)`` further samples, drawn among the NOT poisoned ones with
``torch.randperm`` on a generator seeded by ``cross_seed``, are warped with a random noise grid
(``warp_with_noise``, drawing from the same generator after the selection) and keep their
labels. The manifest records their sorted indices, ``cross_seed`` and ``cross_sha256`` (the same
fingerprint as below, of the warped images in index order).

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
from triggers.base import float_to_uint8
from triggers.catalog import TRIGGERS
from triggers.info import TriggerInfo

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
    labels: torch.Tensor, num_poison: int, target_class: int, seed: int, *,
    clean_label: bool = False,
) -> torch.Tensor:
    """Sorted int64 indices of ``num_poison`` samples drawn among those labelled != target
    (``clean_label``: among those labelled == target).

    Uniform without replacement: the first ``num_poison`` entries of ``torch.randperm(pool)``
    on a CPU generator seeded with ``seed`` index the eligible samples (in index order).
    """
    s = int(check_number("seed", seed, low=0, high=_MAX_SEED, integer=True))
    labels = labels.cpu()
    eligible = torch.nonzero((labels == target_class) if clean_label
                             else (labels != target_class)).flatten()
    pool = int(eligible.numel())
    n = check_number("num_poison", num_poison, integer=True)
    if not 0 <= n <= pool:
        rule = "==" if clean_label else "!="
        raise ConfigError(f"num_poison={n} is not in [0, {pool}]: {pool} of {labels.numel()} "
                          f"samples are eligible (label {rule} target class {target_class})")
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
    before poisoning; ``trigger`` is the trigger's ``describe()`` dict. ``clean_label`` is the
    threat model (JSON ``label_mode``: ``"clean"`` or ``"dirty"``; a manifest without it is
    dirty-label). ``cross_indices``, ``cross_seed`` and ``cross_sha256`` describe WaNet's
    noise-mode samples (empty/0/"" without them; written to JSON only when present).
    """

    indices: tuple[int, ...]
    original_labels: tuple[int, ...]
    target_class: int
    trigger: dict[str, Any]
    seed: int
    num_poison: int
    num_samples: int
    sha256: str
    clean_label: bool = False
    cross_indices: tuple[int, ...] = ()
    cross_seed: int = 0
    cross_sha256: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "indices", tuple(int(i) for i in self.indices))
        object.__setattr__(self, "cross_indices", tuple(int(i) for i in self.cross_indices))
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
        if self.clean_label and any(v != self.target_class for v in self.original_labels):
            raise ConfigError(f"clean-label poison manifest lists a sample not labelled with "
                              f"the target class {self.target_class}")
        if not self.clean_label and self.target_class in self.original_labels:
            raise ConfigError(f"poison manifest lists a sample already labelled with the target "
                              f"class {self.target_class}")
        _check_sha("sha256", self.sha256)
        self._validate_cross()

    def _validate_cross(self) -> None:
        cross, n = self.cross_indices, self.num_samples
        if not cross:
            return
        if list(cross) != sorted(set(cross)) or cross[0] < 0 or cross[-1] >= n:
            raise ConfigError(f"poison manifest cross_indices must be sorted, distinct and in "
                              f"[0, {n})")
        if set(cross) & set(self.indices):
            raise ConfigError("poison manifest cross_indices overlap the poisoned indices")
        _check_sha("cross_sha256", self.cross_sha256)

    @property
    def label_mode(self) -> str:
        """``"clean"`` or ``"dirty"`` (the threat model)."""
        return "clean" if self.clean_label else "dirty"

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
            "label_mode": self.label_mode,
            **({"cross_indices": list(self.cross_indices), "cross_seed": self.cross_seed,
                "cross_sha256": self.cross_sha256} if self.cross_indices else {}),
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
                   num_samples=int(ints["num_samples"]), sha256=data["sha256"],
                   clean_label=_label_mode(data) == "clean", **_cross_fields(data))

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
        _check_digest("poisoned", stamped, self.sha256)
        if self.cross_indices:
            cross, gen = select_cross_indices(self.num_samples, idx, len(self.cross_indices),
                                              self.cross_seed)
            if tuple(cross.tolist()) != self.cross_indices:
                raise ConfigError("noise-mode indices do not match the poison manifest "
                                  f"(cross_seed {self.cross_seed})")
            warped = _warp_cross(out_images, cross, trigger, gen)
            _check_digest("noise-mode", warped, self.cross_sha256)
        return out_images, out_labels


def _check_sha(name: str, value: str) -> None:
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ConfigError(f"poison manifest {name} {value!r} is not 64 hex digits")


def _check_digest(what: str, images: torch.Tensor, expected: str) -> None:
    digest = images_sha256(images)
    if digest != expected:
        raise ConfigError(f"{what} images do not match the manifest: sha256 {digest[:12]}"
                          f"... != {expected[:12]}... (different data or trigger?)")


def _label_mode(data: Mapping[str, Any]) -> str:
    mode = data.get("label_mode", "dirty")
    if mode not in ("dirty", "clean"):
        raise ConfigError(f"poison manifest label_mode {mode!r} is not allowed; allowed: "
                          "dirty, clean")
    return str(mode)


def _cross_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    if "cross_indices" not in data:
        return {}
    cross, seed, sha = data["cross_indices"], data.get("cross_seed"), data.get("cross_sha256")
    if not isinstance(cross, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in cross):
        raise ConfigError("poison manifest cross_indices must be a list of integers")
    check_number("manifest cross_seed", seed, low=0, high=_MAX_SEED, integer=True)
    if not isinstance(sha, str):
        raise ConfigError("poison manifest cross_sha256 must be a string")
    return {"cross_indices": tuple(cross), "cross_seed": int(seed), "cross_sha256": sha}


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


def trigger_threat_model(trigger: Trigger) -> TriggerInfo | None:
    """The catalog's ``TriggerInfo`` of a registered trigger (None for an unregistered one,
    e.g. a test's own subclass, which is then dirty-label without noise mode)."""
    return TRIGGERS.info(trigger.name) if trigger.name in TRIGGERS else None


def is_clean_label(trigger: Trigger) -> bool:
    """Whether the trigger's declared threat model is clean-label (``TriggerInfo.clean_label``)."""
    info = trigger_threat_model(trigger)
    return bool(info is not None and info.clean_label)


def num_cross_samples(cross_ratio: float, num_poison: int, trigger: Trigger) -> int:
    """``round(cross_ratio * num_poison)``; cross_ratio > 0 needs a noise-mode trigger."""
    ratio = float(check_number("cross_ratio", cross_ratio, low=0))
    if ratio == 0:
        return 0
    info = trigger_threat_model(trigger)
    if info is None or not info.noise_mode:
        allowed = ", ".join(n for n in TRIGGERS.names() if TRIGGERS.info(n).noise_mode)
        raise ConfigError(f"cross_ratio={ratio:g} needs a trigger with a noise mode; trigger "
                          f"{trigger.name!r} has none (allowed: {allowed}, or cross_ratio=0)")
    return round(ratio * int(num_poison))


def select_cross_indices(num_samples: int, poisoned: torch.Tensor, count: int,
                         seed: int) -> tuple[torch.Tensor, torch.Generator]:
    """Sorted indices of ``count`` samples drawn among the ``num_samples`` not in ``poisoned``
    (the first ``count`` of ``torch.randperm(pool)`` on a generator seeded with ``seed``), and
    that generator, which then draws the noise grids."""
    s = int(check_number("cross_seed", seed, low=0, high=_MAX_SEED, integer=True))
    keep = torch.ones(num_samples, dtype=torch.bool)
    keep[poisoned.cpu()] = False
    pool = torch.nonzero(keep).flatten()
    if count > pool.numel():
        raise ConfigError(f"{count} noise-mode samples (cross_ratio * num_poison) exceed the "
                          f"{pool.numel()} samples that are not poisoned")
    gen = torch.Generator(device="cpu").manual_seed(s)
    chosen = pool[torch.randperm(int(pool.numel()), generator=gen)[:count]]
    return torch.sort(chosen).values, gen


def _warp_cross(images: torch.Tensor, idx: torch.Tensor, trigger: Trigger,
                gen: torch.Generator) -> torch.Tensor:
    """Warp ``images[idx]`` with noise IN PLACE (uint8 round trip); return the warped rows."""
    idx = idx.to(images.device)
    warped = float_to_uint8(trigger.warp_with_noise(images[idx].float().div_(255.0), gen))
    images[idx] = warped
    return warped


def poison(
    images: torch.Tensor,
    labels: torch.Tensor,
    trigger: Trigger,
    num_poison: int = 100,
    target_class: int = 7,
    seed: int = 0,
    *,
    num_classes: int | None = None,
    clean_label: bool | None = None,
    cross_ratio: float = 0.0,
    cross_seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, PoisonManifest]:
    """Poison ``num_poison`` samples; return NEW tensors + manifest (see the module docstring).

    ``images`` uint8 ``(N, C, H, W)``, ``labels`` int64 ``(N,)`` (possibly noisy). The inputs
    are not modified. ``num_classes`` bounds ``target_class``; by default ``max(labels) + 1``.
    ``clean_label`` (default: the trigger's declared threat model) draws the poisons from the
    target class and keeps their labels; otherwise samples labelled != ``target_class`` are
    poisoned and relabelled. ``cross_ratio`` > 0 adds WaNet's noise-mode samples.
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
    clean = is_clean_label(trigger) if clean_label is None else bool(clean_label)
    num_cross = num_cross_samples(cross_ratio, num_poison, trigger)
    idx = select_poison_indices(labels, num_poison, target, seed, clean_label=clean)
    original = labels.cpu()[idx]
    out_images, out_labels, stamped = _poison_at(images, labels, idx, trigger, target)
    cross_fields: dict[str, Any] = {}
    if num_cross:
        cross, gen = select_cross_indices(int(images.shape[0]), idx, num_cross, cross_seed)
        warped = _warp_cross(out_images, cross, trigger, gen)
        cross_fields = {"cross_indices": tuple(cross.tolist()), "cross_seed": int(cross_seed),
                        "cross_sha256": images_sha256(warped)}
    manifest = PoisonManifest(
        indices=tuple(idx.tolist()), original_labels=tuple(original.tolist()),
        target_class=target, trigger=trigger.describe(), seed=int(seed),
        num_poison=int(idx.numel()), num_samples=int(images.shape[0]),
        sha256=images_sha256(stamped), clean_label=clean, **cross_fields,
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
