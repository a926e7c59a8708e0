"""Named dataset recipes (this folder is installed as ``sciml.datasets``).

One small module per dataset fixes a physical setting and calls a solver in ``sciml.solvers``; none
downloads anything. Each has ``generate(n_samples, resolution, *, seed, ...) -> xr.Dataset``,
deterministic by seed and resolution-consistent (the same seed at a finer resolution gives the
fine-grid solutions of the same continuous initial conditions or coefficients).
"""

from __future__ import annotations

import importlib
import inspect
import numbers
from typing import TYPE_CHECKING

from sciml.errors import ConfigError, SciMLError

if TYPE_CHECKING:
    import xarray as xr

RECIPES = {"ns2d": "ns2d", "ns2d-kolmogorov": "ns2d_kolmogorov", "burgers": "burgers", "darcy": "darcy",
           "swe-sphere": "swe_sphere", "turbulence3d": "turbulence",
           "turbulence2d": "turbulence2d"}

__all__ = ["RECIPES", "generate"]


def generate(name: str, n_samples: int, resolution: int, *, seed: int, workers: int = 1, **options) -> xr.Dataset:
    """Run recipe ``name``; unknown names or options raise :class:`sciml.ConfigError`.

    ``workers > 1`` splits the samples over that many spawned processes, whole solver chunks each
    (recipes taking ``first_sample``, ``chunk`` and ``device``); the result is byte-identical to
    ``workers=1``. Workers keep this process's torch thread count: lower it first for many CPU workers.
    """
    if name not in RECIPES:
        raise ConfigError(f"unknown dataset {name!r}; available: {', '.join(RECIPES)}")
    for key, value, low in (("n", n_samples, 1), ("resolution", resolution, 4)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ConfigError(f"{key} must be an integer >= {low}, got {value!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
    for key, value in (("seed", seed), ("first_sample", options.get("first_sample", 0))):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ConfigError(f"{key} must be an integer >= 0, got {value!r}")
    if options.get("device") is not None:
        _check_device(options["device"])
    module = importlib.import_module(f"{__name__}.{RECIPES[name]}")
    accepted = inspect.signature(module.generate).parameters
    unknown = sorted(k for k in options if k not in accepted)
    if unknown:
        raise ConfigError(f"dataset {name!r} does not take {', '.join('--' + k.replace('_', '-') for k in unknown)}")
    try:
        _estimate(module, n_samples, resolution, options).check(stacklevel=4)
    except SciMLError:
        raise
    except ValueError as err:
        raise ConfigError(f"dataset {name!r}: {err}") from None
    if workers > 1:
        from ._common import generate_in_workers

        return generate_in_workers(name, n_samples, resolution, seed=seed, workers=workers, **options)
    try:
        return module.generate(n_samples, resolution, seed=seed, **options)
    except SciMLError:
        raise
    except ValueError as err:  # a recipe's own option check
        raise ConfigError(f"dataset {name!r}: {err}") from None


def _estimate(module, n_samples: int, resolution: int, options: dict):
    """The recipe's :class:`sciml._budget.Estimate` for these options (a recipe without ``estimate``: nothing)."""
    from sciml._budget import Estimate

    if not hasattr(module, "estimate"):
        return Estimate(module.__name__, output_bytes=0)
    return module.estimate(n_samples, resolution, **options)


def estimate(name: str, n_samples: int, resolution: int, **options):
    """The memory, file size and run time :func:`generate` would need (a :class:`sciml._budget.Estimate`; its
    ``file_bytes`` is what the command line checks against the free disk before solving)."""
    if name not in RECIPES:
        raise ConfigError(f"unknown dataset {name!r}; available: {', '.join(RECIPES)}")
    module = importlib.import_module(f"{__name__}.{RECIPES[name]}")
    try:
        return _estimate(module, n_samples, resolution, options)
    except SciMLError:
        raise
    except ValueError as err:
        raise ConfigError(f"dataset {name!r}: {err}") from None


def _check_device(device) -> None:
    """A device this process can use, before any work: :class:`ConfigError` naming ``device`` otherwise."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"device {device!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: CUDA is not available here; use device cpu")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present; "
                              f"use cuda:0 to cuda:{torch.cuda.device_count() - 1}")
