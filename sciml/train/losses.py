"""Training losses on ``(batch, channel, *space)`` fields."""

from __future__ import annotations

import torch

from ..grids import Grid
from ..metrics import weighted_sq_norm

__all__ = ["relative_l2_loss"]


def relative_l2_loss(pred: torch.Tensor, true: torch.Tensor, *, grid: Grid | None = None, eps: float = 1e-12) -> torch.Tensor:
    """Mean over the batch of ``||pred - true|| / ||true||`` (channels pooled, quadrature-weighted).

    Unlike :func:`sciml.metrics.rel_l2` this never synchronises with the device to check for zero
    targets; ``eps`` keeps the gradient finite instead.
    """
    num = weighted_sq_norm(pred - true, grid).sum(dim=1)
    den = weighted_sq_norm(true, grid).sum(dim=1)
    return (num / (den + eps)).sqrt().mean()
