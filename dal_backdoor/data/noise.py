"""Seeded label-noise generators: symmetric, asymmetric, instance-dependent, CIFAR-N, none.

:func:`make_noisy_labels` returns a :class:`NoisyLabels` record with the noisy labels, the mask
of flipped samples, the nominal / expected / actual rates and the empirical transition matrix.
All randomness comes from one CPU ``torch.Generator`` seeded with ``seed``: same seed, same
labels.

Conventions (Li et al., "Dynamics-Aware Loss", Sec. 5.1, and the references it follows):

- ``symmetric``: with probability ``rate`` a label is resampled uniformly from all K classes (the
  authors' convention, so the true class may be redrawn: expected flip rate ``rate*(K-1)/K``);
  ``exclude_true=True`` draws among the K-1 other classes instead (expected rate ``rate``).
- ``asymmetric``: CIFAR-10 truck->automobile, bird->airplane, deer->horse, cat<->dog (a
  simultaneous swap), each sample independently with probability ``rate``; CIFAR-100: each
  class to the next class of its superclass (classes of a superclass in index order, cyclic;
  e.g. bicycle->bus->motorcycle->pickup truck->train->bicycle); other data sets i -> i+1 mod K.
- ``instance``: Xia et al. 2020, "Part-dependent label noise", Algorithm 2 (the paper's [33]).
  ``features="raw"`` (the default of new runs) projects the raw 0-255 pixel values, as Xia et
  al.'s reference code does; ``"normalized"`` projects the normalised images (the only option,
  and so the meaning of a missing ``features``, of runs stored before the option existed).
- ``cifar-n``: the human labels of CIFAR-10N / CIFAR-100N (Wei et al. 2022) from the official
  ``.pt`` file; ``rate`` is ignored and the rate is measured.
- ``file``: noisy labels read from a ``.npy`` integer array (``labels_path``), e.g. the DAL
  authors' ``label/{kind}/{dataset}_{rate}.npy`` files (``dal-backdoor download dal-labels``);
  ``rate`` is ignored and the rate is measured. A run's config records the file's sha256
  (``labels_sha256``), so its run id changes with the file's content.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dal_backdoor.data.catalog import NOISE_KINDS
from dal_backdoor.data.catalog import list_noise_kinds as list_noise_kinds
from dal_backdoor.data.datasets import NORMALIZATION
from dal_backdoor.errors import ConfigError, DataNotFoundError
from dal_backdoor.validation import check_choice, check_number

#: Standard deviation of the per-sample flip rates of instance-dependent noise (Xia et al.).
INSTANCE_FLIP_STD = 0.1
#: What instance noise projects: raw 0-255 pixels (Xia et al.'s code; default of new runs) or
#: normalised images (legacy: what a stored config without ``features`` computed).
INSTANCE_FEATURES = ("raw", "normalized")
LEGACY_INSTANCE_FEATURES = "normalized"

# CIFAR-10 class indices: 0 airplane, 1 automobile, 2 bird, 3 cat, 4 deer, 5 dog, 7 horse,
# 9 truck. Each source class -> its target (cat and dog swap).
CIFAR10_ASYMMETRIC = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}


@dataclass(frozen=True, eq=False)
class NoisyLabels:
    """Noisy labels plus what is needed to report them.

    ``transition_matrix[i, j]`` is the share of samples of clean class i that carry noisy label
    j (rows normalised; a class without samples has a row of zeros). ``expected_rate`` is the
    flip rate the generator targets in expectation (None for measured CIFAR-N labels);
    ``actual_rate`` the measured share of flipped samples.
    """

    labels: torch.Tensor
    clean_labels: torch.Tensor
    flipped: torch.Tensor
    kind: str
    nominal_rate: float
    expected_rate: float | None
    actual_rate: float
    transition_matrix: torch.Tensor

    @property
    def num_flipped(self) -> int:
        return int(self.flipped.sum())

    @property
    def num_classes(self) -> int:
        return int(self.transition_matrix.shape[0])


@dataclass(frozen=True, eq=False)
class _Request:
    labels: torch.Tensor
    rate: float
    num_classes: int
    generator: torch.Generator
    dataset: str | None
    images: torch.Tensor | None
    coarse_labels: torch.Tensor | None
    exclude_true: bool
    cifar_n_path: str | os.PathLike[str] | None
    cifar_n_key: str | None
    labels_path: str | os.PathLike[str] | None = None
    labels_sha256: str | None = None
    features: str = LEGACY_INSTANCE_FEATURES


# A generator returns (noisy labels, expected flip rate or None).
# The kinds are declared (name, generator, info) in ``dal_backdoor.data.catalog``.
NoiseFn = Callable[[_Request], tuple[torch.Tensor, float | None]]


def make_noisy_labels(
    labels: torch.Tensor,
    kind: str,
    rate: float,
    num_classes: int,
    seed: int,
    *,
    dataset: str | None = None,
    images: torch.Tensor | None = None,
    coarse_labels: torch.Tensor | None = None,
    exclude_true: bool = False,
    cifar_n_path: str | os.PathLike[str] | None = None,
    cifar_n_key: str | None = None,
    labels_path: str | os.PathLike[str] | None = None,
    labels_sha256: str | None = None,
    features: str = LEGACY_INSTANCE_FEATURES,
) -> NoisyLabels:
    """Corrupt ``labels`` (int64, values in [0, num_classes)) with noise of ``kind``.

    ``rate`` must be in [0, 1). ``dataset`` picks the asymmetric map ("cifar10", "cifar100")
    and the normalisation of ``images`` for instance noise; ``coarse_labels`` (per sample) are
    needed for CIFAR-100 asymmetric noise, ``images`` for instance noise (``features``: "raw"
    or "normalized"), ``cifar_n_path`` (and optionally ``cifar_n_key``) for CIFAR-N,
    ``labels_path`` (and optionally the expected ``labels_sha256``) for ``file``. Raises
    ConfigError for invalid input.
    """
    fn = NOISE_KINDS.get(kind)
    num_classes = check_number("num_classes", num_classes, low=2, integer=True)
    rate = check_number("noise rate", rate, low=0, high=1, high_open=True)
    seed = check_number("seed", seed, low=0, integer=True)
    clean = _check_labels(labels, num_classes)
    request = _Request(
        labels=clean, rate=rate, num_classes=num_classes,
        generator=torch.Generator().manual_seed(seed), dataset=dataset, images=images,
        coarse_labels=coarse_labels, exclude_true=bool(exclude_true),
        cifar_n_path=cifar_n_path, cifar_n_key=cifar_n_key, labels_path=labels_path,
        labels_sha256=labels_sha256, features=check_choice("instance features", features,
                                                           INSTANCE_FEATURES),
    )
    noisy, expected = fn(request)
    flipped = noisy != clean
    actual = float(flipped.double().mean()) if clean.numel() else 0.0
    return NoisyLabels(
        labels=noisy, clean_labels=clean, flipped=flipped, kind=kind, nominal_rate=rate,
        expected_rate=expected, actual_rate=actual,
        transition_matrix=transition_matrix(clean, noisy, num_classes),
    )


def transition_matrix(clean: torch.Tensor, noisy: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Empirical K x K float64 matrix: row i = distribution of noisy labels of clean class i."""
    k = num_classes
    counts = torch.bincount(clean * k + noisy, minlength=k * k).view(k, k).double()
    totals = counts.sum(dim=1, keepdim=True)
    return torch.where(totals > 0, counts / totals.clamp_min(1), torch.zeros_like(counts))


def _check_labels(labels: Any, num_classes: int) -> torch.Tensor:
    t = torch.as_tensor(labels)
    if t.ndim != 1 or t.dtype.is_floating_point or t.dtype == torch.bool:
        raise ConfigError(f"labels must be a 1-D integer tensor, got {t.dtype} "
                          f"{tuple(t.shape)}")
    t = t.to(torch.int64).cpu()
    if t.numel() and (t.min() < 0 or t.max() >= num_classes):
        raise ConfigError(f"labels must be in [0, {num_classes}), got "
                          f"[{int(t.min())}, {int(t.max())}]")
    return t


# -- none / symmetric ------------------------------------------------------------------------

def _none(req: _Request) -> tuple[torch.Tensor, float | None]:
    """Identity (clean labels); the rate must be 0."""
    if req.rate != 0:
        raise ConfigError(f"noise kind 'none' needs rate 0, got {req.rate:g}")
    return req.labels.clone(), 0.0


def _symmetric(req: _Request) -> tuple[torch.Tensor, float | None]:
    """With probability ``rate`` resample uniformly (from all K, or the K-1 others)."""
    n, k, gen = req.labels.numel(), req.num_classes, req.generator
    resample = torch.rand(n, generator=gen) < req.rate
    if req.exclude_true:
        new = (req.labels + torch.randint(1, k, (n,), generator=gen)) % k
        expected = req.rate
    else:
        new = torch.randint(0, k, (n,), generator=gen)
        expected = req.rate * (k - 1) / k
    return torch.where(resample, new, req.labels), expected


# -- asymmetric ----------------------------------------------------------------------------

def asymmetric_map(
    num_classes: int,
    dataset: str | None = None,
    *,
    labels: torch.Tensor | None = None,
    coarse_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """The (K,) int64 class -> target map of asymmetric noise (identity where nothing flips).

    CIFAR-100 needs the per-sample ``labels`` and ``coarse_labels`` to learn each class's
    superclass; a class absent from ``labels`` maps to itself.
    """
    k = num_classes
    if dataset == "cifar10":
        if k != 10:
            raise ConfigError(f"cifar10 asymmetric noise needs 10 classes, got {k}")
        target = torch.arange(k)
        for src, dst in CIFAR10_ASYMMETRIC.items():
            target[src] = dst
        return target
    if dataset == "cifar100":
        return _superclass_cycle(k, labels, coarse_labels)
    return (torch.arange(k) + 1) % k


def _superclass_cycle(
    k: int, labels: torch.Tensor | None, coarse_labels: torch.Tensor | None
) -> torch.Tensor:
    if coarse_labels is None or labels is None:
        raise ConfigError("cifar100 asymmetric noise needs coarse_labels (the superclass of "
                          "each sample, as loaded by create_dataset('cifar100', ...))")
    coarse = torch.as_tensor(coarse_labels).to(torch.int64).cpu()
    if coarse.shape != labels.shape:
        raise ConfigError(f"coarse_labels has shape {tuple(coarse.shape)}, labels "
                          f"{tuple(labels.shape)}; need one superclass per sample")
    pairs = torch.unique(torch.stack([labels, coarse], dim=1), dim=0)
    fine, sup = pairs[:, 0], pairs[:, 1]
    if torch.unique(fine).numel() != fine.numel():
        bad = int(fine[torch.nonzero(fine[1:] == fine[:-1])[0, 0]])
        raise ConfigError(f"coarse_labels are inconsistent: class {bad} appears in more than "
                          f"one superclass")
    target = torch.arange(k)
    for s in torch.unique(sup).tolist():
        members = torch.sort(fine[sup == s]).values
        target[members] = torch.roll(members, -1)
    return target


def _asymmetric(req: _Request) -> tuple[torch.Tensor, float | None]:
    """Each sample of a mapped class moves to its target with probability ``rate``."""
    target = asymmetric_map(req.num_classes, req.dataset, labels=req.labels,
                            coarse_labels=req.coarse_labels)[req.labels]
    flip = torch.rand(req.labels.numel(), generator=req.generator) < req.rate
    movable = target != req.labels
    expected = req.rate * float(movable.double().mean()) if req.labels.numel() else 0.0
    return torch.where(flip & movable, target, req.labels), expected


# -- instance-dependent (Xia et al. 2020, Algorithm 2) ---------------------------------------

def truncated_normal_mean(mean: float, std: float, low: float = 0.0, high: float = 1.0) -> float:
    """Mean of N(mean, std^2) truncated to [low, high] (closed form)."""
    a, b = (low - mean) / std, (high - mean) / std
    pdf = lambda z: math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    return mean + std * (pdf(a) - pdf(b)) / (cdf(b) - cdf(a))


def _truncated_normal(n: int, mean: float, std: float, gen: torch.Generator) -> torch.Tensor:
    """``n`` draws of N(mean, std^2) truncated to [0, 1], by inverting the CDF (float64)."""
    lo = torch.special.ndtr(torch.tensor((0.0 - mean) / std, dtype=torch.float64))
    hi = torch.special.ndtr(torch.tensor((1.0 - mean) / std, dtype=torch.float64))
    u = lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)
    return (mean + std * torch.special.ndtri(u)).clamp_(0.0, 1.0)


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std of uint8 ``images`` (N, C, ...) scaled to [0, 1], in chunks."""
    c = images.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    squares = torch.zeros(c, dtype=torch.float64)
    dims = (0, *range(2, images.ndim))
    for chunk in images.split(4096):
        x = chunk.to(torch.float32)
        total += x.sum(dim=dims).double()
        squares += x.square_().sum(dim=dims).double()
    count = images.numel() / c
    mean = total / count / 255.0
    std = (squares / count / 255.0**2 - mean * mean).clamp_min(1e-12).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


def _normalizer(
    images: torch.Tensor, dataset: str | None
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(mean, std) broadcastable to ``images`` for uint8 input, None for float input.

    The data set's published constants when ``dataset`` is known (and has as many channels),
    else the per-channel statistics of ``images`` themselves.
    """
    if images.dtype != torch.uint8:
        return None
    if images.ndim != 4:
        raise ConfigError(f"instance noise needs images of shape (N, C, H, W), got "
                          f"{tuple(images.shape)}")
    c = images.shape[1]
    mean, std = NORMALIZATION.get(dataset or "", ((), ()))
    if len(mean) != c:
        mean, std = _channel_stats(images)
    shape = (1, c, 1, 1)
    return (torch.tensor(mean, dtype=torch.float32).view(shape),
            torch.tensor(std, dtype=torch.float32).view(shape))


def _features(
    images: torch.Tensor, rows: torch.Tensor, norm: tuple[torch.Tensor, torch.Tensor] | None
) -> torch.Tensor:
    """Images ``rows`` flattened to float32, normalised when ``norm`` is given."""
    x = images[rows]
    if norm is None:
        return x.reshape(rows.numel(), -1).to(torch.float32)
    mean, std = norm
    return ((x.to(torch.float32) / 255.0 - mean) / std).reshape(rows.numel(), -1)


def _instance(req: _Request) -> tuple[torch.Tensor, float | None]:
    """Part-dependent noise (Xia et al. 2020, Alg. 2), vectorised per class.

    Per-sample flip rates q_i ~ N(rate, 0.1^2) truncated to [0, 1]; W has shape (K, D, K) with
    N(0, 1) entries (drawn one (D, K) block per class); for a sample x with label y the scores
    are x W[y] with the y-th set to -inf, and the noisy label is drawn from
    q_i * softmax(scores) + (1 - q_i) * onehot(y). ``x`` is the flattened image: with
    ``features="raw"`` its pixel values as stored (0-255 for uint8 images, as Xia et al.'s code
    projects them; flattened in (C, H, W) order where their code flattens (H, W, C): W is i.i.d.,
    so the noise distribution is the same); with ``"normalized"`` uint8 images (N, C, H, W) are
    normalised with the named data set's mean/std (else with their own per-channel
    statistics). Float images are taken as given. ``rate == 0`` means no noise (one
    version of the reference code special-cases it the same way; otherwise the truncation at 0
    would still flip about 8% of the labels).
    """
    labels, k, gen = req.labels, req.num_classes, req.generator
    n = labels.numel()
    if req.images is None:
        raise ConfigError("instance noise needs the training images (images=...)")
    images = torch.as_tensor(req.images).cpu()
    if images.shape[0] != n:
        raise ConfigError(f"instance noise got {images.shape[0]} images for {n} labels")
    if req.rate == 0 or n == 0:
        return labels.clone(), 0.0
    norm = _normalizer(images, req.dataset) if req.features == "normalized" else None
    flip_rate = _truncated_normal(n, req.rate, INSTANCE_FLIP_STD, gen)
    u = torch.rand(n, generator=gen, dtype=torch.float64)
    dim = int(np.prod(images.shape[1:]))
    noisy = labels.clone()
    for y in range(k):
        w = torch.randn((dim, k), generator=gen)  # W[y]; drawn for every class, in order
        rows = torch.nonzero(labels == y).flatten()
        for chunk in rows.split(4096):
            scores = (_features(images, chunk, norm) @ w).double()
            scores[:, y] = -math.inf
            q = flip_rate[chunk, None]
            probs = q * torch.softmax(scores, dim=1)
            probs[:, y] = 1.0 - flip_rate[chunk]
            cdf = torch.cumsum(probs, dim=1)
            pick = (cdf < u[chunk, None] * cdf[:, -1:]).sum(dim=1).clamp_(max=k - 1)
            noisy[chunk] = pick
    return noisy, truncated_normal_mean(req.rate, INSTANCE_FLIP_STD)


# -- CIFAR-N (Wei et al. 2022) ---------------------------------------------------------------

_NUMPY_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
_INT_DTYPES = (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)


def _numpy_safe_globals() -> list[Any]:
    """The numpy array constructors a ``weights_only`` load must allow for CIFAR-N files.

    The official ``CIFAR-10_human.pt`` / ``CIFAR-100_human.pt`` are ``torch.save``d dicts of
    numpy arrays. Rebuilding an array needs ``numpy.core.multiarray._reconstruct`` (named
    ``numpy._core...`` by numpy 2), ``numpy.ndarray`` and ``numpy.dtype`` (plus the integer
    dtype classes): data-only constructors, so allowing them keeps the load safe, while any
    other global in the file is still refused.
    """
    entries: list[Any] = [
        (_NUMPY_RECONSTRUCT, "numpy.core.multiarray._reconstruct"),
        (_NUMPY_RECONSTRUCT, "numpy._core.multiarray._reconstruct"),
        np.ndarray,
        np.dtype,
    ]
    for t in _INT_DTYPES:
        cls = type(np.dtype(t))
        entries.append((cls, f"numpy.dtypes.{cls.__name__}"))
    return entries


def load_cifar_n(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a CIFAR-N ``.pt`` file (dict of label arrays) safely (``weights_only=True``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataNotFoundError(f"CIFAR-N file {path} not found; download CIFAR-10_human.pt / "
                                f"CIFAR-100_human.pt from https://github.com/UCSC-REAL/"
                                f"cifar-10-100n (data/)")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file is one clear error, whatever the cause
        raise ConfigError(f"cannot read CIFAR-N file {path}: {_load_failure(exc)}") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"CIFAR-N file {path} holds a {type(obj).__name__}, expected a dict "
                          f"of label arrays")
    return {str(key): np.asarray(value) for key, value in obj.items()}


def _load_failure(exc: BaseException) -> str:
    """A one-line reason for a failed ``torch.load`` (its messages span many lines)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    refused = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if refused:
        return (f"it holds objects other than label arrays (refused to unpickle "
                f"{refused.group(1)})")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    first = first.split(". ")[0]  # the first sentence; torch appends paragraphs of advice
    return first if len(first) <= 160 else first[:157] + "..."


def _default_cifar_n_key(keys: list[str]) -> str | None:
    for key in ("worse_label", "noisy_label"):
        if key in keys:
            return key
    return None


def _cifar_n(req: _Request) -> tuple[torch.Tensor, float | None]:
    """Human labels from a CIFAR-N file; ``cifar_n_key`` defaults to worse_label/noisy_label."""
    if req.cifar_n_path is None:
        raise ConfigError("cifar-n noise needs the CIFAR-N label file (cifar_n_path=..., "
                          "--cifar-n-file)")
    table = load_cifar_n(req.cifar_n_path)
    keys = sorted(table)
    key = req.cifar_n_key or _default_cifar_n_key(keys)
    if key not in table:
        raise ConfigError(f"unknown CIFAR-N key {key!r} in {req.cifar_n_path}; available: "
                          f"{', '.join(keys)}")
    n, k = req.labels.numel(), req.num_classes
    noisy = _label_array(table[key], key, req.cifar_n_path, n, k)
    if "clean_label" in table:
        clean = _label_array(table["clean_label"], "clean_label", req.cifar_n_path, n, k)
        mismatch = int((clean != req.labels).sum())
        if mismatch:
            raise ConfigError(f"clean_label in {req.cifar_n_path} differs from the data set's "
                              f"labels at {mismatch} of {n} samples; is it the file for this "
                              f"data set (CIFAR-10N vs CIFAR-100N, full training set)?")
    return noisy, None


def _label_array(
    values: np.ndarray, key: str, path: str | os.PathLike[str], n: int, k: int
) -> torch.Tensor:
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
        raise ConfigError(f"{key!r} in {path} is not a 1-D integer array "
                          f"({values.dtype} {values.shape})")
    if values.shape[0] != n:
        raise ConfigError(f"{key!r} in {path} has {values.shape[0]} labels but the data set "
                          f"has {n} samples; CIFAR-N labels cover the full training set")
    t = torch.from_numpy(values.astype(np.int64))
    if n and (t.min() < 0 or t.max() >= k):
        raise ConfigError(f"{key!r} in {path} has labels outside [0, {k})")
    return t


# -- labels from a file (e.g. the DAL authors' label/{kind}/{dataset}_{rate}.npy) -------------

def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes (read in chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_label_file(path: str | os.PathLike[str], num_samples: int | None = None,
                    num_classes: int | None = None) -> torch.Tensor:
    """A ``.npy`` file of integer labels as an int64 tensor, checked against the training split
    (``num_samples`` labels, values in [0, ``num_classes``)); a ConfigError says what is wrong."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataNotFoundError(f"label file {path} not found; the DAL authors' files: "
                                f"dal-backdoor download dal-labels")
    try:
        values = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ConfigError(f"cannot read label file {path} as a .npy array: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                          ) from None
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
        raise ConfigError(f"label file {path} holds a {values.dtype} array of shape "
                          f"{values.shape}; allowed: a 1-D integer array")
    if num_samples is not None and values.shape[0] != num_samples:
        raise ConfigError(f"label file {path} has {values.shape[0]} labels but the training "
                          f"split has {num_samples}; allowed: one label per training sample")
    labels = torch.from_numpy(values.astype(np.int64))
    if num_classes is not None and labels.numel() and (labels.min() < 0
                                                       or labels.max() >= num_classes):
        raise ConfigError(f"label file {path} has labels in [{int(labels.min())}, "
                          f"{int(labels.max())}]; allowed: [0, {num_classes})")
    return labels


def _file(req: _Request) -> tuple[torch.Tensor, float | None]:
    """Noisy labels from ``labels_path`` (checked against ``labels_sha256`` when given)."""
    if req.labels_path is None:
        raise ConfigError("file noise needs a label file (noise param labels_path=FILE.npy)")
    noisy = load_label_file(req.labels_path, req.labels.numel(), req.num_classes)
    if req.labels_sha256 is not None and file_sha256(req.labels_path) != req.labels_sha256:
        raise ConfigError(f"label file {req.labels_path} changed since the run was configured "
                          f"(sha256 differs from {req.labels_sha256[:12]}...)")
    return noisy, None


def resolve_noise_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The noise options of a new run with their defaults filled in: instance noise gets
    ``features="raw"``; ``file`` noise gets the label file's ``labels_sha256`` (the file must
    exist and, if a sha256 was given, match it)."""
    out = dict(params)
    for key, owner in (("features", "instance"), ("labels_path", "file"),
                       ("labels_sha256", "file")):
        if key in out and kind != owner:
            raise ConfigError(f"noise option {key} is for noise kind {owner}, not {kind}")
    if kind == "instance":
        out.setdefault("features", INSTANCE_FEATURES[0])
        check_choice("instance features", out["features"], INSTANCE_FEATURES)
    if kind == "file":
        if not out.get("labels_path"):
            raise ConfigError("file noise needs a label file (noise param labels_path=FILE.npy)")
        path = Path(str(out["labels_path"])).expanduser()
        if not path.is_file():
            raise DataNotFoundError(f"label file {path} not found; the DAL authors' files: "
                                    f"dal-backdoor download dal-labels")
        digest = file_sha256(path)
        if out.get("labels_sha256") not in (None, digest):
            raise ConfigError(f"label file {path} has sha256 {digest[:12]}..., not the given "
                              f"labels_sha256 {str(out['labels_sha256'])[:12]}...")
        out["labels_path"], out["labels_sha256"] = str(path), digest
    return out


def noise_seed(noise_seed_value: int | None, legacy_seed: int) -> int:
    """The seed of a run's noise draw: its ``noise_seed``, or (None: runs stored before the
    field existed) ``legacy_seed``, the seed the trainer derives from the training seed."""
    return legacy_seed if noise_seed_value is None else int(noise_seed_value)


def noisy_labels_for_run(cfg: Any, train: Any, legacy_seed: int) -> NoisyLabels:
    """The noisy labels of a run (``RunConfig`` ``cfg``) on its full training split ``train``
    (an ``ImageDataset``); ``legacy_seed`` is used when ``cfg.noise_seed`` is None."""
    from dal_backdoor.config import check_noise_params

    return make_noisy_labels(
        train.labels, cfg.noise_kind, cfg.noise_rate, train.num_classes,
        noise_seed(cfg.noise_seed, legacy_seed), dataset=cfg.dataset, images=train.images,
        coarse_labels=train.coarse_labels, **check_noise_params(cfg.noise_params),
    )


def describe_noise_source(config: dict[str, Any]) -> str:
    """One phrase saying where a run's noisy labels came from (for reports)."""
    kind = config.get("noise_kind", "none")
    params = config.get("noise_params") or {}
    if kind == "none":
        return "clean labels"
    if kind == "file":
        return (f"label file {Path(str(params.get('labels_path', '?'))).name} "
                f"(sha256 {str(params.get('labels_sha256', '?'))[:12]})")
    if kind == "cifar-n":
        return "CIFAR-N human labels"
    seed = config.get("noise_seed")
    if seed is None:
        return "drawn per training seed"
    return f"drawn with noise seed {seed}"
