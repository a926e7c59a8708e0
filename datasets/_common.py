"""Helpers shared by the recipes: chunked solving with a progress bar, the output dataset, and
generation split into dask tasks (:func:`generate_distributed`)."""

from __future__ import annotations

import inspect
import numbers
from typing import TYPE_CHECKING, Callable, Sequence

import torch

from sciml._proc import proc_kib_field
from sciml.errors import SolverError
from sciml.data.cf import trajectory_dataset
from sciml.grids import Grid
from sciml.spectral import spectral_resample

if TYPE_CHECKING:
    import xarray as xr


def chunked(run: Callable[[int, int], tuple[torch.Tensor, float]], n_samples: int, chunk: int, *, desc: str,
            progress: bool) -> tuple[torch.Tensor, list[float]]:
    """Call ``run(start, count)`` over chunks of samples; concatenate the results on the CPU.

    Returns the trajectories and the time step of each chunk (recipes pick one step per chunk; record
    them with :func:`step_attrs`).
    """
    from tqdm.auto import tqdm

    check_chunk(chunk)
    pieces, steps = [], []
    with tqdm(total=n_samples, desc=desc, unit="sample", disable=not progress, leave=False) as bar:
        for start in range(0, n_samples, chunk):
            count = min(chunk, n_samples - start)
            piece, dt = run(start, count)
            pieces.append(piece.cpu())
            steps.append(dt)
            if start == 0 and count < n_samples:
                check_memory(piece, count, n_samples)
            bar.update(count)
    return torch.cat(pieces), steps


def check_memory(piece: torch.Tensor, count: int, n_samples: int) -> None:
    """Refuse, after the first chunk, a run whose result cannot be held in memory (it would fail at the end,
    after all the solving): the chunks, their concatenation and the resampled output make about three
    copies of the result."""
    available = _available_bytes()
    needed = 3 * piece.element_size() * piece.numel() / count * n_samples
    if available is not None and needed > available:
        raise ValueError(f"{n_samples} samples need about {needed / 2**30:.1f} GiB of memory (the trajectories, their "
                         f"concatenation and the output) and {available / 2**30:.1f} GiB is available; generate them "
                         "in parts (first_sample= and n, --first-sample and --n on the command line) and open the "
                         "files together with sciml.data.open([...])")


def _available_bytes() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes; ``None`` where it cannot be read (not Linux)."""
    return proc_kib_field("/proc/meminfo", "MemAvailable")


# Seconds of one solver step per grid point and sample, on one CPU thread (measured for the pseudo-spectral
# Navier-Stokes and ETDRK4 Burgers steppers on the 2-core development machine: 2e-7 to 5e-7 s); an estimate
# for the ETA, not a promise.
SECONDS_PER_POINT_STEP = 5e-7
# Bytes of solver temporaries per grid point and sample solved at once (spectral copies, stage values, the
# random-field draw): an upper estimate.
WORK_BYTES_PER_POINT = 200
# What to do when a run is too large: shared by the recipes' estimates.
TOO_LARGE = ("use a smaller --resolution (or --solve-resolution), fewer --times or a smaller --n; or write shards "
             "(--shard-dir DIR without --out: one chunk in memory at a time, resumable, on --workers N or a --scheduler) "
             "and open them with sciml.data.open(DIR)")


def stepping_estimate(what: str, *, n_samples: int, points: int, output_points: int, n_times: int, itemsize: int,
                      chunk: int, t_span: float, dt: float, device="cpu"):
    """:class:`sciml._budget.Estimate` of a time-stepping recipe: ``n_samples`` trajectories solved ``chunk`` at a
    time on ``points`` grid points, ``n_times`` frames of ``output_points`` kept, ``t_span / dt`` steps per chunk."""
    import math

    from sciml._budget import Estimate

    batch = min(max(int(chunk), 1), n_samples)
    steps = math.ceil(n_samples / batch) * (t_span / dt if dt > 0 and math.isfinite(t_span) else 0.0)
    speed = 20.0 if str(device).startswith("cuda") else 1.0
    return Estimate(what, output_bytes=n_samples * n_times * points * itemsize,
                    work_bytes=batch * points * WORK_BYTES_PER_POINT,
                    file_bytes=n_samples * n_times * output_points * itemsize, steps=steps,
                    seconds_per_step=batch * points * SECONDS_PER_POINT_STEP / speed, fix=TOO_LARGE)


def time_span(times) -> float:
    """``max(times) - min(times)`` (0 for what the solver's own check will refuse)."""
    try:
        values = [float(t) for t in times]
        return max(values) - min(values) if values else 0.0
    except (TypeError, ValueError):
        return 0.0


def check_chunk(chunk: int) -> int:
    if isinstance(chunk, bool) or not isinstance(chunk, numbers.Integral) or chunk < 1:
        raise ValueError(f"chunk must be an integer >= 1, got {chunk!r}")
    return int(chunk)


def check_dt(dt: float | None) -> float | None:
    """``None`` (the recipe picks the step) or a positive finite step: ``dt=0`` must not mean "default"."""
    from sciml.solvers._stepping import check_dt as check_step

    try:
        return None if dt is None else check_step(dt)
    except SolverError as err:  # an option of the recipe: generate() names the dataset
        raise ValueError(str(err)) from None


def step_attrs(steps: Sequence[float], chunk: int) -> dict:
    """``{"dt": step}`` when every chunk used the same step, else ``{"dt": [step of each chunk], "chunk": chunk}``
    (samples ``first_sample + i * chunk, ...`` were solved with ``dt[i]``)."""
    steps = [float(step) for step in steps]
    if len(set(steps)) == 1:
        return {"dt": steps[0]}
    return {"dt": steps, "chunk": chunk}


def solve_grid(resolution: int, solve_resolution: int | None, *, default: int | None = None) -> int:
    """The grid a recipe solves on: ``solve_resolution``, else (``None``) ``default``, else ``resolution``.

    A solve grid coarser than the output grid is refused: the output would be an interpolation
    presented as a solution.
    """
    if solve_resolution is None:
        solve_at = resolution if default is None else default
    elif isinstance(solve_resolution, bool) or not isinstance(solve_resolution, numbers.Integral):
        raise ValueError(f"solve_resolution must be an integer (or None for the default), got {solve_resolution!r}")
    else:
        solve_at = int(solve_resolution)
    if solve_at < resolution:
        raise ValueError(f"solve_resolution {solve_at} is coarser than resolution {resolution}: the output would be "
                         "interpolated, not solved; use solve_resolution >= resolution")
    return solve_at


def periodic_dataset(name: str, fields: torch.Tensor, resolution: int, *, times: Sequence[float] | None, seed: int,
                     first_sample: int, attrs: dict, command: str | None) -> xr.Dataset:
    """Truncate ``(sample, [time,] *space)`` fields spectrally to ``resolution`` and wrap them with CF metadata."""
    ndim = fields.ndim - (2 if times is not None else 1)
    shape = (resolution,) * ndim
    fields = spectral_resample(fields, shape)
    grid = Grid.box(*shape)
    coords = {dim: torch.from_numpy(values) for dim, values in grid.coords().items()}
    all_attrs = {**attrs, "seed": seed, "first_sample": first_sample}
    if command:
        all_attrs["history"] = command
    ds = trajectory_dataset({name: fields}, times=times, coords=coords, attrs=all_attrs)
    return ds.assign_coords(sample=ds["sample"] + first_sample)


# Options of a recipe that do not change its samples: not recorded in a shard directory's manifest.
_NOT_RECORDED = ("seed", "first_sample", "progress", "command")


def chunk_ranges(n_samples: int, chunk: int) -> list[tuple[int, int]]:
    """``(start, count)`` of each solver chunk (``chunk`` samples solved as one batch, with one CFL step)."""
    return [(start, min(chunk, n_samples - start)) for start in range(0, n_samples, chunk)]


def generate_distributed(name: str, n_samples: int, resolution: int, *, seed: int, workers: int = 1, client=None,
                         shard_dir=None, retries: int = 2, progress: bool = True, **options) -> xr.Dataset:
    """:func:`sciml.datasets.generate` with each solver chunk solved as one dask task.

    The samples split into the recipe's chunks (``chunk`` samples solved as one batch with one CFL step,
    from ``first_sample``), so each task solves exactly a batch one process would; the parts, joined along
    ``sample`` with the first part's attributes (and the steps of every chunk in ``dt``), equal the
    one-process dataset byte for byte. Each task sets this process's torch thread count on its worker,
    since FFT results depend on it: lower it before a CPU run with many workers per machine.

    Where the tasks run: on ``client`` (a ``distributed.Client``, or a scheduler address string connected
    to within ``sciml.sweep.SCHEDULER_TIMEOUT`` seconds), else on a ``LocalCluster`` of ``workers`` processes with
    one thread each, started here and closed at the end; ``workers=1`` without a client runs the tasks in
    this process. Tasks are retried ``retries`` times when they fail, and the scheduler re-runs the task of
    a worker that died. ``device="cuda"``: on the local cluster worker ``i`` uses ``cuda:i`` (modulo the
    GPUs present) and runs one task at a time, so each worker has its GPU; on an external cluster each
    worker uses its own default GPU (the one its ``CUDA_VISIBLE_DEVICES`` names), and tasks ask for one
    ``GPU`` resource when the cluster's workers declare that resource (``dask worker --resources GPU=1``).

    ``shard_dir``: each task writes its chunk as a shard there (:mod:`sciml.data.shards`) and returns only
    the path; shards already present and valid are not solved again (resume), a directory of another run
    is refused. The result is then opened lazily from the shards (dask arrays); without ``shard_dir`` the
    parts come back through the scheduler and are joined in memory. Called by
    :func:`sciml.datasets.generate` after it checked the name, the sizes and the options.
    """
    import importlib

    from tqdm.auto import tqdm

    from sciml.datasets import RECIPES
    from sciml.errors import ConfigError
    from sciml.sweep import _run_tasks

    accepted = inspect.signature(importlib.import_module(f"sciml.datasets.{RECIPES[name]}").generate).parameters
    if not {"first_sample", "chunk", "device"} <= accepted.keys():
        raise ConfigError(f"dataset {name!r} cannot be split across workers (it takes no first_sample, chunk and device)")
    first_sample = options.pop("first_sample", 0)
    device = options.pop("device", accepted["device"].default)
    chunk = options.get("chunk", accepted["chunk"].default)
    try:
        chunk = check_chunk(chunk)
    except ValueError as err:
        raise ConfigError(f"dataset {name!r}: {err}") from None
    ranges = chunk_ranges(n_samples, chunk)
    manifest, done = None, set()
    if shard_dir is not None:
        from sciml.data.shards import prepare, shard_manifest

        recorded = {k: p.default for k, p in accepted.items() if p.default is not inspect.Parameter.empty}
        recorded.update(options, device=device)
        manifest = shard_manifest(recipe=name, resolution=resolution, seed=seed,
                                  options={k: v for k, v in recorded.items() if k not in _NOT_RECORDED},
                                  first_sample=first_sample, n_samples=n_samples, chunk=chunk,
                                  shards=[(first_sample + start, count) for start, count in ranges])
        done = prepare(shard_dir, manifest)
    calls = [dict(name=name, n_samples=count, resolution=resolution, seed=seed, first_sample=first_sample + start,
                  device=device, local_gpus=client is None, threads=torch.get_num_threads(), options=options,
                  shard=None if manifest is None else (str(shard_dir), i, manifest))
             for i, (start, count) in enumerate(ranges) if i not in done]
    n_workers = "1 process" if client is None and workers == 1 else "a dask cluster" if client is not None else \
        f"{workers} workers"
    with tqdm(total=n_samples, desc=f"{name} on {n_workers}", unit="sample", disable=not progress,
              leave=False) as bar:
        bar.update(sum(ranges[i][1] for i in done))
        results = _run_tasks(_solve_part, calls, client=client, workers=workers, retries=retries, gpu=str(device)
                            .startswith("cuda"), key=f"sciml-generate-{name}",
                            done=lambda call, result: bar.update(call["n_samples"]))
    from sciml.data.shards import join, open_shards

    if manifest is None:
        return join([result["part"] for result in results], chunk=chunk)
    return open_shards(shard_dir)


def _solve_part(*, name: str, n_samples: int, resolution: int, seed: int, first_sample: int, device, local_gpus: bool,
                threads: int, options: dict, shard: tuple | None) -> dict:
    """One chunk (runs in a dask worker): ``{"part": dataset or shard path, "seconds": solve time}``."""
    import time

    from sciml.datasets import generate
    from sciml.sweep import _keep_freed_memory_in_worker

    torch.set_num_threads(threads)
    _keep_freed_memory_in_worker()
    if local_gpus and str(device) == "cuda" and torch.cuda.device_count() > 1:
        try:
            from distributed import get_worker

            index = int(get_worker().name)
        except (ImportError, ValueError, TypeError):  # not in a worker, or a worker named otherwise
            index = 0
        device = f"cuda:{index % torch.cuda.device_count()}"
    start = time.perf_counter()
    part = generate(name, n_samples, resolution, seed=seed, first_sample=first_sample, device=device, progress=False,
                    **options)
    seconds = time.perf_counter() - start
    if shard is not None:
        from sciml.data.shards import write_shard

        directory, index, manifest = shard
        part = str(write_shard(part, directory, index=index, manifest=manifest))
    return {"part": part, "seconds": seconds}

