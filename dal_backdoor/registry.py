"""A tiny named-factory registry (timm's ``create_model`` idea).

Losses, data sets, noise kinds and triggers each keep one ``Registry``; the CLI feeds
``registry.names()`` to ``click.Choice`` so that adding an entry is one file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from dal_backdoor.validation import check_choice

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories; ``create`` validates the name with a clear error."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise RuntimeError(f"{self.kind} {name!r} registered twice")
            self._factories[name] = factory
            return factory

        return decorator

    def get(self, name: str) -> Callable[..., T]:
        check_choice(self.kind, name, self.names())
        return self._factories[name]

    def create(self, name: str, *args: object, **kwargs: object) -> T:
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        return list(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories
