"""Views of trajectories for joint-embedding training: space-time crops and pairs of crops.

A view is a window of ``size_t`` consecutive frames and ``size_x`` points along each spatial dim, cut from a
trajectory ``(time, channel, *space)``. On a periodic domain a window may wrap around, so every position is
equally likely and a crop is itself a symmetry (a time shift and a space shift by whole cells, see
:mod:`sciml.jepa.symmetries`) followed by a restriction. Pairs of views come from the same trajectory
(:func:`view_pairs` without ``partner``) or from two trajectories with the same coefficients
(``partner=partners(groups)``, groups from :func:`coefficient_groups`), the two kinds of positive pairs of
Mialon et al. (2023, "Self-supervised learning with Lie symmetries for partial differential equations",
NeurIPS, arXiv:2307.05432), where the encoder must map views that share the physics close together.

Tensors are laid out ``(batch, time, channel, *space)``, 1-D or 2-D space; random draws come from an explicit
``torch.Generator``, so one seed gives one set of views.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, NamedTuple, Sequence

import numpy as np
import torch

from ..errors import ConfigError, DataError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["CropOffsets", "crop_offsets", "crop", "view_pairs", "partners", "coefficient_groups"]


class CropOffsets(NamedTuple):
    """Where each window starts: ``time`` ``(batch,)`` frame indices, ``space`` ``(batch, d)`` point indices in
    the order of the spatial dims."""

    time: torch.Tensor
    space: torch.Tensor


def _sizes(size_x: int | Sequence[int], space: Sequence[int]) -> tuple[int, ...]:
    sizes = (size_x,) * len(space) if isinstance(size_x, numbers.Integral) else tuple(size_x)
    if len(sizes) != len(space) or any(not isinstance(s, numbers.Integral) or not 1 <= s <= n
                                       for s, n in zip(sizes, space)):
        raise ConfigError(f"size_x={size_x} must be one integer or one per spatial dim, each in 1..{tuple(space)}")
    return tuple(int(s) for s in sizes)


def _check_size_t(size_t: int, frames: int) -> int:
    if isinstance(size_t, bool) or not isinstance(size_t, numbers.Integral) or not 1 <= size_t <= frames:
        raise ConfigError(f"size_t={size_t!r} must be an integer in 1..{frames} (the frames of the trajectory)")
    return int(size_t)


def crop_offsets(batch: int, frames: int, space: Sequence[int], *, size_t: int, size_x: int | Sequence[int],
                 generator: torch.Generator, periodic: bool = True) -> CropOffsets:
    """Uniform window starts for ``batch`` trajectories of ``frames`` frames on a grid of shape ``space``.

    Time starts in ``0..frames - size_t``; space starts in ``0..n - 1`` on a periodic grid (windows wrap),
    ``0..n - size`` otherwise. Drawn on the generator's device, time first.
    """
    size_t = _check_size_t(size_t, frames)
    sizes = _sizes(size_x, space)
    device = generator.device
    time = torch.randint(frames - size_t + 1, (batch,), generator=generator, device=device)
    space_starts = [torch.randint(n if periodic else n - s + 1, (batch,), generator=generator, device=device)
                    for n, s in zip(space, sizes)]
    return CropOffsets(time, torch.stack(space_starts, dim=-1))


def crop(data: torch.Tensor | xr.Dataset | xr.DataArray, *, size_t: int, size_x: int | Sequence[int],
         generator: torch.Generator | None = None, offsets: CropOffsets | None = None, periodic: bool = True):
    """Space-time windows of trajectories.

    Args:
        data: a tensor ``(batch, time, channel, *space)`` (one window per trajectory), or a canonical
            dataset / data array with dims ``time`` and ``x`` (or ``y, x``) (one window for all samples).
        size_t: frames per window.
        size_x: points per spatial dim (one integer for all, or one per dim).
        generator: draws the windows (:func:`crop_offsets`); or give ``offsets`` instead.
        offsets: window starts (tensors only).
        periodic: whether a tensor's space is periodic (windows wrap around); a dataset's coordinates say so
            themselves (their ``periodic`` attribute).

    Returns:
        ``(batch, size_t, channel, *sizes)`` for a tensor. For xarray, the selection with its coordinates:
        the ``time`` values of the window, and spatial values continuing past the period where the window
        wraps (``x_0 + j dx``), so they stay increasing.
    """
    if (generator is None) == (offsets is None):
        raise ConfigError("give crop() either generator= (random windows) or offsets= (given windows)")
    if not isinstance(data, torch.Tensor):
        if offsets is not None:
            raise ConfigError("offsets= crops tensors; a dataset is cropped at one window drawn from generator=")
        return _crop_xarray(data, size_t=size_t, size_x=size_x, generator=generator)
    if data.ndim not in (4, 5):
        raise ConfigError(f"a tensor to crop must be (batch, time, channel, *space) with 1-D or 2-D space, got "
                          f"shape {tuple(data.shape)}")
    space = tuple(data.shape[3:])
    size_t = _check_size_t(size_t, data.shape[1])
    sizes = _sizes(size_x, space)
    if offsets is None:
        offsets = crop_offsets(data.shape[0], data.shape[1], space, size_t=size_t, size_x=sizes, generator=generator,
                               periodic=periodic)
    t0, x0 = offsets.time.to(data.device), offsets.space.to(data.device)
    batch, extra = data.shape[0], data.ndim - 2
    index = t0[:, None] + torch.arange(size_t, device=data.device)
    out = data.take_along_dim(index.reshape(batch, size_t, *(1,) * extra), dim=1)
    for axis, (n, size) in enumerate(zip(space, sizes)):
        dim = 3 + axis
        index = x0[:, axis, None] + torch.arange(size, device=data.device)
        if periodic:
            index = index.remainder(n)
        elif bool((index >= n).any()):
            raise ConfigError(f"a window of {size} points from {int(x0[:, axis].max())} leaves the {n}-point "
                              f"bounded grid")
        shape = [batch] + [1] * (data.ndim - 1)
        shape[dim] = size
        out = out.take_along_dim(index.reshape(shape), dim=dim)
    return out


def _crop_xarray(data, *, size_t: int, size_x: int | Sequence[int], generator: torch.Generator):
    from ..grids import is_periodic

    space = [d for d in ("y", "x") if d in data.dims]
    if "time" not in data.dims or not space:
        raise DataError(f"crop needs dims 'time' and 'x' (or 'y', 'x'); got {tuple(data.dims)}")
    sizes = _sizes(size_x, [data.sizes[d] for d in space])
    frames = data.sizes["time"]
    size_t = _check_size_t(size_t, frames)
    selection, coords = {}, {}
    t0 = int(torch.randint(frames - size_t + 1, (1,), generator=generator, device=generator.device))
    selection["time"] = slice(t0, t0 + size_t)
    for dim, size in zip(space, sizes):
        n = data.sizes[dim]
        values = np.asarray(data[dim].values, dtype=np.float64)
        periodic = is_periodic(data[dim].attrs, name=f"coordinate {dim!r}")
        start = int(torch.randint(n if periodic else n - size + 1, (1,), generator=generator, device=generator.device))
        selection[dim] = (start + np.arange(size)) % n
        spacing = (values[-1] - values[0]) / (n - 1) if n > 1 else 1.0
        coords[dim] = (dim, values[start] + spacing * np.arange(size), data[dim].attrs)
    return data.isel(selection).assign_coords(coords)


def view_pairs(trajectories: torch.Tensor, *, size_t: int, size_x: int | Sequence[int], generator: torch.Generator,
               partner: torch.Tensor | None = None, periodic: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Two views per trajectory: ``(first, second)``, each ``(batch, size_t, channel, *sizes)``.

    ``first[i]`` is a window of ``trajectories[i]``; ``second[i]`` an independent window of the same
    trajectory, or of ``trajectories[partner[i]]`` (e.g. :func:`partners`: another trajectory with the same
    coefficients). The first view's windows are drawn before the second's.
    """
    first = crop(trajectories, size_t=size_t, size_x=size_x, generator=generator, periodic=periodic)
    source = trajectories if partner is None else trajectories[partner.to(trajectories.device)]
    return first, crop(source, size_t=size_t, size_x=size_x, generator=generator, periodic=periodic)


def partners(groups: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """For each sample, another sample of its group, uniformly: ``(sample,) -> (sample,)`` int64 indices.

    ``groups`` labels the samples (e.g. :func:`coefficient_groups`). A group of one sample has no partner and
    is refused, naming it.
    """
    groups = torch.as_tensor(groups).cpu()
    labels, inverse, counts = torch.unique(groups, return_inverse=True, return_counts=True)
    if bool((counts < 2).any()):
        lonely = labels[counts < 2][:5].tolist()
        raise DataError(f"groups {lonely} have a single sample, which has no partner with the same coefficients; "
                        "generate several trajectories per coefficient set (trajectories_per_group >= 2)")
    order = torch.argsort(inverse, stable=True)  # samples sorted by group
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(groups)) - starts[inverse[order]]
    size = counts[inverse]
    draw = torch.rand(len(groups), generator=generator, device=generator.device).cpu()
    step = 1 + (draw * (size - 1)).long().clamp_max(size - 2)  # uniform in 1..size-1: never the sample itself
    return order[starts[inverse] + (rank + step) % size]


def coefficient_groups(ds: xr.Dataset, names: Sequence[str]) -> torch.Tensor:
    """Group label per sample ``(sample,)`` int64: samples share a label when all coordinates ``names``
    (e.g. ``["viscosity", "forcing_amplitude"]``) along ``sample`` are equal."""
    missing = [name for name in names if name not in ds.coords or ds[name].dims != ("sample",)]
    if not names or missing:
        raise DataError(f"coefficient coordinates {missing or list(names)} along 'sample' not found; the dataset has "
                        f"{[name for name in ds.coords if ds[name].dims == ('sample',)]}")
    rows = np.stack([np.asarray(ds[name].values, dtype=np.float64) for name in names], axis=-1)
    _, inverse = np.unique(rows, axis=0, return_inverse=True)
    return torch.from_numpy(inverse.reshape(-1).astype(np.int64))
