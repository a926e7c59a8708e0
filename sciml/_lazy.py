"""Lazy package exports (PEP 562): a package's public names load their module on first use."""

from __future__ import annotations

import importlib
from typing import Callable


def lazy_exports(package: str, names_by_module: dict[str, tuple[str, ...]]) -> tuple[list[str], Callable, Callable]:
    """``(__all__, __getattr__, __dir__)`` for ``package`` whose names live in its submodules.

    ``names_by_module`` maps a submodule (relative to ``package``) to the names it defines; a name is
    imported from its module the first time ``package.name`` is read, so importing the package loads none
    of them (and no torch). Usage, in ``package/__init__.py``:
    ``__all__, __getattr__, __dir__ = lazy_exports(__name__, {"model": ("Model", ...), ...})``.
    """
    module_of = {name: module for module, names in names_by_module.items() for name in names}

    def __getattr__(name: str):
        if name in module_of:
            return getattr(importlib.import_module(f".{module_of[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(module_of)

    return list(module_of), __getattr__, __dir__
