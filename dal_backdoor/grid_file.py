"""User-defined grids: a TOML grid file or ``--axis key=v1,v2`` options, expanded into runs.

A user grid is the cartesian product of its ``axes`` (any run setting) and its seeds, on top of
``fixed`` settings and a preset (``small``, ``ci`` or ``paper``): each run starts from the
preset's settings for the paper's data set (``paper_dataset``, default cifar10: the preset's
row and the Table 1 loss hyper-parameters), then the fixed settings, then the cell's axis
values, then ``--set`` overrides. Its runs are tagged in the results store under the grid's
name and preset, like the built-in grids' runs, so sweeps skip finished runs and resume
interrupted ones, and ``dal-backdoor table NAME`` reports them.

A grid file::

    name = "loss-x-poisons"              # the runs' tag in the store (not a built-in grid)
    description = "CE vs DAL by poison count"   # optional: the table's title
    preset = "small"                     # optional: small (default), ci or paper
    seeds = [0, 1, 2]                    # optional: default [0, 1, 2]; "0-4" works too

    [fixed]                              # every run (overrides the preset's settings)
    trigger = "local"
    train_subset = 2000
    trigger_params.size = 3              # one option of a mapping setting

    [axes]                               # the product of these, one run per cell and seed
    loss = ["ce", "dal"]
    num_poison = [20, 100]

    [table]                              # optional: the layout of `dal-backdoor table`
    rows = ["loss"]                      # default: the first axis (others join the rows)
    columns = "num_poison"               # default: the second axis
    metrics = ["clean_acc", "asr"]       # default: clean_acc, asr (clean_acc without trigger)

Keys: every ``RunConfig`` field except device, data_root and seed (``--device``, ``--root``,
seeds); one option of a mapping field as ``trigger_params.X``, ``dataset_params.X``,
``noise_params.X``, ``model_params.X`` (a keyword of a user model's function) or
``loss_params.X`` (a loss hyper-parameter over the Table 1 preset); and
``paper_dataset``, ``poison_rate`` (sets num_poison from the training-set size), ``noise``
(``symmetric-0.4`` or ``none``) and ``attack`` (a column of the ``attacks`` grid).
``num_poison`` is a count of poisoned images here (the ``dose`` grid's per-10,000 scaling is
not applied).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from dal_backdoor.config import (
    MAPPING_FIELDS,
    RunConfig,
    apply_options,
    poison_count,
    resolve_config,
)
from dal_backdoor.errors import ConfigError
from dal_backdoor.experiments import (
    ATTACKS,
    FULL_TRAIN_SIZES,
    SEEDS,
    Expansion,
    RunSpec,
    get_grid,
    get_preset,
    list_grids,
    list_presets,
    parse_seeds,
)
from dal_backdoor.validation import MAX_SEED, check_bool, check_finite, check_number

#: The name of a grid given only by ``--axis`` options (no base grid, no file).
CUSTOM = "custom"
PAPER_DATASETS = ("cifar10", "cifar100")
#: Keys beyond the RunConfig fields, and what each sets.
PSEUDO_KEYS = {
    "paper_dataset": "the preset's row and the Table 1 hyper-parameters (cifar10, cifar100)",
    "poison_rate": "num_poison as this share of the training set, in (0, 1)",
    "noise": "noise_kind and noise_rate, as KIND-RATE (e.g. symmetric-0.4) or none",
    "attack": "trigger and its poisoning options, as a column of the attacks grid",
}
#: Run settings a grid may not set, and what sets them instead.
NOT_SETTABLE = {"device": "--device", "data_root": "--root",
                "seed": "the grid's seeds (seeds = [...] in a grid file, or --seeds)",
                "loss_params": "loss_params.NAME for one hyper-parameter"}
#: Pairs of keys that set the same run fields: a grid holds at most one of each pair.
EXCLUSIVE = frozenset({frozenset(p) for p in (
    ("num_poison", "poison_rate"), ("noise", "noise_kind"), ("noise", "noise_rate"),
    ("attack", "trigger"), ("attack", "trigger_params"), ("attack", "cross_ratio"))})
TOP_KEYS = ("name", "description", "preset", "seeds", "fixed", "axes", "table")
TABLE_KEYS = ("rows", "columns", "metrics")
#: Final metrics a user grid's table can show (percent).
TABLE_METRICS = ("clean_acc", "asr", "asr_true", "robust_acc")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
MAX_RUNS = 100_000
_RUN_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


@dataclass(frozen=True)
class UserGrid:
    """A grid defined by a user: ``axes`` (without the seed) x ``seeds``, over ``fixed``.

    Keys are flat: ``trigger_params.size`` is one option of the mapping ``trigger_params``.
    ``rows``, ``columns`` and ``metrics`` are the table layout the grid asks for (empty: the
    report's default)."""

    name: str
    axes: dict[str, tuple[Any, ...]]
    fixed: dict[str, Any] = dataclasses.field(default_factory=dict)
    seeds: tuple[int, ...] = SEEDS
    preset: str | None = None
    description: str = ""
    rows: tuple[str, ...] = ()
    columns: str | None = None
    metrics: tuple[str, ...] = ()
    source: str = "--axis"

    @property
    def all_axes(self) -> dict[str, tuple[Any, ...]]:
        return {**self.axes, "seed": self.seeds}

    def cells(self) -> list[dict[str, Any]]:
        keys = list(self.all_axes)
        return [dict(zip(keys, values, strict=True))
                for values in itertools.product(*self.all_axes.values())]

    @property
    def size(self) -> int:
        n = len(self.seeds)
        for values in self.axes.values():
            n *= len(values)
        return n

    @property
    def kind(self) -> str:
        """``backdoor`` when some run is poisoned (a trigger or an attack), else ``noise``."""
        if "attack" in self.axes or "attack" in self.fixed:
            return "backdoor"
        triggers = self.axes.get("trigger", (self.fixed.get("trigger", "none"),))
        return "backdoor" if any(t != "none" for t in triggers) else "noise"


# -- keys and values ---------------------------------------------------------------------------

def _allowed_keys() -> str:
    plain = [k for k in _RUN_FIELDS if k not in NOT_SETTABLE and k not in MAPPING_FIELDS]
    return ", ".join([*sorted(plain), *[f"{m}.NAME" for m in MAPPING_FIELDS], *PSEUDO_KEYS])


def check_key(key: str, where: str) -> None:
    """``key`` is a setting a grid may sweep or fix; else one ConfigError naming ``where``."""
    if "." in key:
        base, option = key.split(".", 1)
        if base not in MAPPING_FIELDS or not option or "." in option:
            raise ConfigError(f"{where}: {key!r} is not a setting; allowed with a dot: "
                              + ", ".join(f"{m}.NAME" for m in MAPPING_FIELDS))
        return
    if key in NOT_SETTABLE:
        raise ConfigError(f"{where}: {key} is not set by a grid; use {NOT_SETTABLE[key]}")
    if key in MAPPING_FIELDS:
        raise ConfigError(f"{where}: {key} is a mapping of options; set one as {key}.NAME")
    if key not in _RUN_FIELDS and key not in PSEUDO_KEYS:
        raise ConfigError(f"{where}: unknown run setting {key!r}; allowed: {_allowed_keys()}")


def check_setting(key: str, value: Any, where: str) -> Any:
    """``value`` checked (and typed) for setting ``key``; ConfigError naming ``where``."""
    check_key(key, where)
    if isinstance(value, (dict, list)):
        raise ConfigError(f"{where}: {value!r} is not a single value (a name, number or "
                          "boolean)")
    if isinstance(value, float):
        value = check_finite(key, value)
    if key in PSEUDO_KEYS:
        return _pseudo_value(key, value, where)
    if "." in key:
        return value
    return _field_value(key, value, str(_RUN_FIELDS[key].type), where)


def _pseudo_value(key: str, value: Any, where: str) -> Any:
    if key == "poison_rate":
        return check_number(f"{where}: poison_rate", value, low=0, high=1, low_open=True,
                            high_open=True)
    allowed = {"paper_dataset": PAPER_DATASETS, "attack": tuple(ATTACKS)}.get(key)
    if allowed is not None and value not in allowed:
        raise ConfigError(f"{where}: unknown {key} {value!r}; allowed: {', '.join(allowed)}")
    if key == "noise":
        noise_fields(value, where)
    return value


def noise_fields(setting: Any, where: str = "noise") -> dict[str, Any]:
    """``"symmetric-0.4"`` -> {"noise_kind": "symmetric", "noise_rate": 0.4}; ``"none"`` ->
    no noise. The kind is checked when the run's config is resolved."""
    if setting == "none":
        return {"noise_kind": "none", "noise_rate": 0.0}
    kind, _, rate = str(setting).rpartition("-")
    try:
        value = float(rate)
    except ValueError:
        value = None
    if not kind or value is None:
        raise ConfigError(f"{where}: noise {setting!r} is not KIND-RATE; allowed: e.g. "
                          "symmetric-0.4, asymmetric-0.2, none")
    return {"noise_kind": kind, "noise_rate": value}


def _field_value(key: str, value: Any, kind: str, where: str) -> Any:
    """``value`` as the RunConfig field type ``kind`` (the annotation text)."""
    if "None" in kind and (value is None or (isinstance(value, str)
                                             and value.lower() in ("none", "null"))):
        return None
    base = kind.split("|")[0].strip()
    if base == "bool":
        return check_bool(f"{where}: {key}", value)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if base == "int" and (not number or int(value) != value):
        raise ConfigError(f"{where}: {key}={value!r} is not an integer")
    if base == "float" and not number:
        raise ConfigError(f"{where}: {key}={value!r} is not a number")
    if base == "str" and not isinstance(value, str):
        raise ConfigError(f"{where}: {key}={value!r} is not a name")
    return {"int": int, "float": float}.get(base, lambda v: v)(value)


def clashes(a: str, b: str) -> bool:
    """Whether keys ``a`` and ``b`` set the same run field."""
    base_a, base_b = a.split(".", 1)[0], b.split(".", 1)[0]
    return a == b or frozenset((base_a, base_b)) in EXCLUSIVE


def check_axis(key: str, values: Any, where: str) -> tuple[Any, ...]:
    """An axis's values: a non-empty list of distinct single values, each checked."""
    if not isinstance(values, (list, tuple)) or not values:
        raise ConfigError(f"{where}: an axis is a non-empty list of values, e.g. "
                          f"{key} = [1, 2]; got {values!r}")
    out = tuple(check_setting(key, v, where) for v in values)
    if len({repr(v) for v in out}) != len(out):
        raise ConfigError(f"{where}: a value is given twice in {list(values)!r}; allowed: "
                          "each value once")
    return out


def check_grid_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"{where}: grid name {name!r} is not allowed; allowed: 1-64 letters, "
                          "digits, '_', '.', '+', '-' (not starting with one of the last four)")
    if name in list_grids():
        raise ConfigError(f"{where}: grid name {name!r} is a built-in grid's; allowed: a name "
                          "other than " + ", ".join(list_grids()))
    return name


# -- building a grid ---------------------------------------------------------------------------

def build_grid(name: str, axes: Mapping[str, tuple[Any, ...]], fixed: Mapping[str, Any], *,
               seeds: tuple[int, ...] = SEEDS, preset: str | None = None,
               description: str = "", rows: tuple[str, ...] = (), columns: str | None = None,
               metrics: tuple[str, ...] = (), source: str = "--axis") -> UserGrid:
    """A ``UserGrid`` after the checks that involve several keys: no key both an axis and
    fixed, no two keys that set the same field, at least one axis, a bounded size, and a
    table layout that names axes."""
    if not axes:
        raise ConfigError(f"{source}: a grid needs at least one axis (e.g. --axis "
                          "loss=ce,dal or [axes] loss = [\"ce\", \"dal\"])")
    keys = [*axes, *fixed]
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            if clashes(a, b):
                raise ConfigError(f"{source}: {a} and {b} set the same run setting; allowed: "
                                  "one of them (as an axis or a fixed setting)")
    grid = UserGrid(name, dict(axes), dict(fixed), tuple(seeds), preset, description,
                    tuple(rows), columns, tuple(metrics), source)
    if grid.size > MAX_RUNS:
        raise ConfigError(f"{source}: the grid has {grid.size} runs; allowed: at most "
                          f"{MAX_RUNS}")
    _check_layout(grid)
    return grid


def _check_layout(grid: UserGrid) -> None:
    axes = list(grid.axes)
    for key in (*grid.rows, *([grid.columns] if grid.columns else [])):
        if key not in axes:
            raise ConfigError(f"{grid.source}: table layout names {key!r}, not an axis of "
                              f"{grid.name}; allowed: {', '.join(axes)}")
    if grid.columns is not None and grid.columns in grid.rows:
        raise ConfigError(f"{grid.source}: {grid.columns} is both a row and the column axis")
    bad = [m for m in grid.metrics if m not in TABLE_METRICS]
    if bad:
        raise ConfigError(f"{grid.source}: unknown table metric {bad[0]!r}; allowed: "
                          + ", ".join(TABLE_METRICS))


def with_axes(grid: UserGrid, axes: Mapping[str, tuple[Any, ...]], *,
              name: str | None = None) -> UserGrid:
    """``grid`` with ``axes`` added, each replacing the axis or fixed setting it clashes with
    (e.g. ``--axis num_poison=50,100`` on table6 replaces its fixed 100 poisons)."""
    kept_axes = {k: v for k, v in grid.axes.items() if not any(clashes(k, n) for n in axes)}
    fixed = {k: v for k, v in grid.fixed.items() if not any(clashes(k, n) for n in axes)}
    source = "--axis" if grid.source == "--axis" else f"{grid.source} and --axis"
    return build_grid(name or grid.name, {**kept_axes, **axes}, fixed, seeds=grid.seeds,
                      preset=grid.preset, description=grid.description,
                      rows=tuple(r for r in grid.rows if r in kept_axes or r in axes),
                      columns=grid.columns if grid.columns in {**kept_axes, **axes} else None,
                      metrics=grid.metrics, source=source)


def builtin_as_user_grid(grid_name: str) -> UserGrid:
    """A built-in grid as a user grid of the same runs' settings: its data-set axis becomes
    ``paper_dataset``, its trigger labels the registered triggers they run (table6's
    ``global`` is ``weng``); ``num_poison`` values are counts (unscaled)."""
    grid = get_grid(grid_name)
    rename = {"dataset": "paper_dataset"}
    axes: dict[str, tuple[Any, ...]] = {}
    for key, values in grid.axes.items():
        if key == "seed":
            continue
        if key == "trigger":
            values = tuple(dict.fromkeys(grid.triggers.get(v, v) for v in values))
        axes[rename.get(key, key)] = tuple(values)
    return build_grid(f"{grid_name}-custom", axes, dict(grid.fixed),
                      seeds=tuple(grid.axes["seed"]), description="", source=grid_name)


def grid_from_axes(base: str, axes: Mapping[str, tuple[Any, ...]], *,
                   name: str | None = None) -> UserGrid:
    """The grid of ``--axis`` options on ``base`` (a built-in grid, or ``custom``: none).
    Default name: ``custom``, or ``<base>-custom``."""
    if name is not None:
        check_grid_name(name, "--name")
    if base == CUSTOM:
        return build_grid(name or CUSTOM, dict(axes), {})
    return with_axes(builtin_as_user_grid(base), axes, name=name)


# -- grid files --------------------------------------------------------------------------------

def load_grid_file(path: str | Path) -> UserGrid:
    """The grid of a TOML grid file (see the module docstring); one ConfigError naming the
    file and the bad key or value otherwise."""
    toml = _toml_module()
    path = Path(path)
    try:
        data = toml.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"grid file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"grid file {path} cannot be read: {reason}") from None
    except toml.TOMLDecodeError as exc:
        raise ConfigError(f"grid file {path} is not valid TOML: {exc}") from None
    return grid_from_mapping(data, str(path))


def _toml_module() -> ModuleType:
    """Python 3.11's ``tomllib`` (or ``tomli``, its backport, on 3.10)."""
    try:
        import tomllib
    except ImportError:
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError("grid files need Python >= 3.11 (tomllib) or, on 3.10, the "
                              "tomli package: pip install tomli") from None
    return tomllib


def _table(data: Mapping[str, Any], key: str, source: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {key} must be a table ([{key}]), not {value!r}")
    return value


def flatten(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``{"trigger_params": {"size": 3}}`` -> ``{"trigger_params.size": 3}``; other nested
    tables are refused."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            if key not in MAPPING_FIELDS:
                raise ConfigError(f"{where}.{key}: not a mapping setting; allowed tables: "
                                  + ", ".join(MAPPING_FIELDS))
            for option, inner in flatten(value, f"{where}.{key}").items():
                out[f"{key}.{option}"] = inner
        else:
            out[key] = value
    return out


def _seeds(value: Any, source: str) -> tuple[int, ...]:
    if value is None:
        return SEEDS
    if isinstance(value, str):
        try:
            seeds = parse_seeds(value)
        except ConfigError as exc:
            raise ConfigError(f"{source}: seeds: {exc}") from None
        if seeds is None:
            raise ConfigError(f"{source}: seeds is empty; allowed: e.g. [0, 1, 2] or \"0-4\"")
        return seeds
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{source}: seeds must be a non-empty list, e.g. [0, 1, 2]")
    seeds = tuple(check_number(f"{source}: seeds", s, low=0, high=MAX_SEED, integer=True)
                  for s in value)
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{source}: seeds {value!r} name a seed twice; allowed: each once")
    return seeds


def _layout(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    table = _table(data, "table", source)
    unknown = sorted(set(table) - set(TABLE_KEYS))
    if unknown:
        raise ConfigError(f"{source}: unknown key table.{unknown[0]}; allowed: "
                          + ", ".join(TABLE_KEYS))
    rows = table.get("rows", [])
    rows = [rows] if isinstance(rows, str) else rows
    metrics = table.get("metrics", [])
    metrics = [metrics] if isinstance(metrics, str) else metrics
    columns = table.get("columns")
    if not all(isinstance(x, str) for x in [*rows, *metrics]) or not isinstance(
            columns, (str, type(None))):
        raise ConfigError(f"{source}: table rows, columns and metrics are axis or metric "
                          "names (text)")
    return {"rows": tuple(rows), "columns": columns, "metrics": tuple(metrics)}


def grid_from_mapping(data: Mapping[str, Any], source: str) -> UserGrid:
    """The grid of a parsed grid file ``data`` (``source`` names it in messages)."""
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}; allowed: "
                          + ", ".join(TOP_KEYS))
    name = check_grid_name(data.get("name"), f"{source}: name")
    preset = data.get("preset")
    if preset is not None and preset not in list_presets():
        raise ConfigError(f"{source}: unknown preset {preset!r}; allowed: "
                          + ", ".join(list_presets()))
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{source}: description must be text")
    axes = {k: check_axis(k, v, f"{source}: axes.{k}")
            for k, v in flatten(_table(data, "axes", source), "axes").items()}
    fixed = {k: check_setting(k, v, f"{source}: fixed.{k}")
             for k, v in flatten(_table(data, "fixed", source), "fixed").items()}
    return build_grid(name, axes, fixed, seeds=_seeds(data.get("seeds"), source),
                      preset=preset, description=description, source=source,
                      **_layout(data, source))


# -- expansion ---------------------------------------------------------------------------------

def check_user_overrides(grid: UserGrid, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``--set`` settings on a user grid: checked like a fixed setting; an axis is refused."""
    out = {}
    for key, value in overrides.items():
        axis = next((a for a in grid.axes if clashes(a, key)), None)
        if axis is not None:
            raise ConfigError(f"--set {key}={value}: {key} is set by the {axis!r} axis of "
                              f"grid {grid.name}; narrow the grid with --only {axis}=...")
        out[key] = check_setting(key, value, f"--set {key}")
    return out


def check_user_only(grid: UserGrid, only: Mapping[str, set[str]]) -> None:
    axes = grid.all_axes
    for key, values in only.items():
        if key not in axes:
            raise ConfigError(f"--only key {key!r} is not an axis of {grid.name}; allowed: "
                              + ", ".join(axes))
        allowed = [str(v) for v in axes[key]]
        bad = sorted(set(values) - set(allowed))
        if bad:
            raise ConfigError(f"--only {key}={'|'.join(bad)} is not in {grid.name}; allowed: "
                              + ", ".join(allowed))


def train_size(fields: Mapping[str, Any], root: str | Path) -> int:
    """The training-set size a run trains on: its ``train_subset``, else the whole split."""
    if fields.get("train_subset"):
        return int(fields["train_subset"])
    if fields["dataset"] in FULL_TRAIN_SIZES and not fields.get("dataset_params"):
        return FULL_TRAIN_SIZES[fields["dataset"]]
    from dal_backdoor.data import create_dataset

    return len(create_dataset(fields["dataset"], str(root), train=True,
                              **fields.get("dataset_params", {})))


def run_fields(base: Mapping[str, Any], settings: Mapping[str, Any],
               root: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(fields, loss_overrides)``: the preset's ``base`` fields with the grid's flat
    ``settings`` applied (mapping options merged, pseudo keys resolved)."""
    fields = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    loss_overrides = apply_options(fields, {k: v for k, v in settings.items() if "." in k})
    for key, value in settings.items():
        if "." in key:
            continue
        if key == "noise":
            fields.update(noise_fields(value))
        elif key == "attack":
            fields.update(ATTACKS[value])
        elif key not in ("poison_rate", "paper_dataset"):
            fields[key] = value
    if "poison_rate" in settings:
        fields["num_poison"] = poison_count(settings["poison_rate"], train_size(fields, root))
    return fields, loss_overrides


def expand_user_grid(grid: UserGrid, preset_name: str, *, data_root: str = "data",
                     only: Mapping[str, set[str]] | None = None, device: str = "auto",
                     overrides: Mapping[str, Any] | None = None,
                     seeds: tuple[int, ...] | None = None) -> Expansion:
    """Every run of the user ``grid`` under ``preset_name`` (narrowed by ``only``), with
    resolved configs, tagged ``(grid.name, preset_name, cell)`` by the sweep."""
    if seeds is not None:
        grid = dataclasses.replace(grid, seeds=tuple(seeds))
    overrides = check_user_overrides(grid, overrides or {})
    only = only or {}
    check_user_only(grid, only)
    preset = get_preset(preset_name)
    fixed = {k: v for k, v in grid.fixed.items() if not any(clashes(k, o) for o in overrides)}
    specs, skipped = [], []
    for cell in grid.cells():
        if not all(str(cell[k]) in values for k, values in only.items()):
            continue
        settings = {**fixed, **cell, **overrides}
        paper = settings.get("paper_dataset", "cifar10")
        base = preset.settings(paper, data_root)
        if base is None:
            skipped.append((cell, f"preset {preset.name} has no setting for {paper} "
                                  f"(data set not present under {data_root})"))
            continue
        fields, loss_overrides = run_fields(base, settings, data_root)
        config = resolve_config(dataset=fields.pop("dataset"), loss=fields.pop("loss", "ce"),
                                loss_overrides=loss_overrides, hparams_from=paper,
                                device=device, data_root=str(data_root), **fields)
        specs.append(RunSpec(grid.name, preset.name, dict(cell), config))
    return Expansion(specs, skipped)
