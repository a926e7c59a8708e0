"""From canonical xarray datasets to tensors ``(batch, channel, *space)`` and back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from ..errors import DataError
from ..grids import PERIODIC_ATTR, Grid, GridError, is_periodic
from ._layout import SPACE_ORDER, canonical_order, check_finite, require_variables, source_name

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["stack_fields", "grid_of", "source_name", "in_canonical_order"]

SPATIAL_DIMS = (("lat", "lon"), ("y", "x"), ("x",))


def grid_of(ds: xr.Dataset) -> Grid:
    """The grid spanned by the dataset's spatial coordinates: ``(lat, lon)``, ``(y, x)`` or ``(x,)``.

    Boxes: periodic (``"box"``) unless the coordinates carry ``periodic = "false"``
    (:data:`sciml.grids.PERIODIC_ATTR`), which makes a ``"bounded"`` grid whose points are the nodes.

    Sphere: a global ``"latlon"`` grid recognised by :meth:`sciml.grids.Grid.from_latlon` (degrees;
    equiangular latitudes with both poles or Gauss-Legendre latitudes, ascending; a uniform longitude
    covering 360 degrees, starting anywhere). Latitude is never periodic and its ``periodic``
    attribute is ignored: files written by earlier versions of sciml mark it ``"true"``, and refusing
    them would break readable data for an attribute nothing reads. A longitude marked
    ``periodic = "false"`` contradicts a global grid and is refused.

    Raises :class:`~sciml.errors.DataError` naming the file and the coordinate otherwise.
    """
    for dims in SPATIAL_DIMS:
        if all(d in ds.dims for d in dims):
            return grid_on(ds, dims)
    raise DataError(f"{source_name(ds)}: no spatial dims ('lat', 'lon'), ('y', 'x') or ('x',) found among {tuple(ds.dims)}")


def grid_on(ds: xr.Dataset, dims: Sequence[str]) -> Grid:
    """The grid spanned by ``ds``'s coordinates along ``dims`` (``("lat", "lon")`` or box dims), with the rules of
    :func:`grid_of`; :class:`~sciml.errors.DataError` naming the file and the coordinate otherwise."""
    dims = tuple(dims)
    missing = [d for d in dims if d not in ds.dims or d not in ds.coords]
    if missing:
        raise DataError(f"{source_name(ds)}: spatial dims {missing} have no coordinate values; add them")
    try:
        if dims == ("lat", "lon"):
            if not is_periodic(ds["lon"].attrs, name="coordinate 'lon'"):
                raise GridError(f"coordinate 'lon' is marked {PERIODIC_ATTR} = 'false', but a global lat-lon grid is "
                                "periodic in longitude; drop the attribute or set it to 'true'")
            return Grid.from_latlon(ds["lat"].values, ds["lon"].values)
        periodic = {is_periodic(ds[d].attrs, name=f"coordinate {d!r}") for d in dims}
        if len(periodic) > 1:
            raise GridError(f"coordinates {dims} mix periodic and bounded dims; this is not supported yet")
        return Grid.from_coords({d: ds[d].values for d in dims}, periodic=periodic.pop())
    except GridError as err:
        raise DataError(f"{source_name(ds)}: {err}") from None


def in_canonical_order(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with every data variable's dims in the canonical order ``(sample, time, ..., y, x | lat, lon)``.

    :func:`sciml.data.open` returns this order; an in-memory dataset may be in any (``ds.transpose(...)``).
    Lazy: transposing reads nothing. ``ds`` itself when already canonical.
    """
    changed = {}
    for name, var in ds.data_vars.items():
        order = canonical_order(tuple(map(str, var.dims)))
        if order != var.dims:
            changed[name] = var.transpose(*order)
    return ds.assign(changed) if changed else ds


def stack_fields(ds: xr.Dataset, variables: Sequence[str], *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Stack ``variables`` into one tensor with the channel axis just before the spatial dims.

    ``(sample, [time,] *space)`` per variable -> ``(sample, [time,] channel, *space)``, in the canonical
    order whatever the order of the dataset's dims (aligned by name: see :func:`in_canonical_order`), the
    spatial dims being those of :data:`sciml.data._layout.SPACE_ORDER` (``y, x`` or ``lat, lon``). Raises
    :class:`DataError` for a missing variable, mismatched dims, or NaN/Inf (naming the first bad sample).
    """
    source = source_name(ds)
    require_variables(ds, variables)
    fields = [ds[name].transpose(*canonical_order(tuple(map(str, ds[name].dims)))) for name in variables]
    dims = fields[0].dims
    for name, field in zip(variables[1:], fields[1:]):
        if field.dims != dims:
            raise DataError(f"{source}: variable {name!r} has dims {ds[name].dims}, "
                            f"{variables[0]!r} has {ds[variables[0]].dims}")
    arrays = [check_finite(np.asarray(field.values), source=source, name=name, dims=dims)
              for name, field in zip(variables, fields)]
    space_rank = sum(d in SPACE_ORDER for d in dims)
    stacked = np.stack(arrays, axis=len(dims) - space_rank)
    return torch.from_numpy(stacked).to(dtype)
