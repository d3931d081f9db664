"""Every trigger, declared once: name, class (``"module:Class"``, imported on first use) and
``TriggerInfo`` (summary, parameters, threat model). Torch-free, so listing triggers needs no
torch.

The order of ``list_triggers()`` is the order of the ``TRIGGERS.add`` lines below (the paper's
triggers first, then the legacy name, user patterns and the other attacks). Adding a trigger: a
module in this package with a :class:`triggers.base.Trigger` subclass whose ``name`` is the
registered name, and one ``TRIGGERS.add`` line here; the contract tests
(``tests/test_registry_contracts.py``) then cover it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dal_backdoor.registry import Registry
from triggers.info import TriggerInfo, TriggerParam

if TYPE_CHECKING:  # torch-free at run time
    from triggers.base import Trigger

#: The named patterns of the ``local`` trigger (1.0 = white, 0.0 = black).
NAMED_PATTERNS = ("checkerboard", "inverted-checkerboard", "white", "black")


def check_trigger_class(name: str, cls: Callable[..., Any], info: TriggerInfo) -> None:
    """A trigger class must carry its registered name and accept exactly ``info.params``."""
    if getattr(cls, "name", None) != name:
        raise RuntimeError(f"trigger {name!r}: {cls.__name__}.name is "
                           f"{getattr(cls, 'name', None)!r}")
    init = [p for p in inspect.signature(cls.__init__).parameters
            if p not in {"self", "image_size", "channels"}]
    if init != list(info.param_names):
        raise RuntimeError(f"trigger {name!r}: info params {list(info.param_names)} != "
                           f"{cls.__name__}.__init__ parameters {init}")


TRIGGERS: Registry[TriggerInfo, Trigger] = Registry("trigger", on_load=check_trigger_class)

_AMPLITUDE = TriggerParam("amplitude", "64/255", "scale of the pattern, in (0, 1] (or text "
                                                "like 32/255)")
_BORDER = TriggerParam("border", 2, "width of the untouched frame in pixels")
_SHA = TriggerParam("pattern_sha256", None, "SHA-256 of the pattern file; filled in "
                                            "automatically, checked when given")
_GRATING_PARAMS = (
    TriggerParam("amplitude", "64/255", "peak change of a pixel, in (0, 1] (or text like "
                                        "32/255)"),
    TriggerParam("seed", 0, "seed of the pattern (SplitMix64; same pattern everywhere)"),
    _BORDER,
)

TRIGGERS.add("local", "triggers.local:LocalTrigger", TriggerInfo(
    "local",
    "A small patch (default: 3x3 checkerboard) replacing pixels near the bottom-right corner.",
    (
        TriggerParam("size", 3, "side of the square patch in pixels"),
        TriggerParam("margin", 2, "pixels between the patch and the bottom/right image edges"),
        TriggerParam("top", None, "explicit first row of the patch (overrides margin)"),
        TriggerParam("left", None, "explicit first column of the patch (overrides margin)"),
        TriggerParam("pattern", "checkerboard",
                     f"{', '.join(NAMED_PATTERNS)}, or a size x size grid in [0, 1] "
                     "(1 = white) as a list or JSON text"),
    ),
))

TRIGGERS.add("weng", "triggers.weng:WengTrigger", TriggerInfo(
    "weng",
    "Weng et al. 2020's colourful global trigger (the paper's), amplitude 64/255, border 2.",
    (
        _AMPLITUDE, _BORDER,
        TriggerParam("fit", "auto", "how the 28x28 pattern meets the interior: auto (crop if "
                                    "it fits, else resize), crop, resize or exact"),
    ),
))

TRIGGERS.add("grating", "triggers.global_pattern:GratingTrigger", TriggerInfo(
    "grating",
    "A faint zero-mean grey grating (our own pattern, amplitude 64/255) added to the image.",
    _GRATING_PARAMS,
))

TRIGGERS.add("global", "triggers.global_pattern:GlobalPatternTrigger", TriggerInfo(
    "global",
    "Legacy name of grating (stored runs with trigger=global used it); the paper's is weng.",
    _GRATING_PARAMS,
))

TRIGGERS.add("additive", "triggers.additive:AdditivePatternTrigger", TriggerInfo(
    "additive",
    "A user's pattern file (PNG, .npy, .npz) times an amplitude, added inside a border, clipped.",
    (
        TriggerParam("pattern_file", None, "pattern file: PNG (or another image), .npy or "
                                           ".npz; values uint8 or float in [0, 1] (required)"),
        _SHA, _AMPLITUDE, _BORDER,
        TriggerParam("fit", "exact", "how the pattern meets the interior: exact, crop "
                                     "(centred), resize (bilinear) or auto"),
    ),
))

TRIGGERS.add("blended", "triggers.blended:BlendedTrigger", TriggerInfo(
    "blended",
    "Chen et al. 2017's blend x' = (1 - alpha) x + alpha k of a key k (seeded noise or a file).",
    (
        TriggerParam("alpha", 0.2, "blend ratio of poisoned training images, in (0, 1]"),
        TriggerParam("test_alpha", None, "blend ratio of test images (ASR); default: alpha"),
        TriggerParam("seed", 0, "seed of the default noise key (SplitMix64)"),
        TriggerParam("pattern_file", None, "key image or array (PNG, .npy, .npz) instead of "
                                           "the noise key"),
        _SHA,
        TriggerParam("fit", "resize", "how a key file meets the image: resize (bilinear), "
                                      "crop, exact or auto"),
    ),
    threat_model=("dirty-label: poisoned training images (drawn from the other classes) are "
                  "blended with the key and relabelled to the target; test images are "
                  "blended with test_alpha"),
))

TRIGGERS.add("badnets-random", "triggers.badnets_random:BadNetsRandomTrigger", TriggerInfo(
    "badnets-random",
    "BadNets' patch (default 3x3 checkerboard) at a position drawn per image (seeded).",
    (
        TriggerParam("size", 3, "side of the square patch in pixels"),
        TriggerParam("pattern", "checkerboard", ", ".join(NAMED_PATTERNS)),
        TriggerParam("seed", 0, "seed of the positions (SplitMix64)"),
    ),
    threat_model=("dirty-label: poisoned training images (drawn from the other classes) get "
                  "the patch at a random position and the target label"),
))

TRIGGERS.add("sig", "triggers.sig:SigTrigger", TriggerInfo(
    "sig",
    "Barni et al. 2019's horizontal sinusoid x' = clip(x + delta sin(2 pi j f / m)), clean-label.",
    (
        TriggerParam("delta", "20/255", "amplitude of the sinusoid, in (0, 1] (or text like "
                                        "20/255)"),
        TriggerParam("frequency", 6.0, "number of periods across the image width, > 0"),
    ),
    threat_model=("clean-label: the poisons are training images of the target class with the "
                  "signal added and their labels unchanged; the ASR set excludes the target "
                  "class"),
    clean_label=True,
))

TRIGGERS.add("wanet", "triggers.wanet:WaNetTrigger", TriggerInfo(
    "wanet",
    "Nguyen and Tran 2021's smooth warp (k=4 control points, strength s=0.5), grid_sample.",
    (
        TriggerParam("k", 4, "control grid size k x k, in [2, min(H, W)]"),
        TriggerParam("s", 0.5, "warping strength, > 0"),
        TriggerParam("seed", 0, "seed of the control field (SplitMix64)"),
    ),
    threat_model=("dirty-label: poisoned training images (drawn from the other classes) are "
                  "warped and relabelled to the target; noise-mode samples are warped with a "
                  "randomly perturbed grid and keep their labels (cross_ratio, 2 in the "
                  "paper)"),
    noise_mode=True,
))


def list_triggers() -> list[str]:
    """Names accepted by :func:`create_trigger` (``triggers.base``)."""
    return TRIGGERS.names()


def trigger_info(name: str) -> TriggerInfo:
    """A trigger's one-line summary and its parameters (no torch import)."""
    return TRIGGERS.info(name)
