"""The resolved, frozen configuration of one run, and its run id.

A ``RunConfig`` holds every choice that can change a result (data, loss and its resolved
hyper-parameters, label noise, trigger, optimisation recipe, seed, precision). ``run_id`` hashes
exactly those fields, so the same experiment always gets the same id, on any machine, while
fields that only say *where* or *how fast* a run happens (device, data root, eval batch size,
torch.compile) are left out.
Defaults are the paper's recipe (Section 5.1): ResNet18, SGD lr 0.01, momentum 0.9, weight decay
1e-4, batch 128, 150 epochs, cosine annealing, random crop + horizontal flip.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dal_backdoor.errors import ConfigError
from dal_backdoor.validation import MAX_COUNT, MAX_SEED, check_bool, check_choice, check_number

PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")
# Fields that say where/how fast a run is executed, not what it computes.
NON_IDENTITY_FIELDS = frozenset({"device", "data_root", "eval_batch_size", "compile"})
NOISE_PARAM_KEYS = ("exclude_true", "cifar_n_path", "cifar_n_key", "labels_path", "labels_sha256",
                    "features")
#: RunConfig fields that hold a mapping of options; a grid, ``--axis`` or ``--set`` sets one
#: option as ``FIELD.NAME`` (e.g. ``trigger_params.amplitude``), never the whole mapping.
MAPPING_FIELDS = ("dataset_params", "loss_params", "model_params", "noise_params",
                  "trigger_params")
MAX_EPOCHS = 100_000  # upper bounds, so that huge values are one clear error, not an overflow
MAX_WIDTH = 4096
#: Metadata key of a field added after run ids were first published (see ``added_field``).
LEGACY = "legacy_value"


logger = logging.getLogger(__name__)


def added_field(default: Any, *, legacy: Any = dataclasses.MISSING) -> Any:
    """A ``RunConfig`` field added after run ids were first published.

    ``legacy`` is the value that reproduces what runs computed *before* the field existed
    (default: ``default`` itself, for a pure addition). The field is hashed into the run id only
    when its value differs from ``legacy``, so adding it leaves every existing run id unchanged,
    and a stored config that lacks it is read back with ``legacy``, not with the new default.
    Example: a new default model initialisation has ``legacy`` = the old one, so old run ids
    keep meaning the old initialisation and new runs get new ids.
    """
    legacy_value = default if legacy is dataclasses.MISSING else legacy
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default),
                     metadata={LEGACY: legacy_value})
    return field(default=default, metadata={LEGACY: legacy_value})


def _normalise(value: Any) -> Any:
    """-0.0 -> 0.0 (recursively), so equal experiments hash equally."""
    if isinstance(value, float) and value == 0.0:
        return 0.0
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    return value


@dataclass(frozen=True)
class RunConfig:
    # data
    dataset: str = "cifar10"
    dataset_params: dict[str, Any] = field(default_factory=dict)
    train_subset: int | None = None
    test_subset: int | None = None
    subset_seed: int = 0
    # loss (``loss_params`` is the fully resolved set: Table 1 preset + overrides)
    loss: str = "ce"
    loss_params: dict[str, Any] = field(default_factory=dict)
    # label noise
    noise_kind: str = "none"
    noise_rate: float = 0.0
    noise_params: dict[str, Any] = field(default_factory=dict)
    # Seed of the label-noise draw: one fixed draw shared by the seeds of a table cell, as the
    # authors do. None (runs stored before the field existed): derived from ``seed``, so every
    # training seed drew its own noise.
    noise_seed: int | None = added_field(0, legacy=None)
    # backdoor
    trigger: str = "none"
    trigger_params: dict[str, Any] = field(default_factory=dict)
    num_poison: int = 100
    target_class: int = 7
    # WaNet's noise mode: round(cross_ratio * num_poison) extra samples warped with random noise,
    # labels kept (dal_backdoor.data.poison); only for triggers with a noise mode (wanet).
    cross_ratio: float = added_field(0.0)
    # model and optimisation
    # ``model``: a registered name, or "module:function" (a researcher's own network, see
    # ``dal_backdoor.models.user``); ``model_params`` then holds the function's extra keyword
    # arguments, the SHA-256 of its source (``sha256``) and where it was imported from
    # (``sys_path``, left out of the run id).
    model: str = "resnet18"
    model_params: dict[str, Any] = added_field({})
    # "pytorch": PyTorch's module defaults, as the authors' resnet.py; "torchvision": Kaiming-
    # normal fan-out convolutions, the only initialisation of runs stored before the field.
    init: str = added_field("pytorch", legacy="torchvision")
    width: int = 64
    epochs: int = 150
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    augment: bool = True
    seed: int = 0
    # execution
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False  # torch.compile with eager fallback (dal_backdoor.accel)
    device: str = "cpu"
    data_root: str = "data"
    eval_batch_size: int = 1000

    # -- serialisation -------------------------------------------------------------------------
    # Fields added later are declared with ``added_field`` (stable run ids, see there).
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """The config stored as ``data``; a field added since it was stored takes its legacy
        value (what the run computed before the field existed)."""
        fields_ = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields_))
        if unknown:
            raise ConfigError(f"unknown config field(s) {', '.join(unknown)}; allowed: "
                              + ", ".join(sorted(fields_)))
        missing = {name: f.metadata[LEGACY] for name, f in fields_.items()
                   if name not in data and LEGACY in f.metadata}
        return cls(**data, **missing)

    def identity(self) -> dict[str, Any]:
        """The fields that define what is computed (hashed into the run id).

        Left out: where/how fast fields (``NON_IDENTITY_FIELDS``), the path of a label file, of
        a data set read from files or of a user model's module whose sha256 is recorded, fields
        added after run ids were published whose value equals their legacy value (so such
        additions never change an existing run id), and added fields that have no effect on
        this run (``_unused_fields``).
        """
        values = self.to_dict()
        values["noise_params"] = _file_identity(values["noise_params"])
        values["dataset_params"] = _content_identity(values["dataset_params"], "sha256", "path")
        values["model_params"] = _content_identity(values["model_params"], "sha256", "sys_path")
        unused = self._unused_fields()
        return {f.name: _normalise(values[f.name]) for f in dataclasses.fields(self)
                if f.name not in NON_IDENTITY_FIELDS and f.name not in unused
                and not (LEGACY in f.metadata and values[f.name] == f.metadata[LEGACY])}

    def _unused_fields(self) -> set[str]:
        """Added fields that cannot change what this run computes, so that the same experiment
        keeps the id it had before they existed: the noise seed when no label is drawn (no
        noise, a zero rate, or labels read from a file)."""
        from dal_backdoor.data.catalog import NOISE_KINDS

        kind = NOISE_KINDS.info(self.noise_kind) if self.noise_kind in NOISE_KINDS else None
        if kind is None or (kind.drawn and self.noise_rate > 0):
            return set()
        return {"noise_seed"}

    @property
    def run_id(self) -> str:
        return config_hash(self.identity())

    @property
    def poisoned(self) -> bool:
        return self.trigger != "none" and self.num_poison > 0

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)


def _file_identity(noise_params: dict[str, Any]) -> dict[str, Any]:
    """A label file is identified by its content (``labels_sha256``), not by where it lies."""
    if "labels_sha256" not in noise_params:
        return noise_params
    return {k: v for k, v in noise_params.items() if k != "labels_path"}


def _content_identity(params: dict[str, Any], digest: str, where: str) -> dict[str, Any]:
    """Data or code identified by its content hash (``digest``), not by where it lies."""
    if digest not in params:
        return params
    return {k: v for k, v in params.items() if k != where}


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_hash(obj: Any, length: int = 16) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` if a GPU is visible, else ``cpu``; ``cuda`` without one is an error."""
    import torch

    check_choice("device", device, DEVICES)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but no CUDA device is visible; allowed here: auto, cpu")
    return device


def resolve_precision(precision: str, device: str) -> str:
    """``auto`` -> bf16 autocast on a CUDA GPU with native bf16, else fp32 as the paper trains
    (``dal_backdoor.accel`` says why CPUs stay fp32). An explicit ``bf16`` is honoured on any
    device; where the hardware has no native bf16 it is emulated, slowly, and a warning is
    logged."""
    from dal_backdoor.accel import auto_precision, native_bf16

    check_choice("precision", precision, PRECISIONS)
    if precision == "auto":
        return auto_precision(device)
    if precision == "bf16" and not native_bf16(device):
        logger.warning("precision bf16 on %s without native bf16 support: emulated, likely "
                       "slower than fp32", device)
    return precision


def resolve_config(
    *,
    dataset: str = "cifar10",
    loss: str = "ce",
    loss_overrides: dict[str, Any] | None = None,
    hparams_from: str | None = None,
    device: str = "auto",
    precision: str = "auto",
    channels_last: bool | None = None,
    **fields: Any,
) -> RunConfig:
    """Validate user choices and produce the frozen, fully resolved ``RunConfig``.

    The loss hyper-parameters start from the paper's Table 1 preset for ``hparams_from`` (default:
    ``dataset``; e.g. "cifar10" when a small preset substitutes Fashion-MNIST for CIFAR-10) and
    are then overridden by ``loss_overrides``; the result is checked by building the loss once.
    Registries (data sets, losses, noise kinds, triggers, models) validate the names.
    """
    from dal_backdoor.data.catalog import (
        dataset_info,
        list_datasets,
        list_noise_kinds,
        resolve_dataset_params,
    )
    from dal_backdoor.losses import create_loss, list_losses, preset
    from dal_backdoor.models import INITS, resolve_model
    from triggers import list_triggers

    check_choice("dataset", dataset, list_datasets())
    # a data set read from files records its absolute path and content hash (the run id)
    fields["dataset_params"] = resolve_dataset_params(
        dataset, fields.get("dataset_params") or {}, fields.get("data_root", RunConfig.data_root))
    check_choice("loss", loss, list_losses())
    params = dict(preset(loss, hparams_from or dataset))
    params.update(loss_overrides or {})

    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    if channels_last is None:
        from dal_backdoor.accel import auto_channels_last

        width = fields.get("width", RunConfig.width)
        channels_last = auto_channels_last(device, width) if isinstance(width, int) else False
    if fields.get("trigger_params"):  # a pattern file's SHA-256 joins the params (the run id)
        from triggers.patterns import resolve_pattern_params

        fields["trigger_params"] = resolve_pattern_params(fields["trigger_params"])
    cfg = RunConfig(
        dataset=dataset, loss=loss, loss_params=params, device=device, precision=precision,
        channels_last=channels_last, **fields,
    )
    cfg = _resolve_noise(cfg)
    check_choice("noise kind", cfg.noise_kind, ["none", *[k for k in list_noise_kinds()
                                                         if k != "none"]])
    check_choice("trigger", cfg.trigger, ["none", *list_triggers()])
    check_choice("init", cfg.init, INITS)
    check_number("epochs", cfg.epochs, low=1, high=MAX_EPOCHS, integer=True)
    check_number("batch_size", cfg.batch_size, low=1, high=MAX_COUNT, integer=True)
    check_number("eval_batch_size", cfg.eval_batch_size, low=1, high=MAX_COUNT,
                 integer=True)
    check_number("lr", cfg.lr, low=0, low_open=True)
    check_number("momentum", cfg.momentum, low=0, high=1, high_open=True)
    check_number("weight_decay", cfg.weight_decay, low=0)
    check_number("width", cfg.width, low=1, high=MAX_WIDTH, integer=True)
    check_number("seed", cfg.seed, low=0, high=MAX_SEED, integer=True)
    check_number("num_poison", cfg.num_poison, low=0, high=MAX_COUNT, integer=True)
    check_number("target_class", cfg.target_class, low=0, high=MAX_COUNT, integer=True)
    _check_cross_ratio(cfg)
    check_number("noise_rate", cfg.noise_rate, low=0, high=1, high_open=True)
    if cfg.noise_kind == "none" and cfg.noise_rate != 0:
        raise ConfigError(f"noise_rate={cfg.noise_rate:g} needs a noise kind; "
                          "allowed with noise kind none: 0")
    check_noise_params(cfg.noise_params)
    if cfg.noise_seed is not None:
        check_number("noise_seed", cfg.noise_seed, low=0, high=2**63 - 1, integer=True)
    for name in ("augment", "channels_last", "compile"):
        value = getattr(cfg, name)
        if not isinstance(value, bool):
            raise ConfigError(f"{name}={value!r} is not a boolean; allowed: true, false")
    for name in ("train_subset", "test_subset"):
        value = getattr(cfg, name)
        if value is not None:
            check_number(name, value, low=1, high=MAX_COUNT, integer=True)
    # Building the loss validates every hyper-parameter (names and ranges) with a clear message.
    data = dataset_info(dataset, cfg.dataset_params)
    create_loss(loss, num_classes=data.num_classes,
                total_epochs=cfg.epochs, seed=cfg.seed, **params)
    # a user's model records its source's SHA-256 (the run id); it is built once here
    return cfg.replace(model_params=resolve_model(
        cfg.model, cfg.model_params, num_classes=data.num_classes, in_channels=data.channels,
        image_size=data.image_size, width=cfg.width, init=cfg.init))


def _check_cross_ratio(cfg: RunConfig) -> None:
    """cross_ratio >= 0, and > 0 only with a trigger that has WaNet's noise mode."""
    from triggers.catalog import list_triggers, trigger_info

    check_number("cross_ratio", cfg.cross_ratio, low=0, high=MAX_COUNT)
    noise_mode = cfg.trigger != "none" and trigger_info(cfg.trigger).noise_mode
    if cfg.cross_ratio > 0 and not noise_mode:
        allowed = ", ".join(n for n in list_triggers() if trigger_info(n).noise_mode)
        raise ConfigError(f"cross_ratio={cfg.cross_ratio:g} needs a trigger with a noise mode, "
                          f"not {cfg.trigger}; allowed: {allowed} (or cross_ratio 0)")


def _resolve_noise(cfg: RunConfig) -> RunConfig:
    """Fill in what the noise draw depends on: the defaults of the noise kind (raw-pixel
    features for instance noise, the label file's sha256)."""
    from dal_backdoor.data.noise import resolve_noise_params

    check_noise_params(cfg.noise_params)
    return cfg.replace(noise_params=resolve_noise_params(cfg.noise_kind, cfg.noise_params))


def check_noise_params(params: dict[str, Any]) -> dict[str, Any]:
    """The label-noise options as keyword arguments; unknown names are a ConfigError."""
    unknown = sorted(set(params) - set(NOISE_PARAM_KEYS))
    if unknown:
        raise ConfigError(f"unknown noise option(s) {', '.join(unknown)}; allowed: "
                          + ", ".join(NOISE_PARAM_KEYS))
    if "exclude_true" in params:
        check_bool("exclude_true", params["exclude_true"])  # never "maybe" taken as true
    return dict(params)


#: A poisoned share of the training set from which a default poison count is warned about
#: (the paper poisons 100 of 50,000 CIFAR images: 0.2%).
HIGH_POISON_RATE = 0.02


def apply_options(fields: dict[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``FIELD.NAME`` options (e.g. ``{"trigger_params.size": 5}``) into the mappings of
    ``fields``, in place (each mapping it changes is copied first), and return the
    ``loss_params`` ones: resolve_config takes those as ``loss_overrides``, over the loss's
    Table 1 preset. Keys are assumed checked (a MAPPING_FIELDS name, a dot, an option)."""
    loss_overrides: dict[str, Any] = {}
    for key, value in options.items():
        mapping, option = key.split(".", 1)
        if mapping == "loss_params":
            loss_overrides[option] = value
        else:
            fields[mapping] = {**(fields.get(mapping) or {}), option: value}
    return loss_overrides


def poison_count(rate: float, num_train: int) -> int:
    """The number of poisoned images for ``rate`` (in (0, 1)) of ``num_train`` training
    images (after --train-subset): rounded to the nearest integer, halves up, at least 1.
    The config records this count (``num_poison``), so a run given a rate has the run id of
    the run given the same count."""
    check_number("poison_rate", rate, low=0, high=1, low_open=True, high_open=True)
    check_number("num_train", num_train, low=1, high=MAX_COUNT, integer=True)
    return max(1, int(rate * num_train + 0.5))


def fmt_poison_rate(num_poison: int, num_train: int) -> str:
    """``100 poisoned images (1.0% of 10,000)``."""
    rate = 100.0 * num_poison / num_train if num_train else 0.0
    return f"{num_poison} poisoned images ({rate:.1f}% of {num_train:,})"


def high_poison_rate_warning(num_poison: int, num_train: int) -> str | None:
    """A warning when ``num_poison`` is at least ``HIGH_POISON_RATE`` of the training set
    (e.g. the default 100 poisons with --train-subset 500: 20%); None otherwise."""
    if num_train <= 0 or num_poison / num_train < HIGH_POISON_RATE:
        return None
    return (f"{fmt_poison_rate(num_poison, num_train)}: a high poison rate (the paper poisons "
            "0.2%, 100 of 50,000); choose it with --poison-rate or --num-poison")
