"""Gaussian random fields that are the same function at every resolution.

A field ``u ~ N(0, C)`` with covariance operator ``C = sigma^2 (-Laplacian + tau^2 I)^(-alpha)`` on the
periodic box is the Karhunen-Loeve series

    u(x) = Re sum_k c_k exp(2 pi i k.x / L),   c_k = a_k + i b_k,   a_k, b_k ~ N(0, lambda_k / |D|),
    lambda_k = sigma^2 (4 pi^2 |k / L|^2 + tau^2)^(-alpha),

which has covariance kernel ``sum_k lambda_k / |D| cos(2 pi k.(x - x') / L)`` as required. The
coefficients are drawn in shells of growing ``max_i |k_i|`` from one random stream per sample, so a grid
of size ``n`` consumes a prefix of the stream a grid of size ``2n`` consumes: **the same seed gives the
same Fourier modes up to the coarser grid's Nyquist frequency** (Nyquist modes themselves are never
used, being ambiguous on an even grid). Sample ``i`` of seed ``s`` does not depend on how many samples
were asked for. This is what makes zero-shot super-resolution checks honest: a coarse and a fine
initial condition from the same seed are the same continuous function up to the coarse band limit.

Defaults follow Li et al. (2021), "Fourier Neural Operator for Parametric PDEs": ``alpha=2.5, tau=7``
and ``sigma = tau^(alpha - d/2)``.

This function draws from numpy streams spawned from an integer seed, one sample at a time, as the solvers'
datasets need (their bytes depend on it). :class:`sciml.diffusion.GaussianRandomField` is the same
covariance (the eigenvalue formula below is shared) drawn in torch from a ``torch.Generator``, batched
on the device, with a band limit fixed by the noise, and on the sphere as well.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .grids import Grid, GridError

__all__ = ["gaussian_random_field"]


def _box_laplacian_eigenvalues(modes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Eigenvalues ``4 pi^2 |k / L|^2`` of ``-Laplacian`` on the periodic box for integer ``modes (count, d)``."""
    return 4 * math.pi**2 * np.sum((modes / lengths) ** 2, axis=1)


def _power_law_eigenvalues(mu: np.ndarray, *, alpha: float, tau: float, sigma: float) -> np.ndarray:
    """Eigenvalues ``sigma^2 (mu + tau^2)^(-alpha)`` of ``sigma^2 (-Laplacian + tau^2)^(-alpha)`` given those
    ``mu`` of ``-Laplacian`` (the box's from :func:`_box_laplacian_eigenvalues`, ``l (l + 1) / R^2`` on a sphere)."""
    return sigma**2 * (mu + tau**2) ** (-alpha)


def _shell_modes(m: int, ndim: int) -> np.ndarray:
    """Integer wavenumbers with ``max_i |k_i| == m`` in a fixed order; shape ``(count, ndim)``."""
    if m == 0:
        return np.zeros((1, ndim), dtype=np.int64)
    axis = np.arange(-m, m + 1)
    if ndim == 1:
        return np.array([[-m], [m]], dtype=np.int64)
    ky, kx = np.meshgrid(axis, axis, indexing="ij")
    on_shell = np.maximum(np.abs(ky), np.abs(kx)) == m
    return np.stack([ky[on_shell], kx[on_shell]], axis=-1).astype(np.int64)


def gaussian_random_field(
    grid: Grid,
    n_samples: int,
    *,
    seed: int,
    alpha: float = 2.5,
    tau: float = 7.0,
    sigma: float | None = None,
    mean_zero: bool = True,
    band_limit: int | None = None,
    first_sample: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw ``n_samples`` fields ``N(0, sigma^2 (-Laplacian + tau^2)^(-alpha))`` on a periodic box.

    Args:
        grid: a 1-D or 2-D periodic ``Grid.box``.
        n_samples: number of fields.
        seed: master seed; sample ``first_sample + i`` uses its own stream spawned from it.
        alpha: smoothness exponent (> d/2 for a field with finite variance).
        tau: inverse length scale.
        sigma: amplitude; default ``tau ** (alpha - d / 2)`` as in Li et al. (2021).
        mean_zero: drop the ``k = 0`` mode (required for vorticity on a periodic domain).
        band_limit: keep modes with ``max_i |k_i| <= band_limit`` whatever the grid, so the field is one
            fixed continuous function sampled at the grid points (a coarse grid sees it aliased, as a
            point sampling should). Default: everything below the grid's Nyquist frequency.
        first_sample: index of the first sample, so a dataset can be drawn in chunks.

    Returns:
        Tensor of shape ``(n_samples, *grid.shape)``.
    """
    if grid.kind != "box":
        raise GridError(f"gaussian_random_field needs a periodic box grid, got kind {grid.kind!r}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    d = grid.ndim
    if not (math.isfinite(alpha) and alpha > d / 2):
        raise ValueError(f"alpha must be finite and exceed d/2 = {d / 2} for a finite-variance field, got {alpha}")
    if not (math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be positive and finite, got {tau}")
    if sigma is not None and not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be positive and finite, got {sigma}")
    sigma = tau ** (alpha - d / 2) if sigma is None else sigma

    if band_limit is None:
        limits = np.array([(n - 1) // 2 for n in grid.shape])  # largest |k_i| below Nyquist
        eval_shape = grid.shape
    else:
        if band_limit < 0:
            raise ValueError(f"band_limit must be >= 0, got {band_limit}")
        limits = np.full(d, int(band_limit))
        # Evaluate on a grid fine enough to hold every mode, whose points include the requested ones.
        eval_shape = tuple(n * math.ceil((2 * band_limit + 1) / n) for n in grid.shape)
    lengths = np.array(grid.lengths)
    shells = [_shell_modes(m, d) for m in range(int(limits.max()) + 1)]
    modes = np.concatenate(shells)  # (n_modes, d) in draw order
    inside = np.all(np.abs(modes) <= limits, axis=1)
    kept = modes[inside]
    eigen = _power_law_eigenvalues(_box_laplacian_eigenvalues(kept, lengths), alpha=alpha, tau=tau, sigma=sigma)
    std = np.sqrt(eigen / np.prod(lengths))
    if mean_zero:
        std[np.all(kept == 0, axis=1)] = 0.0

    coeffs = np.empty((n_samples, kept.shape[0]), dtype=np.complex128)
    for i in range(n_samples):
        stream = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(first_sample + i,)))
        draws = np.concatenate([stream.standard_normal((len(shell), 2)) for shell in shells])  # shell by shell
        draws = draws[inside]
        coeffs[i] = (draws[:, 0] + 1j * draws[:, 1]) * std

    spectrum = np.zeros((n_samples, *eval_shape), dtype=np.complex128)
    index = tuple(kept[:, j] % eval_shape[j] for j in range(d))
    spectrum[(slice(None), *index)] = coeffs
    axes = tuple(range(1, d + 1))
    field = np.real(np.fft.ifftn(spectrum, axes=axes)) * np.prod(eval_shape)
    stride = tuple(slice(None, None, m // n) for m, n in zip(eval_shape, grid.shape))
    return torch.from_numpy(np.ascontiguousarray(field[(slice(None), *stride)])).to(dtype=dtype, device=device)
