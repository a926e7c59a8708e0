"""Helpers shared by the recipes: chunked solving with a progress bar, and the output dataset."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import torch

from sciml.data.cf import trajectory_dataset
from sciml.grids import Grid
from sciml.spectral import spectral_resample

if TYPE_CHECKING:
    import xarray as xr


def chunked(run: Callable[[int, int], tuple[torch.Tensor, float]], n_samples: int, chunk: int, *, desc: str,
            progress: bool) -> tuple[torch.Tensor, float]:
    """Call ``run(start, count)`` over chunks of samples; concatenate the results on the CPU.

    Returns the trajectories and the time step of the first chunk (recipes pick one step per chunk).
    """
    from tqdm.auto import tqdm

    pieces, first_dt = [], None
    with tqdm(total=n_samples, desc=desc, unit="sample", disable=not progress, leave=False) as bar:
        for start in range(0, n_samples, chunk):
            count = min(chunk, n_samples - start)
            piece, dt = run(start, count)
            pieces.append(piece.cpu())
            first_dt = dt if first_dt is None else first_dt
            bar.update(count)
    return torch.cat(pieces), first_dt


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
