"""A researcher's own network: ``--model module:function``.

The function (or class) is called as::

    function(num_classes: int, *, in_channels: int, width: int, **model_params) -> nn.Module

``num_classes`` and ``in_channels`` come from the data set, ``width`` is the run's ``--width``
(ignore it if the network has no width), ``model_params`` are the run's ``--model-param K=V``
options. If the function has an ``init`` parameter it also gets the run's ``--init``;
otherwise the network keeps its own initialisation and ``--init`` must be ``pytorch``. Its
parameters are drawn from a generator seeded by the run's seed, as for the built-in models.

``module`` is imported as Python imports it (``sys.path``, so also ``PYTHONPATH``), else from
the current folder. The run records (``model_params``):

- ``sha256``: SHA-256 over the source files of the module and of the function (their bytes,
  each preceded by its size), so the run id changes when that code changes; a run whose
  recorded hash no longer matches the code refuses to build the model. Only these files are
  hashed, not other modules they import;
- ``sys_path``: the folder the module's top-level package was imported from; spawned sweep
  workers, Ray tasks and later ``evaluate`` calls import from there (it is not part of the run
  id: the content is).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from dal_backdoor.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

#: Keys of ``model_params`` that the tool records (not passed to the function).
RECORDED = ("sha256", "sys_path")
_REFERENCE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def is_reference(name: str) -> bool:
    """Whether ``name`` is of the form ``module:function`` (not a registered name)."""
    return ":" in name


def _check_reference(ref: str, registered: list[str]) -> tuple[str, str]:
    if not _REFERENCE.match(ref):
        raise ConfigError(f"model {ref!r} is not a registered name or module:function; "
                          f"allowed: {', '.join(registered)} or e.g. mynets:build")
    module, _, attr = ref.partition(":")
    return module, attr


def _import(module: str, sys_path: str | None) -> ModuleType:
    """Import ``module`` from ``sys_path`` (recorded), ``sys.path`` or the current folder."""
    extra = [p for p in (sys_path, os.getcwd()) if p and p not in sys.path]
    for attempt in range(len(extra) + 1):
        try:
            return importlib.import_module(module)
        except ModuleNotFoundError as exc:
            top = module.split(".")[0]
            if exc.name is None or top != exc.name.split(".")[0] or attempt == len(extra):
                raise ConfigError(f"model module {module!r} cannot be imported ({exc}); "
                                  f"allowed: a module on sys.path or in {os.getcwd()}") from None
            sys.path.append(extra[attempt])
        except Exception as exc:  # the user's code failed while importing
            raise ConfigError(f"importing model module {module!r} failed: {type(exc).__name__}:"
                              f" {' '.join(str(exc).split())}") from None
    raise AssertionError("unreachable")


def _source_files(mod: ModuleType, fn: Callable[..., Any]) -> list[Path]:
    files = {getattr(mod, "__file__", None)}
    with contextlib.suppress(TypeError):  # a builtin or C function: the module's file only
        files.add(inspect.getsourcefile(fn))
    found = sorted(Path(f).resolve() for f in files if f and Path(f).is_file())
    if not found:
        raise ConfigError(f"model module {mod.__name__!r} has no source file to hash; allowed: "
                          "a module imported from a .py file")
    return found


def source_sha256(files: list[Path]) -> str:
    """SHA-256 over the files' bytes, each preceded by its size (8 bytes, little-endian)."""
    digest = hashlib.sha256(b"dal-backdoor/model-source/v1\n")
    for path in files:
        data = path.read_bytes()
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _sys_path_of(mod: ModuleType) -> str:
    """The folder the module's top-level package was imported from."""
    path = Path(str(mod.__file__)).resolve()
    depth = len(mod.__name__.split(".")) + (path.name == "__init__.py")
    return str(path.parents[depth - 1])


def load_function(ref: str, params: Mapping[str, Any], registered: list[str]
                  ) -> tuple[Callable[..., nn.Module], str, str]:
    """(the function, its sources' SHA-256, its sys.path folder); ConfigError if the
    recorded ``sha256`` no longer matches the code."""
    module, attr = _check_reference(ref, registered)
    mod = _import(module, params.get("sys_path"))
    fn = getattr(mod, attr, None)
    if fn is None or not callable(fn):
        raise ConfigError(f"model {ref!r}: module {module!r} has no callable {attr!r}")
    digest = source_sha256(_source_files(mod, fn))
    recorded = params.get("sha256")
    if recorded is not None and recorded != digest:
        raise ConfigError(f"model {ref!r} changed: its source's sha256 is {digest}, the run "
                          f"recorded {recorded}; allowed: the code the run was configured with")
    return fn, digest, _sys_path_of(mod)


def accepts_init(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` names an ``init`` parameter (``**kwargs`` does not count)."""
    try:
        return "init" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def user_kwargs(params: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of the function: ``model_params`` less the recorded keys."""
    return {k: v for k, v in params.items() if k not in RECORDED}


def check_init(ref: str, fn: Callable[..., Any], init: str, default: str) -> bool:
    """Whether ``init`` is passed to ``fn``; ConfigError for a non-default init it cannot take."""
    if accepts_init(fn):
        return True
    if init != default:
        raise ConfigError(f"init={init} but model {ref!r} takes no init parameter; allowed "
                          f"for it: {default} (its own initialisation)")
    return False
