"""The physical setting of a dataset, as recorded with a surrogate, and the differences from another file.

A surrogate learns one physical setting: an equation, a forcing, a viscosity (or a range of them, one
per trajectory), a domain. :func:`physics_record` extracts that setting from the training file's
attributes (what the ``datasets`` recipes write through the solvers' ``attributes()``) and coordinates;
:func:`fit_surrogate` stores it as ``provenance["physics"]``. :func:`physics_mismatches` lists, one line
each, how an evaluated file's setting differs from the recorded one; :func:`sciml.evaluate` warns with
them. Numbers are compared within a relative tolerance of 1e-6 (values written as float32 and read back
as float64 stay equal); a viscosity counts as different when the file's lies outside the trained range.

Only physics is compared: the numerical scheme, the time step of the solver, the solve resolution and
the seeds describe how the data were made, not what they are, and may differ freely.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

    from .grids import Grid

#: Dataset attributes that define the physics (the solvers' ``attributes()``): compared when either side has them.
PHYSICAL_ATTRIBUTES = (
    "equation", "forcing", "forcing_wavenumber", "drag", "viscosity", "diffusivity", "buoyancy_frequency",
    "coriolis_parameter", "domain_length", "boundary_condition", "coefficient", "radius_m", "omega_s-1",
    "gravity_m_s-2", "mean_depth_m", "hyperdiffusion_order", "hyperdiffusion_time_s",
)
RTOL = 1e-6


def _plain(value: Any) -> Any:
    """A NetCDF attribute as a JSON value: numpy scalars and arrays as numbers and lists."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def viscosity_range(ds: xr.Dataset) -> list[float] | None:
    """``[min, max]`` of the file's viscosity: a per-trajectory ``viscosity`` coordinate or variable (the
    ``burgers`` recipe), else the ``viscosity`` attribute; ``None`` when the file records none."""
    if "viscosity" in ds.variables and ds["viscosity"].dims and "sample" in ds["viscosity"].dims:
        values = np.asarray(ds["viscosity"].values, dtype=np.float64)
    elif "viscosity" in ds.attrs and isinstance(_plain(ds.attrs["viscosity"]), numbers.Real):
        values = np.asarray([float(ds.attrs["viscosity"])])
    else:
        return None
    return [float(values.min()), float(values.max())]


def physics_record(ds: xr.Dataset, grid: Grid | None = None) -> dict:
    """The physical setting of ``ds`` as a JSON object, for ``provenance["physics"]``.

    Keys: every attribute of :data:`PHYSICAL_ATTRIBUTES` the file has (numbers as numbers), with the
    viscosity as ``"viscosity_range": [min, max]`` (per-trajectory values or the one attribute), and
    ``"domain": {"kind", "lengths"}`` of ``grid`` (default: the file's grid, :func:`sciml.data.grid_of`).
    """
    from .data.tensors import grid_of

    grid = grid_of(ds) if grid is None else grid
    record = {key: _plain(ds.attrs[key]) for key in PHYSICAL_ATTRIBUTES if key in ds.attrs and key != "viscosity"}
    nu = viscosity_range(ds)
    if nu is not None:
        record["viscosity_range"] = nu
    record["domain"] = {"kind": grid.kind, "lengths": [float(v) for v in grid.lengths]}
    return record


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, numbers.Real) and isinstance(b, numbers.Real):
        return math.isclose(float(a), float(b), rel_tol=RTOL, abs_tol=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def physics_mismatches(recorded: dict, ds: xr.Dataset) -> list[str]:
    """One line per physical difference between a surrogate's training data and ``ds``.

    Args:
        recorded: the training data's :func:`physics_record` (``surrogate.provenance["physics"]``; with
            ``"domain"`` from the surrogate's grid when the provenance has no physics).
        ds: the file to evaluate on.

    Returns:
        ``["forcing: training data 'li2021', this file 'kolmogorov'", ...]``, empty when everything the
        two record agrees. An attribute recorded by one side only counts as a difference (the other
        file's physics cannot be checked). The viscosity differs when the file's range is not inside the
        trained range (within the tolerance); the domain when the grid kind or lengths differ.
    """
    current = physics_record(ds)
    lines = []
    keys = [k for k in PHYSICAL_ATTRIBUTES if k != "viscosity"]
    for key in keys:
        if key not in recorded and key not in current:
            continue
        if key not in current:
            lines.append(f"{key}: training data {_text(recorded[key])}, not recorded in this file")
        elif key not in recorded:
            lines.append(f"{key}: not recorded in the training data, this file {_text(current[key])}")
        elif not _same(recorded[key], current[key]):
            lines.append(f"{key}: training data {_text(recorded[key])}, this file {_text(current[key])}")
    trained, nu = recorded.get("viscosity_range"), current.get("viscosity_range")
    if trained is not None and nu is None:
        lines.append(f"viscosity: training data {_range(trained)}, not recorded in this file")
    elif trained is None and nu is not None:
        lines.append(f"viscosity: not recorded in the training data, this file {_range(nu)}")
    elif trained is not None:
        low, high = trained
        tol = RTOL * max(abs(low), abs(high))
        if nu[0] < low - tol or nu[1] > high + tol:
            where = "outside" if len(set(trained)) > 1 else "not"
            lines.append(f"viscosity: this file {_range(nu)}, {where} the training data's {_range(trained)}")
    domain, here = recorded.get("domain"), current["domain"]
    if domain is not None and (domain.get("kind") != here["kind"] or not _same(domain.get("lengths"), here["lengths"])):
        lines.append(f"domain: training data a {domain.get('kind')} of lengths {_text(domain.get('lengths'))}, "
                     f"this file a {here['kind']} of lengths {_text(here['lengths'])}")
    return lines


def _range(values: list[float]) -> str:
    low, high = values
    return f"{low:g}" if _same(low, high) else f"{low:g} to {high:g}"
