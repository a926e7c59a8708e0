"""Evaluate a trained surrogate on a dataset: relative L2 per output variable, at any resolution.

``evaluate(surrogate, ds)`` predicts every frame of ``ds`` (on the file's grid, whatever the training
grid) and compares with the file's own output fields; the norms are the grid's quadrature (area
weights on the sphere, the trapezoidal rule on bounded boxes). It also measures the error on coarser
copies of the same data (spectral truncation, :func:`sciml.spectral.spectral_resample`, on periodic
boxes; node subsampling on bounded boxes; none on the sphere) to draw an error-vs-resolution curve
without another solve.

Beside the surrogate's error it reports the baselines it must beat (persistence, the input frame as the
prediction, for time steppers; the zero field, relative L2 exactly 1), the energy spectra of prediction
and truth (periodic boxes and the sphere), and with ``steps`` the error per lead time of an
autoregressive rollout against the file's later frames. It warns, one line each, where its numbers are
not to be trusted: the file's physics differs from the training data's (equation, forcing, viscosity
outside the trained range, drag, domain; :mod:`sciml._physics`), or the surrogate has not learned
(:mod:`sciml._diagnostics`).
"""

from __future__ import annotations

import json
import numbers
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from .data import times as timing
from .data._layout import require_variables, source_name
from .data.tensors import grid_of, in_canonical_order, stack_fields
from .errors import ConfigError, DataError
from .metrics import rel_l2

if TYPE_CHECKING:
    import xarray as xr

    from .surrogate import Surrogate

__all__ = ["evaluate", "evaluate_many"]


def _target_frames(surrogate: Surrogate, ds: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset]:
    """Inputs and the truth they should map to: same frame for operators, ``lag`` later for steppers."""
    require_variables(ds, list(dict.fromkeys(surrogate.inputs + surrogate.outputs)), purpose="evaluation (inputs and true outputs)")
    if surrogate.lead_time is None:
        return ds, ds
    if "time" not in ds.dims or "time" not in ds.coords or ds.sizes["time"] < 2:
        raise DataError(f"{source_name(ds)}: a time-stepping surrogate needs a 'time' coordinate with >= 2 steps to evaluate")
    lag = timing.lag_for(ds["time"], surrogate.lead_time, source=source_name(ds), units=surrogate.time_units)
    n, past = ds.sizes["time"], _past(surrogate, lag)
    if n - lag <= past:
        raise DataError(f"{source_name(ds)}: the surrogate takes {surrogate.history} frames {lag} time step(s) apart "
                        f"(history={surrogate.history}) and predicts {lag} step(s) ahead: it needs more than "
                        f"{past + lag} frames along 'time' to evaluate, the file has {n}")
    # predict() drops the first `past` input frames (they serve only as history): the truth starts after them
    return ds.isel(time=slice(0, n - lag)), ds.isel(time=slice(lag + past, n))


def _past(surrogate: Surrogate, lag: int) -> int:
    """Time steps of the file before an input time that a history model's input reaches (0 for one frame)."""
    return (surrogate.history - 1) * lag


def _errors(surrogate: Surrogate, inputs: xr.Dataset, truth: xr.Dataset, batch_size: int, device,
            *, keep: bool = False) -> dict[str, float] | tuple[dict[str, float], xr.Dataset]:
    """Relative L2 per output variable (mean over frames); with ``keep``, also the prediction."""
    pred = surrogate.predict(inputs, batch_size=batch_size, device=device)
    grid = grid_of(truth)
    errors = {}
    for name in surrogate.outputs:
        true = stack_fields(truth, [name], dtype=torch.float64).reshape(-1, 1, *grid.shape)  # (frames, 1, *space)
        guess = torch.from_numpy(pred[name].values).reshape(-1, 1, *grid.shape).to(torch.float64)
        errors[name] = float(rel_l2(guess, true, grid=grid).mean())
    return (errors, pred) if keep else errors


def evaluate(
    surrogate: Surrogate,
    ds: xr.Dataset,
    *,
    out_dir: str | os.PathLike | None = None,
    batch_size: int = 32,
    device: str | None = None,
    steps: int | None = None,
) -> dict:
    """Relative L2 error of ``surrogate`` on ``ds`` per output variable, beside its baselines, with warnings.

    The relative L2 error of a frame is ``||pred - true|| / ||true||`` in the grid's quadrature (area
    weights on the sphere, the trapezoidal rule on bounded boxes), averaged over frames. Two baselines
    put it in context: **persistence**, the input frame as the prediction (time steppers whose outputs
    are inputs), and the **zero field**, whose relative L2 error is exactly 1.

    Args:
        surrogate: a trained :class:`~sciml.surrogate.Surrogate`.
        ds: canonical dataset holding the inputs and the true outputs (for a time-stepping surrogate,
            trajectories ``(sample, time, *space)`` whose time step divides its lead time).
        out_dir: when given, write ``evaluation.json``, ``error_vs_resolution.png``, on periodic boxes and
            the sphere ``energy_spectrum.png``, with ``steps`` ``error_by_lead_time.png``, and on 2-D
            grids ``fields.png`` (truth / prediction / error of the first frame) there.
        batch_size, device: passed to :meth:`Surrogate.predict` (``device=None``: where the surrogate is).
        steps: time steppers with ``inputs == outputs``: also roll out ``steps`` lead times
            autoregressively from every initial frame that has ``steps`` later frames in the file, and
            score each lead time ``k * lead_time`` against the file's frame ``k`` lead times later.

    Returns:
        ``{"rel_l2": {variable: error}, "persistence_rel_l2": {variable: error}, "zero_field_rel_l2": 1.0,
        "resolution": [...], "train_resolution": [...], "grid": kind, "data": source,
        "rel_l2_by_resolution": {"NxM": {variable: error}}, "energy_spectrum": {...}, "rollout": {...},
        "warnings": [...]}``. ``rel_l2_by_resolution`` holds the file's grid and its coarsenings by 2 and 4
        (while they keep >= 8 points per side): spectral truncation on periodic boxes, every 2nd/4th node
        on bounded boxes whose ``n - 1`` the factor divides. ``energy_spectrum`` (periodic boxes and the
        sphere, :func:`sciml.spectral.isotropic_spectrum`): per variable the mean over frames of the
        prediction's and the truth's spectra, ``{"axis": "wavenumber" | "degree", "wavenumber": [...],
        "truth": [...], "prediction": [...], "units": ...}``, with ``steps`` also at the last lead time.
        ``rollout`` (with ``steps``): ``{"steps", "lead_time": [...], "lead_time_units", "n_initial_frames",
        "rel_l2": {variable: [error per lead]}, "persistence_rel_l2": {variable: [...]}}``. ``warnings``:
        one line per difference between the physics of the training data and of ``ds``
        (:func:`sciml._physics.physics_mismatches`: equation, forcing, viscosity outside the trained range,
        drag, domain, ...) and per sign that the surrogate has not learned (its error within 20 % of a
        baseline's, or a training loss still falling steeply: :func:`sciml._diagnostics.training_warnings`);
        each is also issued with :func:`warnings.warn`.
    """
    ds = in_canonical_order(ds)  # the coarsenings and the plots read values in this order
    if steps is not None:
        _check_steps(surrogate, steps)
    inputs, truth = _target_frames(surrogate, ds)
    grid = grid_of(ds)
    errors, pred = _errors(surrogate, inputs, truth, batch_size, device, keep=True)
    result = {"rel_l2": errors, "persistence_rel_l2": _persistence(surrogate, inputs, truth), "zero_field_rel_l2": 1.0,
              "resolution": list(grid.shape), "train_resolution": list(surrogate.grid.shape), "grid": grid.kind,
              "data": source_name(ds)}
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
    rollout = None
    if steps is not None:
        rollout = _rollout(surrogate, ds, steps, batch_size, device)
        result["rollout"] = rollout["scores"]
    if grid.kind in ("box", "latlon"):
        result["energy_spectrum"] = _spectra(surrogate, pred, truth, rollout)
    result["warnings"] = _warnings(surrogate, ds, result)
    for line in result["warnings"]:
        warnings.warn(line, stacklevel=2)
    if out_dir is not None:
        _write(result, surrogate, inputs, truth, Path(out_dir), batch_size, device)
    return result


def evaluate_many(
    runs: Sequence[str | os.PathLike],
    files: Sequence[str | os.PathLike],
    *,
    out_dir: str | os.PathLike,
    steps: int | None = None,
    client=None,
    workers: int = 1,
    retries: int = 2,
    device: str = "cpu",
    progress: bool = True,
) -> xr.Dataset:
    """:func:`evaluate` of every saved run on every file, as one :func:`sciml.sweep.sweep` (dask tasks).

    Each (run, file) pair is one task: it loads the run (:meth:`Surrogate.load`), opens the file
    (:func:`sciml.data.open`), evaluates, and writes the full result as ``out_dir/<key>.json`` (the dict
    :func:`evaluate` returns), so an interrupted sweep finishes by calling this again and a worker that dies
    has its pair re-run, with no result lost or counted twice.

    Args:
        runs: run directories written by :meth:`Surrogate.save` / ``sciml train``.
        files: data files (anything :func:`sciml.data.open` reads), each evaluated on its own.
        out_dir: the sweep's directory (created if missing).
        steps: also score a rollout of ``steps`` lead times (see :func:`evaluate`).
        client, workers, retries, progress: as :func:`sciml.sweep.sweep` (``workers=1``: in this process).
        device: where each task runs its surrogate (``"cuda"`` on workers that have a GPU).

    Returns:
        ``xr.Dataset`` with ``rel_l2`` and ``persistence_rel_l2`` over ``(run, data, variable)`` (NaN where a run
        has no such output, or no persistence baseline), coordinates the run and file paths as given and the
        output variables; ``attrs["out_dir"]`` points to the per-pair JSON results.
    """
    import xarray as xr

    from .errors import ConfigError
    from .sweep import sweep

    runs, files = [os.fspath(r) for r in runs], [os.fspath(f) for f in files]
    if not runs or not files:
        raise ConfigError(f"evaluate_many needs at least one run and one file, got {len(runs)} and {len(files)}")
    for what, paths in (("run", runs), ("file", files)):
        if len(set(paths)) != len(paths):
            raise ConfigError(f"evaluate_many: a {what} is listed twice in {paths}")
    cells = {f"run{i:03d}-data{j:03d}": (i, j) for i in range(len(runs)) for j in range(len(files))}
    items = {key: {"run": runs[i], "data": files[j], "steps": steps, "device": device} for key, (i, j) in cells.items()}
    results = dict(zip(items, sweep(_evaluate_pair, items, out_dir=out_dir, client=client, workers=workers,
                                    retries=retries, progress=progress)))
    variables = list(dict.fromkeys(v for r in results.values() for v in r["rel_l2"]))
    tables = {name: np.full((len(runs), len(files), len(variables)), np.nan) for name in ("rel_l2", "persistence_rel_l2")}
    for key, result in results.items():
        i, j = cells[key]
        for name, table in tables.items():
            for v, value in result[name].items():
                table[i, j, variables.index(v)] = value
    coords = {"run": runs, "data": files, "variable": variables}
    attrs = {"long_name": "relative L2 error, mean over frames", "units": "1"}
    return xr.Dataset({"rel_l2": (("run", "data", "variable"), tables["rel_l2"], attrs),
                       "persistence_rel_l2": (("run", "data", "variable"), tables["persistence_rel_l2"],
                                              {**attrs, "long_name": "relative L2 error of persistence"})},
                      coords=coords, attrs={"out_dir": os.fspath(out_dir)})


def _evaluate_pair(item: dict) -> dict:
    """One task of :func:`evaluate_many` (module level so it pickles)."""
    from .data import open as open_data
    from .surrogate import Surrogate

    surrogate = Surrogate.load(item["run"], device=item["device"])
    with warnings.catch_warnings():  # the warnings are in the result's "warnings"
        warnings.simplefilter("ignore", UserWarning)
        return evaluate(surrogate, open_data(item["data"]), device=item["device"], steps=item["steps"])


def _check_steps(surrogate: Surrogate, steps: int) -> None:
    if surrogate.lead_time is None:
        raise ConfigError("steps= needs a time-stepping surrogate (trained with lag=); this one maps fields to fields")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ConfigError(f"steps must be a positive integer, got {steps!r}")
    if surrogate.inputs != surrogate.outputs:
        raise ConfigError(f"steps= feeds outputs back as inputs, which needs inputs == outputs; this surrogate maps "
                          f"{surrogate.inputs} to {surrogate.outputs}")


def _rollout(surrogate: Surrogate, ds: xr.Dataset, steps: int, batch_size: int, device) -> dict:
    """Scores per lead time of a ``steps``-step rollout from every frame with ``steps`` lead times after it."""
    lag = timing.lag_for(ds["time"], surrogate.lead_time, source=source_name(ds), units=surrogate.time_units)
    n, past = ds.sizes["time"], _past(surrogate, lag)
    starts = n - steps * lag  # input frames 0 .. starts - 1; the initial times are past .. starts - 1
    if starts <= past:
        raise DataError(f"{source_name(ds)}: a rollout of {steps} lead times ({lag} of the file's time steps each) "
                        f"needs at least {past + steps * lag + 1} frames along 'time', the file has {n}; use fewer steps")
    initial = ds.isel(time=slice(0, starts))
    pred = surrogate.predict(initial, steps=steps, batch_size=batch_size, device=device)
    grid = grid_of(ds)
    leads = pred["lead_time"].values
    scores = {"steps": int(steps), "lead_time": _lead_values(leads), "lead_time_units": _lead_units(pred["lead_time"]),
              "n_initial_frames": int((starts - past) * (ds.sizes["sample"] if "sample" in ds.dims else 1)),
              "rel_l2": {}, "persistence_rel_l2": {}}
    truths = {}
    for name in surrogate.outputs:
        before = stack_fields(initial.isel(time=slice(past, None)), [name], dtype=torch.float64).reshape(-1, 1, *grid.shape)
        model, persistence, later = [], [], []
        for k in range(1, steps + 1):
            truth_k = ds.isel(time=slice(past + k * lag, k * lag + starts))
            true = stack_fields(truth_k, [name], dtype=torch.float64).reshape(-1, 1, *grid.shape)
            guess = torch.from_numpy(pred[name].isel(lead_time=k - 1).values).reshape(-1, 1, *grid.shape).to(torch.float64)
            model.append(float(rel_l2(guess, true, grid=grid).mean()))
            persistence.append(float(rel_l2(before, true, grid=grid).mean()))
            if k == steps:
                later.append(truth_k)
        scores["rel_l2"][name] = model
        scores["persistence_rel_l2"][name] = persistence
        truths[name] = later[0][name]
    return {"scores": scores, "prediction": pred.isel(lead_time=-1), "truth": truths}


def _lead_values(leads: np.ndarray) -> list:
    if leads.dtype.kind == "m":
        return [float(v / np.timedelta64(1, "h")) for v in leads]
    return [float(v) for v in leads]


def _lead_units(lead: xr.DataArray) -> str:
    return "hours" if lead.dtype.kind == "m" else str(lead.attrs.get("units", "1"))


def _spectra(surrogate: Surrogate, pred: xr.Dataset, truth: xr.Dataset, rollout: dict | None) -> dict:
    """Mean energy spectra of prediction and truth per output variable (periodic boxes, the sphere)."""
    import xarray as xr

    from .spectral import isotropic_spectrum

    def mean_spectrum(da: xr.DataArray) -> xr.DataArray:
        grid = grid_of(da.to_dataset(name="field"))
        values = da.transpose(*[d for d in da.dims if d not in grid.dims], *grid.dims).values
        power, axis = isotropic_spectrum(values, grid)  # (..., K)
        dim = "degree" if grid.kind == "latlon" else "wavenumber"
        power = power.reshape(-1, power.shape[-1]).mean(axis=0)
        return xr.DataArray(power, dims=dim, coords={dim: axis},
                            attrs={"units": f"({da.attrs['units']})^2"} if "units" in da.attrs else {})

    spectra = {}
    for name in surrogate.outputs:
        true, guess = mean_spectrum(truth[name]), mean_spectrum(pred[name])
        axis = "degree" if "degree" in true.dims else "wavenumber"
        entry = {"axis": axis, "wavenumber": [float(v) for v in true[axis].values],
                 "truth": [float(v) for v in true.values], "prediction": [float(v) for v in guess.values],
                 "units": true.attrs.get("units", "1"), "long_name": str(truth[name].attrs.get("long_name", name))}
        if rollout is not None:
            entry["lead_time_last"] = rollout["scores"]["lead_time"][-1]
            entry["truth_last_lead"] = [float(v) for v in mean_spectrum(rollout["truth"][name]).values]
            entry["prediction_last_lead"] = [float(v) for v in mean_spectrum(rollout["prediction"][name]).values]
        spectra[name] = entry
    return spectra


def _warnings(surrogate: Surrogate, ds: xr.Dataset, result: dict) -> list[str]:
    """Physics differences from the training data, then signs that the surrogate has not learned."""
    from ._diagnostics import training_warnings
    from ._physics import physics_mismatches

    recorded = {"domain": {"kind": surrogate.grid.kind, "lengths": list(surrogate.grid.lengths)},
                **(surrogate.provenance.get("physics") or {})}
    lines = [f"physics differs from the training data: {line}" for line in physics_mismatches(recorded, ds)]
    errors = list(result["rel_l2"].values())
    persistence = result["persistence_rel_l2"]
    provenance = surrogate.provenance
    lines += training_warnings(None, val_error=float(np.mean(errors)),
                               persistence_error=float(np.mean(list(persistence.values())))
                               if persistence and set(persistence) == set(result["rel_l2"]) else None,
                               zero_error=result["zero_field_rel_l2"], trend=provenance.get("loss_trend_per_epoch"),
                               epochs=provenance.get("epochs_run"), stop_reason=provenance.get("stop_reason"))
    return lines


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
    from .plotting import plot_error_by_lead, plot_error_vs_resolution, plot_fields, plot_spectra, save_figure

    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "evaluation.json", json.dumps(result, indent=2))
    data_name = Path(result["data"]).name
    sizes = [int(key.split("x")[0]) for key in result["rel_l2_by_resolution"]]
    curves = {f"surrogate: {name}": (sizes, [errs[name] for errs in result["rel_l2_by_resolution"].values()])
              for name in surrogate.outputs}
    grid = grid_of(inputs)
    file_size = [result["resolution"][0]]
    baselines = {f"persistence of {name} (input as the forecast)": (file_size, [error])
                 for name, error in result["persistence_rel_l2"].items()}
    save_figure(plot_error_vs_resolution(curves, baselines=baselines, train_resolution=surrogate.grid.shape[0],
                                         xlabel=f"grid points along {grid.dims[0]}", ylabel="relative L2 error (mean over frames)",
                                         title=f"{data_name}: error vs grid ({grid.kind})"),
                out / "error_vs_resolution.png")
    rollout = result.get("rollout")
    if rollout is not None:
        units = rollout["lead_time_units"]
        lead_curves = {f"surrogate rollout: {name}": errors for name, errors in rollout["rel_l2"].items()}
        lead_baselines = {f"persistence of {name} (initial frame as the forecast)": errors
                          for name, errors in rollout["persistence_rel_l2"].items()}
        save_figure(plot_error_by_lead(rollout["lead_time"], lead_curves, baselines=lead_baselines,
                                       xlabel=f"lead time [{units}]" if units != "1" else "lead time (nondimensional)",
                                       ylabel=f"relative L2 error (mean over {rollout['n_initial_frames']} initial frames)",
                                       title=f"{data_name}: autoregressive rollout of {rollout['steps']} steps"),
                    out / "error_by_lead_time.png")
    for name, spectrum in result.get("energy_spectrum", {}).items():
        k = spectrum["wavenumber"]
        lines = {"truth (data)": (k, spectrum["truth"]), "prediction (surrogate, one step)" if surrogate.lead_time
                 is not None else "prediction (surrogate)": (k, spectrum["prediction"])}
        if "truth_last_lead" in spectrum:
            lead = spectrum["lead_time_last"]
            lines[f"truth at lead {lead:g}"] = (k, spectrum["truth_last_lead"])
            lines[f"rollout at lead {lead:g}"] = (k, spectrum["prediction_last_lead"])
        xlabel = ("spherical-harmonic degree l" if spectrum["axis"] == "degree"
                  else "angular wavenumber |k| [rad per length unit]")
        units = spectrum["units"]
        save_figure(plot_spectra(lines, xlabel=xlabel, ylabel=f"energy per {'degree' if spectrum['axis'] == 'degree' else 'shell'}"
                                 + (f" [{units}]" if units not in ("1", "(1)^2") else " (nondimensional)"),
                                 title=f"Energy spectrum of {name}: prediction against truth, mean over the frames of {data_name}"),
                    out / ("energy_spectrum.png" if len(result["energy_spectrum"]) == 1 else f"energy_spectrum_{name}.png"))
    if grid.ndim != 2:  # field images are for 2-D grids; the curve and JSON cover 1-D
        return
    first = {d: 0 for d in inputs[surrogate.inputs[0]].dims if d not in grid.dims}
    select = {d: [0] for d in first}
    if surrogate.lead_time is not None and "time" in select:  # a history model needs the frames before its first input time
        select["time"] = slice(0, inputs.sizes["time"] - truth.sizes["time"] + 1)
    pred = surrogate.predict(inputs.isel(select), batch_size=batch_size, device=device)
    name = surrogate.outputs[0]
    fig = plot_fields(truth[name].isel(first), pred[name].isel(first), title=f"{name}, first frame of {data_name}",
                      truth_label="truth (data)", prediction_label="prediction (surrogate)")
    save_figure(fig, out / "fields.png")


def _persistence(surrogate: Surrogate, inputs: xr.Dataset, truth: xr.Dataset) -> dict[str, float]:
    """Relative L2 of the input as the forecast, for a time-stepper's outputs that are also inputs."""
    if surrogate.lead_time is None:
        return {}
    grid = grid_of(truth)
    # the input times: a history model's first frames are history only (the truth has that many frames fewer)
    inputs = inputs.isel(time=slice(inputs.sizes["time"] - truth.sizes["time"], None))
    errors = {}
    for name in (n for n in surrogate.outputs if n in surrogate.inputs):
        before, after = (stack_fields(part, [name], dtype=torch.float64).reshape(-1, 1, *grid.shape) for part in (inputs, truth))
        errors[name] = float(rel_l2(before, after, grid=grid).mean())
    return errors
