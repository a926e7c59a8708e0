"""The canonical in-memory layout every reader produces, and the helpers readers share.

Canonical layout (``../docs/architecture.md``, "Data model"):

- dims: ``sample`` (independent trajectories or coefficient draws), ``time`` (absent for static
  problems such as Darcy), optional extra dims such as ``level``, then space: ``z``, ``y``, ``x`` for
  boxes (``x`` fastest) or ``lat``, ``lon`` on the sphere (latitude ascending);
- fields are data variables; spatial and time coordinates are 1-D, strictly increasing;
- PDE parameters are attributes (one value per file) or coordinates along ``sample`` (one per sample);
- CF attributes (``units``, ``standard_name``, ``long_name``) are preserved;
- whatever a reader changed relative to the file (renamed, flipped, transposed, added a dim) is listed
  in ``ds.attrs["sciml_normalisation"]`` (a ``"; "``-joined string) so nothing happens silently, and
  ``ds.encoding["sciml_format"]`` names the layout detected (encoding, not attributes, so that
  ``open(write(ds))`` is ``ds``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import DataError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["SPACE_ORDER", "LEAD_ORDER", "record", "canonical_order", "read_values", "source_name", "require_variables",
           "check_finite"]

LEAD_ORDER = ("sample", "time")
SPACE_ORDER = ("z", "y", "x", "lat", "lon")


def source_name(ds: xr.Dataset) -> str:
    """The file a dataset came from, for error messages ("<in-memory dataset>" otherwise)."""
    return str(ds.encoding.get("source", "<in-memory dataset>"))


def require_variables(ds: xr.Dataset, names: Sequence[str], *, purpose: str = "") -> None:
    """:class:`DataError` naming the file, the missing variables, what needs them and what is there."""
    missing = [name for name in names if name not in ds.data_vars]
    if missing:
        import difflib

        need = f"; {purpose} needs {list(names)}" if purpose else ""
        available = sorted(map(str, ds.data_vars))
        guesses = {name: difflib.get_close_matches(str(name), available, n=1, cutoff=0.6) for name in missing}
        hint = ", ".join(f"{close[0]!r} for {name!r}" for name, close in guesses.items() if close)
        raise DataError(f"{source_name(ds)}: variable(s) {missing} not found{need}; available: {available}"
                        + (f"; did you mean {hint}?" if hint else ""))


def check_finite(values: np.ndarray, *, source: str, name: str, dims: Sequence[str],
                 offsets: dict[str, int] | None = None) -> np.ndarray:
    """``values`` (read from variable ``name`` over ``dims``) if they hold no NaN/Inf; else a
    :class:`DataError` naming the first bad element by its indices in the file (``offsets``: the file
    index of each dim's first element read, 0 where absent)."""
    if values.dtype.kind not in "fc":
        return values
    bad = ~np.isfinite(values)
    if bad.any():
        at = ", ".join(f"{d}={(offsets or {}).get(d, 0) + i}" for d, i in zip(dims, np.argwhere(bad)[0].tolist()))
        raise DataError(f"{source}: variable {name!r} has NaN/Inf values (first at {at}); clean or drop those samples")
    return values


def record(ds: xr.Dataset, change: str) -> xr.Dataset:
    """Append ``change`` to ``ds.attrs["sciml_normalisation"]`` (in place; returns ``ds``)."""
    previous = ds.attrs.get("sciml_normalisation", "")
    ds.attrs["sciml_normalisation"] = f"{previous}; {change}" if previous else change
    return ds


def canonical_order(dims: tuple[str, ...]) -> tuple[str, ...]:
    """``dims`` reordered as ``(sample, time, <other dims in file order>, z, y, x | lat, lon)``."""
    lead = [d for d in LEAD_ORDER if d in dims]
    space = [d for d in SPACE_ORDER if d in dims]
    other = [d for d in dims if d not in lead and d not in space]
    return (*lead, *other, *space)


def read_values(variable: xr.Variable) -> np.ndarray:
    """The values of a (lazily indexed or dask-backed) variable as numpy.

    Dask arrays are computed with the synchronous scheduler: each read is one small block, and a dask
    thread pool inherited by a forked ``DataLoader`` worker can deadlock.
    """
    if variable.chunks is not None:  # dask-backed (asking .data of a lazy array would read it)
        return np.asarray(variable.data.compute(scheduler="synchronous"))
    return np.asarray(variable.values)
