"""xarray in and out: :func:`sample` draws fields as an ``xr.Dataset``, :func:`super_resolve` turns a coarse dataset
into an ensemble of fine ones, keeping its coordinates and attributes.

The tensor sampler :func:`sciml.diffusion.sample_tensor` (``(n, channels, *space)`` tensors) is what both call;
:func:`sample` is its xarray form, and :func:`super_resolve` the xarray form of
:func:`sciml.diffusion.conditional.conditional_sample` with a :class:`~sciml.diffusion.conditional.LowModes`
condition: by guidance of an unconditional denoiser, or by the input channel of a
:class:`~sciml.diffusion.CoarseConditionedDenoiser` (the model says which). :func:`generate` is the deprecated
former name of :func:`sample`.

Layout: one data variable per channel of the model (``channel_0, ...`` or the template's / coarse dataset's
names, in order), spatial dims ``(y, x)`` (or ``(x,)``; the template's names when given) with coordinates in the
box's length units, ``sample`` (sample) or ``member`` (super_resolve) before them. Attributes: the template's or
coarse dataset's (``units``, ``long_name``, ...) on each variable and on the dataset, plus the sampler's provenance
on the dataset (``sampler``, ``steps``, ``network_evaluations``, ``seed``, and ``condition_grid`` and
``condition`` for super-resolution).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from .._deprecation import deprecated
from ..errors import ConfigError, DataError, GridError
from ..grids import Grid
from .model import FieldModel

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["generate", "sample", "super_resolve"]


def _seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    return int(seed)


def _spatial_dims(da, ndim: int, dims: Sequence[str] | None) -> tuple[str, ...]:
    if dims is not None:
        dims = tuple(dims)
        missing = [d for d in dims if d not in da.dims]
        if missing or len(dims) != ndim:
            raise DataError(f"dims {dims} must name {ndim} spatial dim(s) of {da.name!r}, which has {da.dims}")
        return dims
    for guess in (("y", "x"), ("x",)):
        if len(guess) == ndim and all(d in da.dims for d in guess):
            return guess
    if da.ndim < ndim:
        raise DataError(f"variable {da.name!r} has dims {da.dims}; the model needs {ndim} spatial dim(s)")
    return tuple(da.dims[-ndim:])


def _variables(obj) -> list:
    import xarray as xr

    if isinstance(obj, xr.DataArray):
        return [obj if obj.name is not None else obj.rename("channel_0")]
    if isinstance(obj, xr.Dataset):
        if not obj.data_vars:
            raise DataError("the dataset has no data variables")
        return [obj[name] for name in obj.data_vars]
    raise ConfigError(f"expected an xarray Dataset or DataArray, got {type(obj).__name__}")


def _grid_of(da, space: tuple[str, ...]) -> tuple[Grid, dict[str, float]]:
    """The periodic box of ``da``'s spatial coordinates and each coordinate's first value."""
    coords, origin = {}, {}
    for dim in space:
        if dim not in da.coords:
            raise DataError(f"variable {da.name!r} has no coordinate for its spatial dim {dim!r}; the box's lengths "
                            f"come from the coordinates")
        values = np.asarray(da[dim].values, dtype=np.float64)
        coords[dim], origin[dim] = values, float(values[0])
    try:
        grid = Grid.from_coords(coords)
    except GridError as error:
        raise DataError(f"variable {da.name!r}: {error}") from None
    return grid, origin


def _check_domain(model: FieldModel, grid: Grid, what: str) -> None:
    if grid.ndim != model.domain.ndim or not all(
            math.isclose(a, b, rel_tol=1e-6) for a, b in zip(grid.lengths, model.domain.lengths)):
        raise ConfigError(f"{what} lies on a box with lengths {tuple(round(v, 9) for v in grid.lengths)}, the model on "
                          f"one with lengths {model.domain.lengths}; the domains differ (the resolution may differ, "
                          f"the box may not)")


def _target(model: FieldModel, grid, dims: Sequence[str] | None):
    """``(Grid of the model's box, its dims, coords, template variables or None)`` from a Grid or a template."""
    import xarray as xr

    if isinstance(grid, Grid):
        if grid.kind != "box":
            raise ConfigError(f"the target grid must be a periodic Grid.box of the model's box, got a {grid.kind!r} "
                              f"grid")
        _check_domain(model, grid, "the target grid")
        box = Grid.box(*grid.shape, lengths=model.domain.lengths)
        return box, tuple(grid.dims), grid.coords(), None
    if isinstance(grid, (xr.Dataset, xr.DataArray)):
        variables = _variables(grid)
        space = _spatial_dims(variables[0], model.domain.ndim, dims)
        box, _ = _grid_of(variables[0], space)
        _check_domain(model, box, "the template")
        coords = {dim: np.asarray(variables[0][dim].values) for dim in space}
        return Grid.box(*box.shape, lengths=model.domain.lengths), space, coords, variables
    raise ConfigError(f"grid must be a sciml Grid.box or an xarray template, got {type(grid).__name__}")


def _names(model: FieldModel, variables) -> list[str]:
    if variables is None:
        return [f"channel_{i}" for i in range(model.channels)]
    if len(variables) != model.channels:
        raise DataError(f"the template/condition has {len(variables)} variable(s) "
                        f"({', '.join(map(str, (v.name for v in variables)))}), the model {model.channels} channel(s)")
    return [str(v.name) for v in variables]


def _provenance(sampler, steps, seed: int, model) -> dict:
    from .samplers import DEFAULT_STEPS, SAMPLERS, _kind, evaluations

    sampler = sampler if sampler is not None else SAMPLERS[_kind(model)][0]
    steps = steps if steps is not None else DEFAULT_STEPS.get(sampler)
    return {"sampler": sampler, "steps": int(steps), "network_evaluations": evaluations(sampler, int(steps)),
            "seed": seed, "generator": "sciml.diffusion"}


def _no_generator(options: dict, verb: str) -> None:
    if "generator" in options:
        raise ConfigError(f"{verb} draws from a generator it seeds itself: pass seed=<int> (the tensor verbs "
                          f"sample_tensor / conditional_sample take generator=)")


def sample(model: FieldModel, grid, n: int, *, seed: int = 0, sampler: str | None = None,
           steps: int | None = None, dims: Sequence[str] | None = None, attrs: dict | None = None,
           **options) -> xr.Dataset:
    """Draw ``n`` fields on ``grid`` from ``model`` as an ``xr.Dataset`` (the xarray form of
    :func:`sciml.diffusion.sample_tensor`).

    Args:
        model: a trained :class:`~sciml.diffusion.Denoiser` or :class:`~sciml.diffusion.VelocityField`.
        grid: a ``Grid.box`` of the model's box at any resolution, or an xarray template (Dataset or DataArray) on
            such a box: its spatial coordinates, variable names (one per channel) and attributes are copied.
        n: number of fields.
        seed: seeds the one ``torch.Generator`` the sampler draws from (the same seed gives the same functions on
            every grid).
        sampler, steps, options: as :func:`sciml.diffusion.sample_tensor` (not ``generator``: ``seed`` replaces it).
        dims: the template's spatial dims (default ``(y, x)`` / ``(x,)`` or its last dims).
        attrs: extra dataset attributes.

    Returns:
        ``xr.Dataset`` with one variable per channel, ``(sample, *space)``; ``sample = 0..n-1``.

    Raises:
        ConfigError: a grid or template on another box, a zero budget, bad options.
    """
    import xarray as xr

    from .model import ConditionedDenoiser
    from .samplers import sample_tensor

    seed = _seed(seed)
    _no_generator(options, "sample")
    if isinstance(model, ConditionedDenoiser):
        raise ConfigError(f"a {type(model).__name__} samples given a coarse field: use super_resolve(model, coarse, "
                          f"grid, members)")
    box, space, coords, variables = _target(model, grid, dims)
    names = _names(model, variables)
    fields = sample_tensor(model, box, n, sampler=sampler, steps=steps, generator=torch.Generator().manual_seed(seed),
                    **options)
    values = fields.detach().cpu().numpy()
    data = {}
    for index, name in enumerate(names):
        var_attrs = dict(variables[index].attrs) if variables is not None else {}
        data[name] = xr.DataArray(values[:, index], dims=("sample", *space), attrs=var_attrs)
    ds_attrs = dict(grid.attrs) if isinstance(grid, xr.Dataset) else {}
    ds_attrs.update(_provenance(sampler, steps, seed, model), **(attrs or {}))
    return xr.Dataset(data, coords={"sample": np.arange(values.shape[0]), **coords}, attrs=ds_attrs)


def super_resolve(model: FieldModel, coarse, grid, members: int, *, seed: int = 0, sampler: str | None = None,
                  steps: int | None = None, dims: Sequence[str] | None = None, **options) -> xr.Dataset:
    """Super-resolve every coarse field of ``coarse`` into ``members`` fields on ``grid``, consistent with it.

    The coarse fields' Fourier modes ``|k_i| < m_i / 2`` are the observation (:class:`LowModes`). The model says how
    it is conditioned (:func:`~sciml.diffusion.conditional.conditional_sample`): an unconditional
    :class:`~sciml.diffusion.Denoiser` by the guided sampler of :mod:`sciml.diffusion.conditional`, whose members
    reproduce those modes to rounding (Heun / Euler-Maruyama); a :class:`~sciml.diffusion.CoarseConditionedDenoiser`
    by its input channel (the coarse field interpolated to ``grid``), its members matching the modes as well as it
    was trained to (pass ``guidance=True`` to enforce them as well).

    Args:
        model: a :class:`~sciml.diffusion.Denoiser` or :class:`~sciml.diffusion.CoarseConditionedDenoiser`.
        coarse: ``xr.Dataset`` (one variable per channel) or ``xr.DataArray`` with spatial dims (default ``(y, x)``)
            whose coordinates lie on the model's box, and any other dims (``sample``, ``time``, ...), which are kept
            with their coordinates; attributes are kept.
        grid: the target ``Grid.box`` (or an xarray template of it), finer than the coarse grid.
        members: ensemble members per coarse field.
        seed, sampler, steps, options: as :func:`sample`; ``guidance`` as
            :func:`~sciml.diffusion.conditional.conditional_sample`.
        dims: the coarse fields' spatial dims.

    Returns:
        ``xr.Dataset``: each variable ``(*other dims, member, *space)`` on the fine grid, its coordinates starting
        where the coarse ones start.

    Raises:
        ConfigError: a coarse field on another box than the model's, a target grid coarser than the condition, a
            zero budget.
        DataError: NaN in the condition; coordinates that are not a uniform periodic box.
    """
    import xarray as xr

    from .conditional import LowModes, conditional_sample
    from .samplers import _steps

    seed = _seed(seed)
    _no_generator(options, "super_resolve")
    if steps is not None:
        _steps(sampler or "heun", steps)
    variables = _variables(coarse)
    names = _names(model, variables)
    space = _spatial_dims(variables[0], model.domain.ndim, dims)
    coarse_grid, origin = _grid_of(variables[0], space)
    _check_domain(model, coarse_grid, "the coarse field")
    box, _, _, _ = _target(model, grid, None if isinstance(grid, Grid) else space)
    other = [d for d in variables[0].dims if d not in space]
    stacked = []
    for v in variables:
        if set(v.dims) != set(variables[0].dims):
            raise DataError(f"variables {variables[0].name!r} and {v.name!r} have different dims")
        stacked.append(torch.from_numpy(np.array(v.transpose(*other, *space).values, dtype=np.float32)))
    field = torch.stack(stacked, dim=len(other))  # (*other, channels, *space)
    batch_shape = field.shape[:len(other)]
    field = field.reshape(-1, len(variables), *field.shape[len(other) + 1:])
    ensemble = conditional_sample(model, box, LowModes(field), members, sampler=sampler, steps=steps,
                                  generator=torch.Generator().manual_seed(seed), **options)
    values = ensemble.detach().cpu().numpy().reshape(*batch_shape, members, len(variables), *box.shape)
    fine_coords = {dim: origin[dim] + values_ for dim, values_ in zip(space, box.coords().values())}
    kept = {name: c for name, c in variables[0].coords.items() if not set(c.dims) & set(space)}
    data = {}
    for index, v in enumerate(variables):
        data[names[index]] = xr.DataArray(np.take(values, index, axis=len(other) + 1), dims=(*other, "member", *space),
                                          attrs=dict(v.attrs))
    attrs = dict(coarse.attrs) if isinstance(coarse, xr.Dataset) else {}
    from .model import ConditionedDenoiser

    if isinstance(model, ConditionedDenoiser):
        how = "input channel (the coarse field interpolated to the target grid)"
        how += " and data-consistency guidance" if options.get("guidance") else ""
    else:
        how = "data-consistency guidance"
    attrs.update(_provenance(sampler, steps, seed, model), condition_grid=list(coarse_grid.shape),
                 condition="low Fourier modes |k_i| < n_i / 2 of the coarse field", conditioning=how)
    for dim in space:
        fine_coords[dim] = xr.DataArray(fine_coords[dim], dims=dim, attrs=dict(variables[0][dim].attrs))
    return xr.Dataset(data, coords={**kept, "member": np.arange(members), **fine_coords}, attrs=attrs)


generate = deprecated("sciml.diffusion.generate", "sciml.diffusion.sample", since="0.1.0", remove_in="0.3.0")(sample)
