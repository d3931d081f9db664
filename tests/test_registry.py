"""The one registry pattern: explicit order, metadata, lazy factories, clear errors."""

from __future__ import annotations

import sys

import pytest

from dal_backdoor.errors import ConfigError
from dal_backdoor.registry import Registry, load_reference


def test_order_is_declaration_order_unless_given() -> None:
    reg: Registry[str, int] = Registry("thing")
    reg.add("b", lambda: 2, "info b")
    reg.add("a", lambda: 1, "info a")
    reg.add("first", lambda: 0, "info first", order=-1)
    assert reg.names() == ["first", "b", "a"]
    assert list(reg) == reg.names()
    assert len(reg) == 3
    assert reg.infos() == ["info first", "info b", "info a"]
    assert reg.create("a") == 1
    assert reg.info("b") == "info b"


def test_decorator_and_add_make_the_same_entry() -> None:
    reg: Registry[str, int] = Registry("thing")

    @reg.register("double", "doubles")
    def double(x: int) -> int:
        return 2 * x

    reg.add("triple", lambda x: 3 * x, "triples")
    assert reg.create("double", 4) == 8
    assert reg.create("triple", 4) == 12
    assert reg.entry("double").factory is double
    assert reg.entry("double").order == 0.0
    assert reg.entry("triple").order == 1.0


def test_unknown_name_lists_the_choices() -> None:
    reg: Registry[str, int] = Registry("widget")
    reg.add("x", lambda: 1, "i")
    with pytest.raises(ConfigError, match="^unknown widget 'y'; allowed: x$"):
        reg.info("y")
    with pytest.raises(ConfigError, match="^unknown widget 'y'; allowed: x$"):
        reg.create("y")


def test_duplicates_and_mismatched_info_are_programming_errors() -> None:
    class Info:
        name = "other"

    reg: Registry[object, int] = Registry("thing")
    reg.add("x", lambda: 1, "i")
    with pytest.raises(RuntimeError, match="thing 'x' registered twice"):
        reg.add("x", lambda: 2, "j")
    with pytest.raises(RuntimeError, match="thing 'y' registered with the info of 'other'"):
        reg.add("y", lambda: 2, Info())
    reg.add("z", None, "info only")
    with pytest.raises(RuntimeError, match="thing 'z' has no factory"):
        reg.get("z")
    reg.remove("x")
    assert reg.names() == ["z"]


def test_string_factories_are_imported_on_first_use_and_checked() -> None:
    module = "tests.registry_target_module"
    sys.modules.pop(module, None)
    seen: list[str] = []
    reg: Registry[str, object] = Registry("thing", on_load=lambda n, _f, _i: seen.append(n))
    reg.add("join", "os.path:join", "joins paths")
    reg.add("lazy", f"{module}:VALUE", "never loaded")
    assert reg.names() == ["join", "lazy"]
    assert seen == []
    assert reg.create("join", "a", "b") == "a/b"
    assert seen == ["join"]
    reg.get("join")
    assert seen == ["join"]  # resolved once
    assert module not in sys.modules
    with pytest.raises(RuntimeError, match="is not 'package.module:attribute'"):
        load_reference("os.path.join")


def test_lazy_getattr_imports_on_first_use_and_refuses_unknown_names() -> None:
    from dal_backdoor.registry import lazy_getattr

    getter = lazy_getattr("pkg", {"sqrt": "math"})
    assert getter("sqrt")(9.0) == 3.0
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'cos'"):
        getter("cos")
