"""The public names: everything exported exists, is documented, and nothing private leaks."""

from __future__ import annotations

import importlib
import pkgutil

import counterpoint


def test_every_exported_name_exists_and_has_a_docstring() -> None:
    for name in counterpoint.__all__:
        obj = getattr(counterpoint, name)
        if callable(obj):
            assert obj.__doc__, f"counterpoint.{name} has no docstring"


def test_every_module_all_names_exist() -> None:
    for info in pkgutil.walk_packages(counterpoint.__path__, "counterpoint."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            assert hasattr(module, name), f"{info.name}.__all__ names missing {name!r}"
            assert not name.startswith("_"), f"{info.name}.__all__ exports private {name!r}"
