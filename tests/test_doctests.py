"""The ``>>>`` examples in our docstrings run, so none of them can go stale."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
from types import ModuleType

import pytest

PACKAGES = ("jaseci_like", "jaseci_like_services")


def modules_with_examples() -> list[str]:
    found = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            spec = importlib.util.find_spec(info.name)
            origin = spec.origin if spec is not None else None
            if origin and origin.endswith(".py"):
                with open(origin, encoding="utf-8") as source:
                    if ">>> " in source.read():
                        found.append(info.name)
    return sorted(found)


MODULES = modules_with_examples()


def test_the_examples_are_found() -> None:
    assert "jaseci_like.meta" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_of_a_module_run(name: str) -> None:
    module: ModuleType = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=True)
    assert result.attempted > 0, f"{name}: its examples were not found"
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
