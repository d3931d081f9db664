"""One registry pattern for every extension point (timm's ``create_model`` idea, with metadata).

A :class:`Registry` maps a name to an :class:`Entry`: a factory plus an *info* object that
describes the entry (a loss's formula and hyper-parameters, a data set's classes and image size,
a trigger's parameters, a grid, ...). Entries are listed in an explicit order: ``order`` when
given, else the order of declaration in the one module that declares them, never import order.

Two spellings, one pattern::

    GRIDS.add("table6", None, TABLE6)                       # plain declaration
    @PRESETS.register("paper", info=PresetInfo(...))      # decorator on the factory
    def _paper(...): ...

A factory may be given as ``"package.module:attribute"``: it is imported on the first
``get``/``create`` only, so names and infos (what ``--help`` and ``click.Choice`` read) load
without the heavy module (torch). The CLI feeds ``registry.names()`` to ``click.Choice``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from dal_backdoor.validation import check_choice

I = TypeVar("I")  # the info type
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True)
class Entry(Generic[I]):
    """One registered name: its info, its factory (a callable or ``"module:attr"``) and rank."""

    name: str
    info: I
    factory: Callable[..., object] | str | None
    order: float


def load_reference(ref: str) -> Callable[..., object]:
    """``"package.module:attr"`` -> the attribute (the module is imported now)."""
    module, _, attr = ref.partition(":")
    if not module or not attr:
        raise RuntimeError(f"factory reference {ref!r} is not 'package.module:attribute'")
    return getattr(importlib.import_module(module), attr)


class Registry(Generic[I, T]):
    """Named entries (factory + info) in an explicit order.

    ``on_load(name, factory, info)`` (optional) checks a factory when it is first resolved,
    e.g. that a trigger class accepts exactly the parameters its info lists.
    """

    def __init__(
        self, kind: str, *, on_load: Callable[[str, Callable[..., T], I], None] | None = None
    ) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[I]] = {}
        self._loaded: dict[str, Callable[..., T]] = {}
        self._on_load = on_load

    # -- declaring ------------------------------------------------------------------------------
    def add(
        self,
        name: str,
        factory: Callable[..., T] | str | None,
        info: I,
        *,
        order: float | None = None,
    ) -> None:
        """Declare ``name``; ``factory`` is a callable, ``"module:attr"`` or None (info only)."""
        if name in self._entries:
            raise RuntimeError(f"{self.kind} {name!r} registered twice")
        info_name = getattr(info, "name", name)
        if info_name != name:
            raise RuntimeError(f"{self.kind} {name!r} registered with the info of {info_name!r}")
        if callable(factory) and self._on_load is not None:
            self._on_load(name, factory, info)  # a factory given here is checked here
        rank = float(len(self._entries)) if order is None else float(order)
        self._entries[name] = Entry(name, info, factory, rank)

    def register(self, name: str, info: I, *, order: float | None = None) -> Callable[[F], F]:
        """Decorator form of :meth:`add` for a factory defined where it is registered."""

        def decorator(factory: F) -> F:
            self.add(name, factory, info, order=order)  # type: ignore[arg-type]
            return factory

        return decorator

    def remove(self, name: str) -> None:
        """Forget ``name`` (for tests that register a temporary entry)."""
        self._entries.pop(name, None)
        self._loaded.pop(name, None)

    # -- reading -------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Every name, by ``order`` (declaration order when not given)."""
        ranked = sorted(enumerate(self._entries.values()), key=lambda p: (p[1].order, p[0]))
        return [entry.name for _, entry in ranked]

    def entry(self, name: str) -> Entry[I]:
        check_choice(self.kind, name, self.names())
        return self._entries[name]

    def info(self, name: str) -> I:
        """The info of ``name`` (ConfigError listing the names if unknown); no heavy import."""
        return self.entry(name).info

    def infos(self) -> list[I]:
        return [self._entries[n].info for n in self.names()]

    def get(self, name: str) -> Callable[..., T]:
        """The factory of ``name``, importing its module on first use."""
        entry = self.entry(name)
        if name not in self._loaded:
            factory = entry.factory
            if factory is None:
                raise RuntimeError(f"{self.kind} {name!r} has no factory (info only)")
            resolved = factory
            if isinstance(factory, str):
                resolved = load_reference(factory)
                if self._on_load is not None:
                    self._on_load(name, resolved, entry.info)  # type: ignore[arg-type]
            self._loaded[name] = resolved  # type: ignore[assignment]
        return self._loaded[name]

    def create(self, name: str, *args: object, **kwargs: object) -> T:
        return self.get(name)(*args, **kwargs)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


def lazy_getattr(module: str, lazy: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) that imports the names of ``lazy`` (name -> module)
    on first use, so a package can re-export torch-using names without importing torch."""

    def __getattr__(name: str) -> Any:
        if name in lazy:
            return getattr(importlib.import_module(lazy[name]), name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
