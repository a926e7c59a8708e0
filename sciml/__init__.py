"""sciml: neural operators, forecasting, function-space diffusion and reference solvers on xarray data.

Importing ``sciml`` is cheap and side-effect free: it loads torch and numpy only. xarray, matplotlib,
neuraloperator and torch-harmonics are imported inside the functions that need them.
"""

from __future__ import annotations

from ._version import __version__
from .errors import ConfigError, DataError, GridError, SciMLError, SolverError
from .grids import Grid
from .metrics import max_error, nrmse, rel_l2
from .random_fields import gaussian_random_field

__all__ = [
    "__version__", "Grid", "gaussian_random_field", "rel_l2", "nrmse", "max_error",
    "SciMLError", "ConfigError", "DataError", "GridError", "SolverError", "Surrogate", "load_exported",
]


def __getattr__(name: str):
    # Lazy: the Surrogate pulls in xarray; keep `import sciml` light.
    if name == "Surrogate":
        from .surrogate import Surrogate

        return Surrogate
    if name == "load_exported":
        from .exported import load_exported

        return load_exported
    raise AttributeError(f"module 'sciml' has no attribute {name!r}")
