"""Evaluate a trained surrogate on a dataset: relative L2 per output variable, at any resolution.

``evaluate(surrogate, ds)`` predicts every frame of ``ds`` (on the file's grid, whatever the training
grid) and compares with the file's own output fields; the norms are the grid's quadrature (area
weights on the sphere, the trapezoidal rule on bounded boxes). It also measures the error on coarser
copies of the same data (spectral truncation, :func:`sciml.spectral.spectral_resample`, on periodic
boxes; node subsampling on bounded boxes; none on the sphere) to draw an error-vs-resolution curve
without another solve.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .data import times as timing
from .data._layout import require_variables, source_name
from .data.tensors import grid_of, in_canonical_order, stack_fields
from .errors import DataError
from .metrics import rel_l2

if TYPE_CHECKING:
    import xarray as xr

    from .surrogate import Surrogate

__all__ = ["evaluate"]


def _target_frames(surrogate: Surrogate, ds: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset]:
    """Inputs and the truth they should map to: same frame for operators, ``lag`` later for steppers."""
    require_variables(ds, list(dict.fromkeys(surrogate.inputs + surrogate.outputs)), purpose="evaluation (inputs and true outputs)")
    if surrogate.lead_time is None:
        return ds, ds
    if "time" not in ds.dims or "time" not in ds.coords or ds.sizes["time"] < 2:
        raise DataError(f"{source_name(ds)}: a time-stepping surrogate needs a 'time' coordinate with >= 2 steps to evaluate")
    lag = timing.lag_for(ds["time"], surrogate.lead_time, source=source_name(ds), units=surrogate.time_units)
    n = ds.sizes["time"]
    return ds.isel(time=slice(0, n - lag)), ds.isel(time=slice(lag, n))


def _errors(surrogate: Surrogate, inputs: xr.Dataset, truth: xr.Dataset, batch_size: int, device) -> dict[str, float]:
    pred = surrogate.predict(inputs, batch_size=batch_size, device=device)
    grid = grid_of(truth)
    errors = {}
    for name in surrogate.outputs:
        true = stack_fields(truth, [name], dtype=torch.float64).reshape(-1, 1, *grid.shape)  # (frames, 1, *space)
        guess = torch.from_numpy(pred[name].values).reshape(-1, 1, *grid.shape).to(torch.float64)
        errors[name] = float(rel_l2(guess, true, grid=grid).mean())
    return errors


def evaluate(
    surrogate: Surrogate,
    ds: xr.Dataset,
    *,
    out_dir: str | os.PathLike | None = None,
    batch_size: int = 32,
    device: str | None = None,
) -> dict:
    """Relative L2 error of ``surrogate`` on ``ds`` per output variable, at the file's resolution.

    Args:
        surrogate: a trained :class:`~sciml.surrogate.Surrogate`.
        ds: canonical dataset holding the inputs and the true outputs (for a time-stepping surrogate,
            trajectories whose time step divides its lead time).
        out_dir: when given, write ``evaluation.json``, ``error_vs_resolution.png`` and, on 2-D
            grids, ``fields.png`` (truth / prediction / error of the first frame) there.
        batch_size, device: passed to :meth:`Surrogate.predict` (``device=None``: where the surrogate is).

    Returns:
        ``{"rel_l2": {variable: error}, "resolution": [...], "train_resolution": [...], "grid": kind,
        "rel_l2_by_resolution": {"NxM": {variable: error}}}``; the last holds the file's grid and,
        its coarsenings by 2 and 4 (while they keep >= 8 points per side): spectral truncation on
        periodic boxes, every 2nd/4th node on bounded boxes whose ``n - 1`` the factor divides. Errors
        are per frame, ``||pred - true|| / ||true||`` in the grid's quadrature, averaged over frames.
    """
    ds = in_canonical_order(ds)  # the coarsenings and the plots read values in this order
    inputs, truth = _target_frames(surrogate, ds)
    grid = grid_of(ds)
    result = {"rel_l2": _errors(surrogate, inputs, truth, batch_size, device), "resolution": list(grid.shape),
              "train_resolution": list(surrogate.grid.shape), "grid": grid.kind, "data": source_name(ds)}
    by_resolution = {"x".join(map(str, grid.shape)): result["rel_l2"]}
    for factor in (2, 4):
        if grid.kind == "box":
            shape = tuple(n // factor for n in grid.shape)
            coarsen = _coarsen
        elif grid.kind == "bounded" and all((n - 1) % factor == 0 for n in grid.shape):
            shape = tuple((n - 1) // factor + 1 for n in grid.shape)
            coarsen = _subsample
        else:
            break
        if min(shape) < 8:
            break
        coarse = [coarsen(part, grid, shape) for part in (inputs, truth)]
        by_resolution["x".join(map(str, shape))] = _errors(surrogate, *coarse, batch_size, device)
    result["rel_l2_by_resolution"] = dict(sorted(by_resolution.items(), key=lambda kv: int(kv[0].split("x")[0])))
    if out_dir is not None:
        _write(result, surrogate, inputs, truth, Path(out_dir), batch_size, device)
    return result


def _subsample(ds: xr.Dataset, grid, shape: tuple[int, ...]) -> xr.Dataset:
    """``ds`` on every ``(n - 1) / (m - 1)``-th node of a bounded grid (exact values, no interpolation)."""
    return ds.isel({d: slice(None, None, (n - 1) // (m - 1)) for d, n, m in zip(grid.dims, grid.shape, shape)})


def _coarsen(ds: xr.Dataset, grid, shape: tuple[int, ...]) -> xr.Dataset:
    """``ds`` with every field on ``grid.dims`` spectrally truncated to ``shape`` (coordinates too)."""
    import xarray as xr

    from .spectral import spectral_resample

    coords = {d: np.arange(n) * (length / n) + float(ds[d].values[0]) for d, n, length in zip(grid.dims, shape, grid.lengths)}
    data_vars = {}
    for name, var in ds.data_vars.items():
        if not all(d in var.dims for d in grid.dims):
            continue
        values = torch.from_numpy(np.asarray(var.values, dtype=np.float64))
        data_vars[name] = (var.dims, spectral_resample(values, shape).numpy().astype(var.dtype), var.attrs)
    kept = {d: ds[d] for d in ds.coords if d not in grid.dims and set(ds[d].dims) <= set(ds.dims)}
    return xr.Dataset(data_vars, coords={**kept, **{d: (d, v, ds[d].attrs) for d, v in coords.items()}}, attrs=ds.attrs)


def _write(result: dict, surrogate: Surrogate, inputs: xr.Dataset, truth: xr.Dataset, out: Path, batch_size: int, device) -> None:
    from ._atomic import write_text
    from .plotting import plot_error_vs_resolution, plot_fields, save_figure

    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "evaluation.json", json.dumps(result, indent=2))
    sizes = [int(key.split("x")[0]) for key in result["rel_l2_by_resolution"]]
    curves = {name: (sizes, [errs[name] for errs in result["rel_l2_by_resolution"].values()]) for name in surrogate.outputs}
    grid = grid_of(inputs)
    file_size = [result["resolution"][0]]
    baselines = {f"persistence of {name} (input as the forecast)": (file_size, [error])
                 for name, error in _persistence(surrogate, inputs, truth).items()}
    save_figure(plot_error_vs_resolution(curves, baselines=baselines, train_resolution=surrogate.grid.shape[0],
                                         xlabel=f"grid points along {grid.dims[0]}", ylabel="relative L2 error (mean over frames)",
                                         title=f"{Path(result['data']).name}: error vs grid ({grid.kind})"),
                out / "error_vs_resolution.png")
    if grid.ndim != 2:  # field images are for 2-D grids; the curve and JSON cover 1-D
        return
    first = {d: 0 for d in inputs[surrogate.inputs[0]].dims if d not in grid.dims}
    pred = surrogate.predict(inputs.isel({d: [0] for d in first}), batch_size=batch_size, device=device)
    name = surrogate.outputs[0]
    fig = plot_fields(truth[name].isel(first), pred[name].isel(first), title=f"{name}, first frame of {Path(result['data']).name}",
                      truth_label="truth (data)", prediction_label="prediction (surrogate)")
    save_figure(fig, out / "fields.png")


def _persistence(surrogate: Surrogate, inputs: xr.Dataset, truth: xr.Dataset) -> dict[str, float]:
    """Relative L2 of the input as the forecast, for a time-stepper's outputs that are also inputs."""
    if surrogate.lead_time is None:
        return {}
    grid = grid_of(truth)
    errors = {}
    for name in (n for n in surrogate.outputs if n in surrogate.inputs):
        before, after = (stack_fields(part, [name], dtype=torch.float64).reshape(-1, 1, *grid.shape) for part in (inputs, truth))
        errors[name] = float(rel_l2(before, after, grid=grid).mean())
    return errors
