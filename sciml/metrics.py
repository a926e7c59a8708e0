"""Error metrics on gridded fields, weighted by the grid's quadrature.

All take ``pred`` and ``true`` of shape ``(batch, channel, *space)``; with a ``grid`` the integrals are
quadrature sums ``sum_x w(x) f(x)`` with ``w = grid.quadrature_weights()`` (so they converge to the
continuous norms and are comparable across resolutions); without one, every point weighs the same. On a
:meth:`~sciml.grids.Grid.latlon` sphere of either node set the weights are the area of each point
(Clenshaw-Curtis or Gauss-Legendre in ``sin(lat)``: about the area each point stands for), so errors near the poles, where points crowd,
count for the little area they cover.
"""

from __future__ import annotations

import torch

from .errors import DataError, GridError
from .grids import Grid

__all__ = ["rel_l2", "nrmse", "max_error", "weighted_sq_norm", "check_pair"]


def check_pair(pred: torch.Tensor, true: torch.Tensor, grid: Grid | None) -> None:
    """Equal shapes ``(batch, channel, *space)`` matching ``grid``; else :class:`DataError`/:class:`GridError`."""
    if pred.shape != true.shape:
        raise DataError(f"pred shape {tuple(pred.shape)} differs from true shape {tuple(true.shape)}")
    if pred.ndim < 3:
        raise DataError(f"expected (batch, channel, *space), got shape {tuple(pred.shape)}")
    if grid is not None and tuple(pred.shape[2:]) != grid.shape:
        raise GridError(f"spatial shape {tuple(pred.shape[2:])} does not match grid shape {grid.shape}")


def weighted_sq_norm(field: torch.Tensor, grid: Grid | None = None) -> torch.Tensor:
    """``sum_x w(x) |field|^2`` over the spatial dims; ``(batch, channel, *space) -> (batch, channel)``."""
    spatial = tuple(range(2, field.ndim))
    sq = field.abs() ** 2
    if grid is not None:
        sq = sq * grid.quadrature_weights(dtype=sq.dtype, device=sq.device)
    return sq.sum(dim=spatial)


def rel_l2(pred: torch.Tensor, true: torch.Tensor, *, grid: Grid | None = None) -> torch.Tensor:
    """Relative L2 error per sample, channels pooled: ``||pred - true|| / ||true||``; shape ``(batch,)``.

    Raises ``ValueError`` if a sample of ``true`` is identically zero (the ratio is undefined).
    """
    check_pair(pred, true, grid)
    den = weighted_sq_norm(true, grid).sum(dim=1)
    if bool((den == 0).any()):
        raise ValueError("relative L2 is undefined: some samples of `true` are identically zero")
    return (weighted_sq_norm(pred - true, grid).sum(dim=1) / den).sqrt()


def nrmse(pred: torch.Tensor, true: torch.Tensor, *, grid: Grid | None = None) -> torch.Tensor:
    """Normalised RMSE per sample and channel, ``RMSE / RMS(true)`` as in PDEBench; shape ``(batch, channel)``."""
    check_pair(pred, true, grid)
    den = weighted_sq_norm(true, grid)
    if bool((den == 0).any()):
        raise ValueError("nRMSE is undefined: some channels of `true` are identically zero")
    return (weighted_sq_norm(pred - true, grid) / den).sqrt()


def max_error(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Largest pointwise absolute error per sample and channel; shape ``(batch, channel)``."""
    check_pair(pred, true, None)
    return (pred - true).abs().flatten(2).amax(dim=2)
