"""Training losses on ``(batch, channel, *space)`` fields.

Each returns a scalar: the mean over the batch of a per-sample error in which the channels are
pooled, the integrals being quadrature sums on the ``grid`` (so values are comparable across
resolutions). None synchronises with the device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ..errors import ConfigError, DataError, GridError
from ..grids import Grid
from ..metrics import check_pair, weighted_sq_norm
from ..spectral import wavenumbers

__all__ = ["relative_l2_loss", "h1_loss", "rollout_loss"]


def relative_l2_loss(
    pred: torch.Tensor, true: torch.Tensor, *, grid: Grid | None = None, per_channel: bool = False,
    eps: float = 1e-12,
) -> torch.Tensor:
    """Mean over the batch of ``||pred - true|| / ||true||`` (quadrature-weighted).

    ``pred`` and ``true`` are ``(batch, channel, *space)``. The channels are pooled into one norm, or,
    with ``per_channel``, each channel's relative error is taken and they are averaged: the choice for
    variables in different units (a 10 km layer depth and 20 m/s winds), where the pooled norm would
    see only the largest. For one channel the two are the same. Unlike :func:`sciml.metrics.rel_l2` this
    never synchronises with the device to check for zero targets; ``eps`` keeps the gradient finite instead.
    """
    check_pair(pred, true, grid)
    num = weighted_sq_norm(pred - true, grid)  # (batch, channel)
    den = weighted_sq_norm(true, grid)
    if not per_channel:
        num, den = num.sum(dim=1), den.sum(dim=1)
    return (num / (den + eps)).sqrt().mean()


def _h1_sq_norm(field: torch.Tensor, lengths: Sequence[float]) -> torch.Tensor:
    """``||f||^2 + ||grad f||^2`` per sample and channel of periodic fields, by Parseval; ``(batch, channel)``."""
    dims = tuple(range(2, field.ndim))
    if field.dtype in (torch.float16, torch.bfloat16):
        field = field.float()  # FFTs of half-precision fields are unsupported or inexact
    coeffs = torch.fft.fftn(field, dim=dims, norm="forward")
    real = coeffs.real.dtype
    weight = torch.ones((), dtype=real, device=field.device)
    for axis, (n, length) in enumerate(zip(field.shape[2:], lengths)):
        shape = [1] * len(dims)
        shape[axis] = n
        weight = weight + wavenumbers(n, length, dtype=real, device=field.device).view(shape) ** 2
    return math.prod(lengths) * (weight * coeffs.abs() ** 2).sum(dim=dims)


def h1_loss(
    pred: torch.Tensor, true: torch.Tensor, *, grid: Grid | None = None, relative: bool = True, eps: float = 1e-12
) -> torch.Tensor:
    r"""Mean over the batch of the H1 norm of ``e = pred - true``, relative to that of ``true`` by default.

    On a periodic box :math:`\Omega` with Fourier coefficients :math:`\hat e_k` (``fftn(e) / N``) and
    angular wavenumbers :math:`k`, by Parseval

    .. math:: \|e\|_{H^1}^2 = \int_\Omega |e|^2 + |\nabla e|^2 \, dx = |\Omega| \sum_k (1 + |k|^2) |\hat e_k|^2,

    i.e. the grid's quadrature (:func:`sciml.metrics.weighted_sq_norm`) applied to ``e`` and to its
    spectral gradient (the Nyquist mode counted with ``|k| = pi n / L``). Channels are pooled; the
    per-sample value is :math:`\|e\|_{H^1}` or, with ``relative``, :math:`\|e\|_{H^1} / \|true\|_{H^1}`
    (``eps`` added to the squared denominator). Weighting gradients penalises errors in fine scales,
    as in the Sobolev-norm training of Li et al. (2022), "Learning chaotic dynamics in dissipative
    systems", NeurIPS (arXiv:2106.06898), and neuraloperator's ``H1Loss``.

    Args:
        pred, true: ``(batch, channel, *space)`` with 1 or 2 periodic spatial dims.
        grid: a ``Grid.box`` of the spatial shape; without one, the unit box ``[0, 1)^d``.
        relative: divide by the H1 norm of ``true``.
    """
    check_pair(pred, true, grid)
    if pred.ndim not in (3, 4):
        raise DataError(f"h1_loss takes 1-D or 2-D fields (batch, channel, *space), got shape {tuple(pred.shape)}")
    if grid is not None and grid.kind != "box":
        raise GridError(f"h1_loss needs a periodic box grid (spectral gradients), got a {grid.kind!r} grid")
    lengths = grid.lengths if grid is not None else (1.0,) * (pred.ndim - 2)
    num = _h1_sq_norm(pred - true, lengths).sum(dim=1)
    if not relative:
        return num.sqrt().mean()
    den = _h1_sq_norm(true, lengths).sum(dim=1)
    return (num / (den + eps)).sqrt().mean()


def rollout_loss(
    model: Callable[[torch.Tensor], torch.Tensor],
    initial: torch.Tensor,
    targets: torch.Tensor,
    *,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = relative_l2_loss,
    weights: Sequence[float] | None = None,
) -> torch.Tensor:
    r"""Loss of an autoregressive rollout of ``model`` over ``k = targets.shape[1]`` steps.

    With :math:`u_0` = ``initial`` and :math:`u_j = \mathrm{model}(u_{j-1})`,

    .. math:: L = \frac{\sum_{j=1}^k w_j \, \mathrm{loss}(u_j, \mathrm{targets}[:, j-1])}{\sum_j w_j},

    the plain mean over steps when ``weights`` is None. Gradients flow through the whole rollout
    (backpropagation through time: memory grows linearly in ``k``), which trains the model on its own
    predictions, as in autoregressive forecasting (e.g. FourCastNet, Pathak et al. 2022, arXiv:2202.11214).

    Args:
        model: maps a state ``(batch, channel, *space)`` to the next state of the same shape.
        initial: ``(batch, channel, *space)``.
        targets: ``(batch, k, channel, *space)``, the states after 1, ..., k steps.
        loss: per-step loss ``(pred, true) -> scalar``; use ``functools.partial`` to pass it a grid.
        weights: ``k`` non-negative step weights with a positive sum.
    """
    if targets.ndim != initial.ndim + 1 or targets.shape[:1] + targets.shape[2:] != initial.shape:
        raise DataError(
            f"targets must be (batch, k, *initial.shape[1:]) for initial {tuple(initial.shape)}, "
            f"got {tuple(targets.shape)}"
        )
    steps = targets.shape[1]
    if steps < 1:
        raise DataError("targets hold no steps (targets.shape[1] == 0)")
    if weights is None:
        weights = [1.0] * steps
    weights = [float(w) for w in weights]
    if len(weights) != steps:
        raise ConfigError(f"weights must have one entry per step ({steps}), got {len(weights)}")
    if any(not (w >= 0 and math.isfinite(w)) for w in weights) or sum(weights) <= 0:
        raise ConfigError(f"weights must be finite, non-negative and not all zero, got {weights}")
    last = max(j for j, w in enumerate(weights) if w > 0)  # later steps weigh nothing: not run
    state, total = initial, 0.0
    for j in range(last + 1):
        state = model(state)
        if weights[j] > 0:
            total = total + weights[j] * loss(state, targets[:, j])
    return total / sum(weights)
