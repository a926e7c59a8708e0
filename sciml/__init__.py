"""sciml: neural operators, forecasting, function-space diffusion and reference solvers on xarray data.

Importing ``sciml`` is cheap and side-effect free: it loads the error classes and the version only; torch
and numpy come with the first use of a name that needs them (``sciml.Grid``, ``sciml.rel_l2``, ...: PEP 562
lazy exports), so ``sciml --help`` stays fast. xarray, matplotlib, neuraloperator and torch-harmonics are
imported inside the functions that need them.
"""

from __future__ import annotations

from ._version import __version__
from .errors import ConfigError, DataError, GridError, SciMLError, SolverError

__all__ = [
    "__version__", "Grid", "gaussian_random_field", "rel_l2", "nrmse", "max_error",
    "SciMLError", "ConfigError", "DataError", "GridError", "SolverError", "Surrogate", "load_exported",
]


# name -> submodule; imported on first access (the submodules import torch, the Surrogate also xarray).
_LAZY = {"Grid": "grids", "gaussian_random_field": "random_fields", "rel_l2": "metrics", "nrmse": "metrics",
         "max_error": "metrics"}


#: Subpackages and public modules reachable as attributes of ``sciml``, imported on first access.
_SUBPACKAGES = {"bench", "data", "datasets", "diffusion", "evaluation", "forecast", "grids", "jepa", "metrics", "models",
                "node", "plotting", "random_fields", "solvers", "spectral", "surrogate", "train"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value  # later accesses skip this hook
        return value
    if name == "Surrogate":
        from .surrogate import Surrogate

        return Surrogate
    if name == "load_exported":
        from .exported import load_exported

        return load_exported
    if name in _SUBPACKAGES:  # ``import sciml; sciml.data.open(...)`` works without importing sciml.data first
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'sciml' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
