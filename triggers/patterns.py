"""Trigger patterns: reading a user's pattern file, and fitting a pattern to an image shape.

A pattern is a float64 CPU tensor ``(C, H, W)`` with values in [0, 1] and ``C`` 1 or 3. Files:

- images that Pillow reads (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.gif``, ``.tif``,
  ``.tiff``, ``.webp``), 8 bits per channel: grey-scale modes (``1``, ``L``, ``LA``) give one
  channel, every other mode is converted to RGB (an alpha channel is dropped); values are
  ``v / 255``;
- ``.npy`` arrays, and ``.npz`` archives holding exactly one array: dtype uint8 (``v / 255``)
  or float in [0, 1]; shape ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)`` with ``C`` 1 or 3
  (``(H, W, C)`` is tried first); leading axes of length 1 are dropped, so Weng et al.'s
  ``(1, 32, 32, 3)`` is accepted. Pickled (object) arrays are refused.

Adapting a pattern to an image (:func:`adapt_pattern`):

- channels: a 1-channel pattern is repeated on every image channel; a 3-channel (RGB) pattern
  on a 1-channel image becomes its luminance with the ITU-R BT.601 weights
  ``Y = 0.299 R + 0.587 G + 0.114 B`` (computed in float64); other combinations are an error;
- size (``fit``): ``exact`` (the pattern must have the region's size), ``crop`` (a centred
  crop, top-left at ``((h - H) // 2, (w - W) // 2)``; the pattern must be at least as large),
  ``resize`` (bilinear, ``torch.nn.functional.interpolate(mode="bilinear",
  align_corners=False, antialias=True)`` in float64), ``auto`` (crop when the pattern is at
  least as large as the region in both directions, else resize).

The run id must change when a pattern file's content changes: :func:`resolve_pattern_params`
adds the file's SHA-256 as ``pattern_sha256`` to a trigger's parameters (``resolve_config``
calls it), and a trigger built with a recorded ``pattern_sha256`` refuses a file whose content
no longer matches it.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dal_backdoor.errors import ConfigError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
ARRAY_SUFFIXES = (".npy", ".npz")
FIT_MODES = ("exact", "crop", "resize", "auto")
#: ITU-R BT.601 luma weights (R, G, B) for a colour pattern on grey-scale images.
LUMA_BT601 = (0.299, 0.587, 0.114)
_GREY_MODES = ("1", "L", "LA")
_UNSUPPORTED_MODES = ("I", "I;16", "I;16B", "I;16L", "F")


@dataclass(frozen=True)
class PatternFile:
    """A pattern read from ``path``: its content hash and its values ``(C, H, W)`` in [0, 1]."""

    path: str
    sha256: str
    pattern: torch.Tensor


def _read_bytes(path: str | os.PathLike[str]) -> bytes:
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"pattern file {str(path)!r} does not exist or is not a file")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"pattern file {str(path)!r} cannot be read ({exc.strerror})") from None


def _read_image(data: bytes, path: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode in _UNSUPPORTED_MODES:
                raise ConfigError(f"pattern file {path!r} is a {img.mode} (16-bit or float) "
                                  "image; allowed: 8-bit grey-scale or colour, or a .npy array")
            img = img.convert("L" if img.mode in _GREY_MODES else "RGB")
            return np.asarray(img, dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"pattern file {path!r} is not a readable image ({exc})") from None


def _read_array(data: bytes, suffix: str, path: str) -> np.ndarray:
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ConfigError(f"pattern file {path!r} is not a readable {suffix} file "
                          f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                          ) from None
    if suffix == ".npy":
        if not isinstance(loaded, np.ndarray):
            raise ConfigError(f"pattern file {path!r} does not hold a .npy array")
        return loaded
    with loaded as archive:
        keys = list(archive.files)
        if len(keys) != 1:
            raise ConfigError(f"pattern file {path!r} holds {len(keys)} arrays "
                              f"({', '.join(keys) or 'none'}); allowed: exactly one array")
        try:
            return archive[keys[0]]
        except ValueError as exc:
            raise ConfigError(f"pattern file {path!r}: array {keys[0]!r} cannot be read "
                              f"({exc})") from None


def _values(array: np.ndarray, path: str) -> np.ndarray:
    """uint8 -> v / 255; float -> checked to be finite and in [0, 1]; float64 result."""
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    if array.dtype.kind != "f":
        raise ConfigError(f"pattern file {path!r} has dtype {array.dtype}; allowed: uint8 "
                          "(0-255) or float with values in [0, 1]")
    values = array.astype(np.float64)
    if values.size == 0:
        raise ConfigError(f"pattern file {path!r} holds an empty array")
    if not np.isfinite(values).all():
        raise ConfigError(f"pattern file {path!r} has NaN or infinite values; allowed: [0, 1]")
    low, high = float(values.min()), float(values.max())
    if low < 0.0 or high > 1.0:
        raise ConfigError(f"pattern file {path!r} has values in [{low:g}, {high:g}]; allowed: "
                          "[0, 1] (float) or 0-255 (uint8)")
    return values


def _chw(array: np.ndarray, path: str) -> np.ndarray:
    """(H, W) | (H, W, C) | (C, H, W), C in {1, 3}, leading 1s dropped -> (C, H, W)."""
    shape = array.shape
    while array.ndim > 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 3 and array.shape[-1] in (1, 3):
        array = np.transpose(array, (2, 0, 1))
    elif not (array.ndim == 3 and array.shape[0] in (1, 3)):
        raise ConfigError(f"pattern file {path!r} has shape {shape}; allowed: (H, W), (H, W, C) "
                          "or (C, H, W) with C 1 or 3")
    if min(array.shape[1:]) < 1:
        raise ConfigError(f"pattern file {path!r} has shape {shape}; allowed: H, W >= 1")
    return np.ascontiguousarray(array)


def load_pattern_file(path: str | os.PathLike[str]) -> PatternFile:
    """Read, validate and hash a pattern file (see the module docstring for the formats)."""
    shown = str(path)
    data = _read_bytes(path)
    suffix = Path(shown).suffix.lower()
    if suffix in ARRAY_SUFFIXES:
        raw = _read_array(data, suffix, shown)
    elif suffix in IMAGE_SUFFIXES:
        raw = _read_image(data, shown)
    else:
        raise ConfigError(f"pattern file {shown!r} has suffix {suffix or 'none'!r}; allowed: "
                          + ", ".join(IMAGE_SUFFIXES + ARRAY_SUFFIXES))
    pattern = torch.from_numpy(_chw(_values(raw, shown), shown))
    return PatternFile(shown, hashlib.sha256(data).hexdigest(), pattern)


def check_recorded_sha256(pattern_file: PatternFile, recorded: str | None) -> None:
    """ConfigError when a run's recorded ``pattern_sha256`` no longer matches the file."""
    if recorded is not None and recorded != pattern_file.sha256:
        raise ConfigError(f"pattern file {pattern_file.path!r} changed: its sha256 is "
                          f"{pattern_file.sha256}, the run recorded {recorded}; allowed: the "
                          "file the run was configured with")


def resolve_pattern_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with ``pattern_sha256`` added when ``pattern_file`` is given.

    The file is read and validated (format, dtype, range, shape) here, once, so a bad file is
    a one-line error before anything runs; a recorded hash that differs is an error.
    """
    out = dict(params)
    if out.get("pattern_file") is None:
        return out
    loaded = load_pattern_file(out["pattern_file"])
    check_recorded_sha256(loaded, out.get("pattern_sha256"))
    out["pattern_sha256"] = loaded.sha256
    return out


def to_channels(pattern: torch.Tensor, channels: int, what: str) -> torch.Tensor:
    """A ``(C, H, W)`` pattern as ``(channels, H, W)`` (repeat grey; BT.601 luminance)."""
    c = pattern.shape[0]
    if c == channels:
        return pattern
    if c == 1:
        return pattern.expand(channels, -1, -1).clone()
    if c == 3 and channels == 1:
        r, g, b = LUMA_BT601
        return (r * pattern[0] + g * pattern[1] + b * pattern[2]).unsqueeze(0)
    raise ConfigError(f"{what} has {c} channels, the images {channels}; allowed: a 1- or "
                      "3-channel pattern on 1-channel images, a 1-channel or matching one "
                      "otherwise")


def fit_pattern(pattern: torch.Tensor, height: int, width: int, fit: str,
                what: str) -> torch.Tensor:
    """A ``(C, h, w)`` pattern fitted to ``(C, height, width)`` by ``fit`` (see the module)."""
    _, h, w = pattern.shape
    if (h, w) == (height, width):
        return pattern
    larger = h >= height and w >= width
    if fit == "exact" or (fit == "crop" and not larger):
        raise ConfigError(f"{what} is {h}x{w} but the region it covers is {height}x{width} "
                          f"(fit={fit}); allowed: a {height}x{width} pattern, or fit=crop "
                          "(larger patterns), resize or auto")
    if fit in ("crop", "auto") and larger:
        top, left = (h - height) // 2, (w - width) // 2
        return pattern[:, top:top + height, left:left + width].clone()
    resized = torch.nn.functional.interpolate(
        pattern.unsqueeze(0).to(torch.float64), size=(height, width), mode="bilinear",
        align_corners=False, antialias=True)
    return resized[0].clamp_(0.0, 1.0)


def adapt_pattern(pattern: torch.Tensor, channels: int, height: int, width: int, fit: str,
                  what: str) -> torch.Tensor:
    """:func:`to_channels` then :func:`fit_pattern`; float64 ``(channels, height, width)``."""
    if fit not in FIT_MODES:
        raise ConfigError(f"unknown fit {fit!r}; allowed: {', '.join(FIT_MODES)}")
    return fit_pattern(to_channels(pattern.to(torch.float64), channels, what), height, width,
                       fit, what)
