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
import os
from typing import TYPE_CHECKING

from sciml.errors import ConfigError, SciMLError

if TYPE_CHECKING:
    import xarray as xr

RECIPES = {"ns2d": "ns2d", "ns2d-kolmogorov": "ns2d_kolmogorov", "burgers": "burgers", "darcy": "darcy",
           "swe-sphere": "swe_sphere", "turbulence3d": "turbulence",
           "turbulence2d": "turbulence2d"}

__all__ = ["RECIPES", "generate"]


def generate(name: str, n_samples: int, resolution: int, *, seed: int, workers: int = 1, client=None,
             shard_dir: str | os.PathLike | None = None, retries: int = 2, **options) -> xr.Dataset:
    """Run recipe ``name``; unknown names or options raise :class:`sciml.ConfigError`.

    Scale-out (recipes taking ``first_sample``, ``chunk`` and ``device``: all but ``swe-sphere``): with
    ``workers > 1``, a ``client`` or a ``shard_dir``, each solver chunk (``chunk`` samples solved as one
    batch) is one dask task, and the result is
    byte-identical to ``workers=1`` (``.identical()`` and the same bytes once written).

    Args:
        workers: processes of a ``distributed.LocalCluster`` started for this call (one thread each; each
            task runs with this process's torch thread count, since FFT results depend on it, so lower it
            first for many CPU workers). ``device="cuda"`` gives worker ``i`` ``cuda:i`` modulo the GPUs.
        client: a ``distributed.Client``, or a scheduler address (``"tcp://host:8786"``); instead of
            ``workers``. An address that is malformed or refuses the connection is a one-line
            :class:`sciml.ConfigError` naming it at once, one that does not answer within 10 s the same
            after that. Its workers must have ``sciml`` installed; with ``device="cuda"`` each uses its own
            default GPU (one ``GPU`` resource per task where the workers declare it).
        shard_dir: each task writes its chunk there as ``part-NNNNNNNN.nc`` (:mod:`sciml.data.shards`) and
            the result is opened lazily from those files; a second call with the same directory solves only
            the missing shards, and a directory of another recipe, resolution, seed or option is refused.
        retries: re-runs of a failed task (a task whose worker died is re-run by the scheduler too).

    Without ``shard_dir`` the parts come back to this process and are joined in memory; with it the
    memory check counts one chunk. In a dask worker the first task raises glibc's allocator thresholds
    (:func:`sciml.allocator.keep_freed_memory`; dask's ``MALLOC_TRIM_THRESHOLD_=65536`` made solving 5x
    slower). See ``docs/guides/cluster.md``.
    """
    if name not in RECIPES:
        raise ConfigError(f"unknown dataset {name!r}; available: {', '.join(RECIPES)}")
    for key, value, low in (("n", n_samples, 1), ("resolution", resolution, 4)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ConfigError(f"{key} must be an integer >= {low}, got {value!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"retries must be an integer >= 0, got {retries!r}")
    if client is not None and workers != 1:
        raise ConfigError(f"workers={workers} and a client are both given; the client's cluster has its own workers")
    for key, value in (("seed", seed), ("first_sample", options.get("first_sample", 0))):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ConfigError(f"{key} must be an integer >= 0, got {value!r}")
    if options.get("device") is not None:  # an external cluster's workers have their own devices
        _check_device(options["device"], here=client is None)
    if isinstance(client, str):  # a refused or malformed address: one line now, before any progress bar
        from sciml.sweep import _probe

        _probe(client)
    module = importlib.import_module(f"{__name__}.{RECIPES[name]}")
    accepted = inspect.signature(module.generate).parameters
    unknown = sorted(k for k in options if k not in accepted)
    if unknown:
        raise ConfigError(f"dataset {name!r} does not take {', '.join('--' + k.replace('_', '-') for k in unknown)}")
    try:
        _estimate(module, n_samples, resolution, options, sharded=shard_dir is not None).check(stacklevel=4)
    except SciMLError:
        raise
    except ValueError as err:
        raise ConfigError(f"dataset {name!r}: {err}") from None
    try:
        if workers > 1 or client is not None or shard_dir is not None:
            from ._common import generate_distributed

            return generate_distributed(name, n_samples, resolution, seed=seed, workers=workers, client=client,
                                        shard_dir=shard_dir, retries=retries, **options)
        return module.generate(n_samples, resolution, seed=seed, **options)
    except SciMLError:
        raise
    except ValueError as err:  # a recipe's own option check
        raise ConfigError(f"dataset {name!r}: {err}") from None


def _estimate(module, n_samples: int, resolution: int, options: dict, *, sharded: bool = False):
    """The recipe's :class:`sciml._budget.Estimate` for these options (a recipe without ``estimate``: nothing).

    ``sharded``: the samples go to a shard directory, one chunk at a time, and are opened lazily from it, so
    the memory is that of one chunk (``output_bytes`` scaled by ``chunk / n_samples``); the file size and the
    run time stay those of all the samples.
    """
    from sciml._budget import Estimate

    if not hasattr(module, "estimate"):
        return Estimate(module.__name__, output_bytes=0)
    budget = module.estimate(n_samples, resolution, **options)
    chunk = options.get("chunk", inspect.signature(module.generate).parameters.get("chunk"))
    chunk = getattr(chunk, "default", chunk)
    if sharded and isinstance(chunk, int) and not isinstance(chunk, bool) and 1 <= chunk < n_samples:
        budget.output_bytes *= chunk / n_samples
    return budget


def estimate(name: str, n_samples: int, resolution: int, *, sharded: bool = False, **options):
    """The memory, file size and run time :func:`generate` would need (a :class:`sciml._budget.Estimate`; its
    ``file_bytes`` is what the command line checks against the free disk before solving). ``sharded``: for
    ``generate(..., shard_dir=...)``, which holds one chunk in memory at a time."""
    if name not in RECIPES:
        raise ConfigError(f"unknown dataset {name!r}; available: {', '.join(RECIPES)}")
    module = importlib.import_module(f"{__name__}.{RECIPES[name]}")
    try:
        return _estimate(module, n_samples, resolution, options, sharded=sharded)
    except SciMLError:
        raise
    except ValueError as err:
        raise ConfigError(f"dataset {name!r}: {err}") from None


def _check_device(device, *, here: bool = True) -> None:
    """A torch device (and, ``here``, one this process can use), before any work: :class:`ConfigError` naming
    ``device`` otherwise."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"device {device!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if parsed.type == "cuda" and here:
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: CUDA is not available here; use device cpu")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present; "
                              f"use cuda:0 to cuda:{torch.cuda.device_count() - 1}")
