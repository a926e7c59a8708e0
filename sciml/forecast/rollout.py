"""Autoregressive forecasts: a trained time-stepping surrogate applied to its own output, as an ensemble.

A forecaster is a :class:`~sciml.surrogate.Surrogate` trained with ``lag=`` (``inputs(t) -> outputs(t +
lead)``). Its outputs are the **prognostic** variables, fed back at every step; every input that is not
an output is either a **forcing** (read at each step's input time from ``forcings=``: a dataset with a
``time`` coordinate, or a function of the valid times) or a **static** field (orography, a land mask),
held at its value in ``init``. Declared at training by the surrogate's ``inputs``/``outputs``, checked
here before the first step. A surrogate trained with ``history=h`` (several past steps) takes the state
at ``h`` times, ``lead`` apart: the initial times are the times of ``init`` whose ``h - 1`` past frames
are in ``init`` too, and each step feeds the newest ``h`` states back.

The result follows the forecast convention of CF and WMO GRIB (reference time, forecast period, valid
time): ``time`` is the initial time, ``lead_time`` the forecast period ``lead * (1..steps)``, and
``valid_time = time + lead_time`` a coordinate. With ``out=`` the rollout is written to NetCDF or zarr
step by step as it runs, so memory holds the current state of every member, not the trajectory.
"""

from __future__ import annotations

import math
import os
import time as _time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

import numpy as np
import torch

from .. import __version__
from ..data import times as timing
from ..data._layout import require_variables, source_name
from ..data.cf import derived_attrs
from ..errors import ConfigError, DataError
from ..grids import Grid

if TYPE_CHECKING:
    import xarray as xr

    from ..surrogate import Surrogate

__all__ = ["forecast", "Perturbation"]


class Perturbation(Protocol):
    """An initial-condition perturbation: ``perturbation(state, grid=grid, generator=generator)``.

    ``state`` is ``(n, channel, *space)`` (physical units, the prognostic variables in the surrogate's
    output order) on ``grid``; the return value is the perturbation to add, of the same shape, drawn
    only from ``generator`` (so a forecast with the same ``seed`` is reproduced exactly). A perturbation
    with a true class attribute ``uses_model`` (e.g. :class:`sciml.forecast.BredVectors`) is also given
    ``step=``: ``step(x, k)`` advances prognostic states ``x`` one step of the member's model from step
    ``k``'s input time, with the static fields and forcings of the forecast.
    """

    def __call__(self, state: torch.Tensor, *, grid: Grid, generator: torch.Generator) -> torch.Tensor: ...


def _models(model: Surrogate | Sequence[Surrogate]) -> list[Surrogate]:
    from ..surrogate import Surrogate

    models = [model] if isinstance(model, Surrogate) else list(model)
    if not models or not all(isinstance(m, Surrogate) for m in models):
        raise ConfigError("model must be a Surrogate or a non-empty sequence of Surrogates (a multi-model ensemble)")
    first = models[0]
    if first.lead_time is None:
        raise ConfigError("forecast needs a time-stepping surrogate (trained with lag=); this one maps fields to fields")
    missing = [name for name in first.outputs if name not in first.inputs]
    if missing:
        raise ConfigError(f"forecast feeds the outputs back as inputs; outputs {missing} are not among the surrogate's "
                          f"inputs {first.inputs}")
    for i, other in enumerate(models[1:], start=1):
        for what in ("inputs", "outputs", "lead_time", "units", "history"):
            if getattr(other, what) != getattr(first, what):
                raise ConfigError(f"ensemble model {i} has {what} {getattr(other, what)!r}, model 0 "
                                  f"{getattr(first, what)!r}; the models of one ensemble must agree")
        if not other.grid.same_domain(first.grid):
            raise ConfigError(f"ensemble model {i} was trained on another domain than model 0")
    return models


def _steps(model: Surrogate, steps: int | None, horizon: object | None) -> int:
    """The number of model steps: ``steps``, or ``horizon / lead_time`` when that is a whole number."""
    if (steps is None) == (horizon is None):
        raise ConfigError("give exactly one of steps= (model steps) and horizon= (a lead time)")
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ConfigError(f"steps must be a positive integer, got {steps!r}")
        return int(steps)
    if isinstance(horizon, str):
        import pandas as pd

        try:
            horizon = pd.Timedelta(horizon)
        except ValueError:
            raise ConfigError(f"horizon {horizon!r} is not a time span; write e.g. '5D', '36h' or '90min'") from None
    lead, step = timing.as_lead(horizon), model.lead_time
    units = model.time_units
    if isinstance(lead, float) != isinstance(step, float):
        raise ConfigError(f"horizon {horizon!r} and the model's step {timing.format_lead(step, units)} are not the same "
                          "kind of time (a number against a timedelta)")
    ratio = lead / step
    count = int(round(float(ratio)))
    if count < 1 or not math.isclose(float(ratio), count, rel_tol=1e-9) or (not isinstance(lead, float) and lead % step):
        raise ConfigError(f"horizon {timing.format_lead(lead, units)} is not a whole number of the model's steps of "
                          f"{timing.format_lead(step, units)}; use a multiple of it")
    return count


def _forcing_reader(forcings, names: list[str], space: tuple[str, ...], source: str) -> Callable:
    """``read(valid_times (n,)) -> (n, C_forcing, *space)`` from a dataset along ``time`` or a function."""
    import xarray as xr

    def check(ds: xr.Dataset, at: str) -> xr.Dataset:
        require_variables(ds, names, purpose="the forecast's forcings")
        return ds

    if callable(forcings) and not isinstance(forcings, xr.Dataset):
        def read(valid: np.ndarray) -> np.ndarray:
            ds = check(forcings(xr.DataArray(valid, dims="frame", name="time")), "function")
            return _stack(ds, names, ("frame",), space, source="the forcings function")
        return read
    if not isinstance(forcings, xr.Dataset):
        raise ConfigError(f"forcings must be an xarray Dataset along 'time' or a function of the valid times, got "
                          f"{type(forcings).__name__}")
    check(forcings, "dataset")
    if "time" not in forcings.coords:
        raise DataError(f"{source_name(forcings)}: the forcings need a 'time' coordinate to be read at each step's time")
    index = forcings.indexes["time"]

    def read(valid: np.ndarray) -> np.ndarray:
        missing = [v for v in valid if v not in index]
        if missing:
            raise DataError(f"{source_name(forcings)}: no forcings at time {missing[0]} (needed by step input "
                            f"times {valid[0]} ... {valid[-1]}); the forcings must cover the whole forecast")
        frames = forcings.sel(time=xr.DataArray(valid, dims="frame"))
        return _stack(frames, names, ("frame",), space, source=source_name(forcings))
    return read


def _stack(ds: xr.Dataset, names: Sequence[str], lead: tuple[str, ...], space: tuple[str, ...], *,
           source: str) -> np.ndarray:
    """``(*lead, channel, *space)`` float32 from variables aligned by dimension name, NaN-checked."""
    from ..data._layout import check_finite

    arrays = []
    for name in names:
        var = ds[name]
        extra = [d for d in var.dims if d not in lead and d not in space]
        if extra:
            raise DataError(f"{source}: variable {name!r} has dims {extra} besides {lead + space}; select one value of each")
        var = var.broadcast_like(ds[names[0]]) if set(var.dims) != set(lead + space) else var
        var = var.transpose(*[d for d in lead if d in var.dims], *space)
        if var.ndim != len(lead) + len(space):  # a static field without the leading dims
            var = var.expand_dims({d: ds.sizes[d] for d in lead if d not in var.dims}).transpose(*lead, *space)
        arrays.append(check_finite(np.asarray(var.values), source=source, name=name, dims=var.dims))
    return np.stack(arrays, axis=len(lead)).astype(np.float32, copy=False)


def forecast(
    model: Surrogate | Sequence[Surrogate],
    init: xr.Dataset,
    *,
    steps: int | None = None,
    horizon: object | None = None,
    members: int = 1,
    perturbation: Perturbation | None = None,
    forcings: xr.Dataset | Callable | None = None,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> xr.Dataset:
    """Roll ``model`` out from ``init`` for ``steps`` steps, for every initial frame and ensemble member.

    Args:
        model: a time-stepping :class:`~sciml.surrogate.Surrogate`, or several (multi-checkpoint or
            multi-seed ensembles: ``members`` members of each, in model order along ``member``).
        init: the initial states: the surrogate's prognostic and static inputs over ``(*init dims, *space)``,
            e.g. ``(time, lat, lon)`` or ``(sample, y, x)``, on any grid of the training domain. For a
            model with ``history=h > 1``, ``init`` needs a ``time`` dim with coordinate values: each time
            ``t`` whose past frames ``t - lead, ..., t - (h-1) lead`` are in ``init`` (found by value) is an
            initial time, and the first ``(h-1) lead`` of ``init`` serve only as history (they are not
            forecast from); static fields are read at ``t``.
        steps: number of model steps; or ``horizon``: the forecast length as a lead time (a float for
            float-time models, a timedelta or ``"5D"``-style string for calendar time), which must be a
            whole number of the model's steps.
        members: members per model. With one model, ``members > 1`` needs a ``perturbation``.
        perturbation: adds a perturbation to each member's initial state (:class:`Perturbation`; e.g.
            :class:`sciml.forecast.GaussianPerturbation`), drawn from one generator seeded with ``seed``.
            For a history model the same perturbation is added to every past frame of the member (a
            shifted trajectory); perturbations that step the model (bred vectors) need ``history=1``.
        forcings: the inputs that are neither outputs nor in ``init``: a dataset with a ``time``
            coordinate covering every step's input time, or ``f(valid_times) -> xr.Dataset`` over a
            ``frame`` dim (e.g. the time of day and day of year).
        out: stream the forecast to this file as it runs (``.nc``: NetCDF4, ``.zarr``: a zarr store),
            written atomically; the returned dataset is then read lazily from it. ``None``: in memory.
        overwrite: replace an existing ``out``.
        batch_size: frames per forward pass (members of all initial frames are batched together).
        device: where to run (``None``: where each surrogate is).
        progress: a progress bar over the steps.

    Returns:
        The prognostic variables over ``(*init dims, lead_time, [member], *space)`` (``member`` only for
        an ensemble), with coordinates ``lead_time`` (``lead * (1..steps)``) and, when ``init`` has a
        ``time`` coordinate, ``valid_time = time + lead_time``; units and long names carried over.

    Raises:
        ConfigError: a model that cannot be rolled out, bad ``steps``/``horizon``/``members``.
        DataError: ``init`` on another domain, missing a declared input, or holding NaN/Inf; forcings
            that do not cover a step's time; for a history model, no time of ``init`` with its past frames
            (naming the file and the missing times).
    """
    import xarray as xr
    from tqdm.auto import tqdm

    from ..surrogate import _apply as apply_in_chunks
    from ..surrogate import _history_index

    models = _models(model)
    first = models[0]
    n_steps = _steps(first, steps, horizon)
    if isinstance(members, bool) or not isinstance(members, (int, np.integer)) or members < 1:
        raise ConfigError(f"members must be a positive integer, got {members!r}")
    if members > 1 and perturbation is None and len(models) == 1:
        raise ConfigError(f"members={members} of one deterministic model would be identical; give a perturbation= "
                          "or several models")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(init, xr.Dataset):
        raise DataError(f"init must be an xarray Dataset, got {type(init).__name__}")
    source = source_name(init)
    prognostic = list(first.outputs)
    others = [v for v in first.inputs if v not in prognostic]
    if isinstance(forcings, xr.Dataset):
        forced = [v for v in others if v in forcings.data_vars]
    else:
        forced = [v for v in others if forcings is not None and v not in init.data_vars]
    static = [v for v in others if v not in forced]
    require_variables(init, prognostic + static, purpose="the forecast's initial state (prognostic and static inputs)")
    n_history, full, past = first.history, init, None
    if n_history > 1:  # initial times: those of init with their past frames; the first ones are history only
        if "time" not in init[prognostic[0]].dims or "time" not in init.coords:
            raise DataError(f"{source}: the model takes {n_history} frames {timing.format_lead(first.lead_time, first.time_units)} "
                            f"apart (history={n_history}); init needs a 'time' dim with coordinate values holding "
                            f"each initial time and the {n_history - 1} frame(s) before it (select frames with a "
                            f"list, isel(time=[0, 1]), not one index); {prognostic[0]!r} has dims "
                            f"{init[prognostic[0]].dims}")
        if perturbation is not None and getattr(perturbation, "uses_model", False):
            raise ConfigError(f"{type(perturbation).__name__} steps the model from one state; it needs a model with "
                              f"history=1, this one has history={n_history}")
        keep, past = _history_index(init["time"], first.lead_time, n_history, source=source, units=first.time_units)
        init = init.isel(time=keep)
    placeholder = init[prognostic[0]].copy()
    placeholder.attrs = {}  # forced inputs are checked when read; this only lets the domain check see every input
    grid = first._check_input(init[prognostic + static].assign({v: placeholder for v in forced}))  # domain, layout, units
    space = grid.dims
    dims = init[prognostic[0]].dims
    lead_dims = tuple(d for d in dims if d not in space)
    frames = int(np.prod([init.sizes[d] for d in lead_dims], dtype=np.int64))
    has_time = "time" in init.coords
    if forced and not has_time:
        raise DataError(f"{source}: forcings {forced} are read at each step's time, but init has no 'time' coordinate")
    init_times = None
    if has_time:
        init_times = np.broadcast_to(init["time"].broadcast_like(init[prognostic[0]].isel(
            {d: 0 for d in space})).transpose(*lead_dims).values, tuple(init.sizes[d] for d in lead_dims)).reshape(-1)
    read_forcing = _forcing_reader(forcings, forced, space, source) if forced else None

    state0 = torch.from_numpy(_stack(init, prognostic, lead_dims, space, source=source)).reshape(frames, len(prognostic), *grid.shape)
    statics = (torch.from_numpy(_stack(init, static, lead_dims, space, source=source)).reshape(frames, len(static), *grid.shape)
               if static else None)
    pool = prognostic + static + forced  # channels of torch.cat([state, statics, forced])
    order = [pool.index(v) for v in first.inputs]  # the model's input channels, picked from that pool
    # a history model's past states (oldest first), each (frames, C_prognostic, *space) in output order
    past0 = [torch.from_numpy(_stack(full.isel(time=past[:, j]), prognostic, lead_dims, space, source=source))
             .reshape(frames, len(prognostic), *grid.shape) for j in range(n_history - 1)]
    state_order = [prognostic.index(v) for v in first.history_variables]  # the state in the model's input order

    def model_input(state: torch.Tensor, pasts: list[torch.Tensor], forced: torch.Tensor | None) -> torch.Tensor:
        """``(frames, input_channels, *space)``: past states oldest first, then the inputs at the step's time."""
        now = _inputs(state, statics, forced, order)
        return torch.cat([*(p[:, state_order] for p in pasts), now], dim=1) if pasts else now

    def forced_at(step: int) -> torch.Tensor | None:
        """The forcing channels ``(frames, C_forced, *space)`` at step ``step``'s input time."""
        if read_forcing is None:
            return None
        valid = timing.shift(xr.DataArray(init_times, dims="frame", attrs=init["time"].attrs), first.lead_time * step,
                             source=source, units=first.time_units).values
        return torch.from_numpy(read_forcing(valid)).reshape(frames, len(forced), *grid.shape)

    modules = [m._module_on(device) for m in models]

    def stepper(module) -> Callable[[torch.Tensor, int], torch.Tensor]:
        """One model step of prognostic states ``(frames, C, *space)`` from step ``k``'s input time."""
        return lambda state, k: apply_in_chunks(module, _inputs(state, statics, forced_at(k), order), None, batch_size)

    n_members = members * len(models)
    generator = torch.Generator().manual_seed(int(seed))
    states = []  # per member: (frames, C_prognostic, *space)
    pasts = []  # per member: its past states, oldest first (history models)
    for module in modules:
        for _ in range(members):
            if perturbation is None:
                states.append(state0.clone())
                pasts.append([p.clone() for p in past0])
                continue
            extra = {"step": stepper(module)} if getattr(perturbation, "uses_model", False) else {}
            delta = perturbation(state0, grid=grid, generator=generator, **extra)
            if tuple(delta.shape) != tuple(state0.shape):
                raise ConfigError(f"the perturbation returned shape {tuple(delta.shape)}, the state is {tuple(state0.shape)}")
            states.append(state0 + delta.to(state0.dtype))
            pasts.append([p + delta.to(p.dtype) for p in past0])
    ensemble = perturbation is not None or len(models) > 1
    out_lead = (*lead_dims, "lead_time", *(("member",) if ensemble else ()))
    out_dims = (*out_lead, *space)
    lead_coord = timing.lead_time_coord(first.lead_time, n_steps, units=first.time_units or (
        init["time"].attrs.get("units", "1") if has_time else "1"))
    coords = {d: init[d] for d in (*lead_dims, *space) if d in init.coords}
    coords.update({name: c for name, c in init.coords.items()
                   if name not in coords and set(c.dims) <= set(lead_dims) and name != "valid_time"})
    coords["lead_time"] = lead_coord
    if ensemble:
        coords["member"] = xr.DataArray(np.arange(n_members), dims="member", attrs={"long_name": "ensemble member"})
        if len(models) > 1:
            coords["member_model"] = xr.DataArray(np.repeat(np.arange(len(models)), members), dims="member",
                                                  attrs={"long_name": "index of the model that ran this member"})
    if has_time:
        if init["time"].ndim == 1 and init["time"].dims[0] in lead_dims:
            coords["valid_time"] = timing.valid_time_coord(init["time"], lead_coord, source=source)
        elif init["time"].ndim == 0:
            coords["valid_time"] = timing.valid_time_coord(init["time"].expand_dims("time"), lead_coord,
                                                           source=source).squeeze("time", drop=True)
    var_attrs = {name: derived_attrs(init[name].attrs, units=first.units.get(name, "1"), name=name)
                 for name in prognostic}
    stamp = _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime())
    history = (f"{stamp}: forecast by sciml {__version__}: {n_steps} steps of "
               f"{timing.format_lead(first.lead_time, first.time_units)}, {n_members} member(s)")
    attrs = {**init.attrs, "history": "\n".join(filter(None, [init.attrs.get("history"), history])),
             "forecast_models": ", ".join(m.model for m in models),
             "forecast_perturbation": repr(perturbation) if perturbation is not None else "none"}
    shape = (*(init.sizes[d] for d in lead_dims), n_steps, *((n_members,) if ensemble else ()), *grid.shape)
    writer = _writer(out, overwrite=overwrite, shape=shape, dims=out_dims, variables=var_attrs, coords=coords,
                     attrs=attrs, lead_axis=len(lead_dims))

    bar = tqdm(total=n_steps, desc="forecast", unit="step", disable=not progress)
    with writer:
        for step in range(n_steps):
            inputs_forced = forced_at(step)  # this step's input time
            for k, module in enumerate(modules):
                members_of_model = range(k * members, (k + 1) * members)
                batch = torch.cat([model_input(states[j], pasts[j], inputs_forced) for j in members_of_model])
                pred = apply_in_chunks(module, batch, None, batch_size)  # (members * frames, C_prognostic, *space)
                for i, j in enumerate(members_of_model):
                    if pasts[j]:
                        pasts[j] = [*pasts[j][1:], states[j]]
                    states[j] = pred[i * frames:(i + 1) * frames]
            step_values = torch.stack(states, dim=1) if ensemble else states[0][:, None]  # (frames, M, C, *space)
            step_values = step_values.reshape(*shape[:len(lead_dims)], *((n_members,) if ensemble else ()),
                                              len(prognostic), *grid.shape).numpy()
            writer.write(step, {name: np.take(step_values, c, axis=len(lead_dims) + int(ensemble))
                                for c, name in enumerate(prognostic)})
            bar.update()
    bar.close()
    return writer.result()


def _inputs(state: torch.Tensor, statics: torch.Tensor | None, forced: torch.Tensor | None, order: list[int]) -> torch.Tensor:
    """The model input ``(frames, C_in, *space)``: prognostic, static and forcing channels in input order."""
    return torch.cat([state, *(t for t in (statics, forced) if t is not None)], dim=1)[:, order]


def _writer(out, **kwargs):
    from ._stream import MemoryWriter, StreamWriter

    return MemoryWriter(**kwargs) if out is None else StreamWriter(Path(out), **kwargs)
