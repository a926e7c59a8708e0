"""``darcy``: 2-D Darcy flow ``-div(a grad p) = 1`` on the unit square, ``p = 0`` on the boundary.

Coefficients from a Gaussian random field ``g`` (alpha 2, tau 3) as in Li et al. (2021):
``"threshold"``: ``a = 12`` where ``g >= 0``, else ``3``; ``"lognormal"``: ``a = exp(g)``. The field is
band-limited (modes ``|k| <= 32``), so a seed fixes one continuous coefficient that every resolution
samples at its nodes ``x_i = i / (s - 1)``. Records ``a(sample, y, x)`` and ``pressure(sample, y, x)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from sciml.data.cf import trajectory_dataset
from sciml.grids import Grid
from sciml.random_fields import gaussian_random_field
from sciml.solvers.darcy import Darcy2D, solve_pressure

if TYPE_CHECKING:
    import xarray as xr

COEFFICIENTS = ("threshold", "lognormal")
GRF = {"alpha": 2.0, "tau": 3.0, "band_limit": 32}


def coefficient(n_samples: int, nodes: int, *, seed: int, first_sample: int = 0, kind: str = "threshold",
                dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Coefficient at ``nodes x nodes`` points including the boundary; ``(n_samples, nodes, nodes)``."""
    if kind not in COEFFICIENTS:
        raise ValueError(f"coefficient must be one of {COEFFICIENTS}, got {kind!r}")
    periodic = gaussian_random_field(Grid.box(nodes - 1, nodes - 1), n_samples, seed=seed, first_sample=first_sample,
                                     dtype=dtype, **GRF)
    g = torch.cat([periodic, periodic[:, :1]], dim=1)
    g = torch.cat([g, g[:, :, :1]], dim=2)  # the node at x = 1 is the node at x = 0 of the periodic field
    if kind == "threshold":
        return torch.where(g >= 0, 12.0, 3.0).to(dtype)
    return torch.exp(g)


# Bytes per unknown of the sparse direct solve (matrix, fill-in of the factor, workspace): an upper estimate.
DIRECT_BYTES_PER_NODE = 300


def estimate(n_samples: int, resolution: int, *, solve_resolution: int | None = None, **_):
    """Memory and file size of :func:`generate` with these options (:class:`sciml._budget.Estimate`): two float64
    fields per sample kept, 64 coefficients drawn at a time, one sparse factorisation."""
    from sciml._budget import Estimate

    from ._common import TOO_LARGE

    solve_at = resolution if solve_resolution is None else int(solve_resolution)
    nodes = solve_at**2
    return Estimate(f"darcy: {n_samples} solutions at {solve_at}x{solve_at} nodes",
                    output_bytes=2 * n_samples * resolution**2 * 8,
                    work_bytes=min(64, n_samples) * nodes * 8 * 6 + nodes * DIRECT_BYTES_PER_NODE, fix=TOO_LARGE)


def generate(
    n_samples: int,
    resolution: int,
    *,
    seed: int,
    first_sample: int = 0,
    coefficient_kind: str = "threshold",
    solve_resolution: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    command: str | None = None,
) -> xr.Dataset:
    """``resolution`` nodes per side; solve on ``solve_resolution`` nodes (default ``None``: ``resolution``;
    ``(solve - 1)`` a multiple of ``(resolution - 1)``) and subsample the nodes when asked."""
    from tqdm.auto import tqdm

    if solve_resolution is not None and (isinstance(solve_resolution, bool) or not isinstance(solve_resolution, int)
                                         or solve_resolution < resolution):
        raise ValueError(f"solve_resolution must be an integer >= resolution = {resolution} (or None for "
                         f"resolution), got {solve_resolution!r}")
    solve_at = resolution if solve_resolution is None else solve_resolution
    if (solve_at - 1) % (resolution - 1):
        raise ValueError(f"solve_resolution - 1 = {solve_at - 1} must be a multiple of resolution - 1 = {resolution - 1}")
    stride = (solve_at - 1) // (resolution - 1)
    eq = Darcy2D(forcing=1.0)
    a, p = [], []
    with tqdm(total=n_samples, desc=f"darcy {solve_at}x{solve_at}", unit="sample", disable=not progress, leave=False) as bar:
        for start in range(0, n_samples, 64):
            count = min(64, n_samples - start)
            coeff = coefficient(count, solve_at, seed=seed, first_sample=first_sample + start, kind=coefficient_kind)
            pressure = solve_pressure(eq, coeff.to(device)).cpu()
            a.append(coeff[:, ::stride, ::stride])
            p.append(pressure[:, ::stride, ::stride])
            bar.update(count)
    nodes = torch.linspace(0.0, 1.0, resolution, dtype=torch.float64)
    attrs = {**eq.attributes(), "coefficient": coefficient_kind,
             "solve_resolution": solve_at, "seed": seed, "first_sample": first_sample,
             **{f"grf_{k}": v for k, v in GRF.items()}}
    if command:
        attrs["history"] = command
    ds = trajectory_dataset({"a": torch.cat(a), "pressure": torch.cat(p)}, times=None, coords={"y": nodes, "x": nodes},
                            attrs=attrs, periodic=False)
    return ds.assign_coords(sample=ds["sample"] + first_sample)
