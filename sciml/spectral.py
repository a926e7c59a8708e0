"""Fourier helpers for periodic fields: wavenumbers, band-limited resampling and isotropic energy spectra.

Fields are real tensors whose last ``d`` dims (``d`` = 1 or 2) are periodic and uniformly sampled; the
spectra also take fields on the sphere (spherical-harmonic degrees, through torch-harmonics).
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from .grids import Grid

__all__ = ["wavenumbers", "spectral_resample", "isotropic_spectrum", "sphere_degrees"]


def wavenumbers(n: int, length: float = 1.0, *, real: bool = False, dtype=torch.float64, device=None) -> torch.Tensor:
    """Angular wavenumbers ``2 pi k / L`` of an ``n``-point periodic axis, in FFT order.

    ``real=True`` gives the ``n // 2 + 1`` non-negative ones of ``rfft``.
    """
    freq = torch.fft.rfftfreq if real else torch.fft.fftfreq
    k = freq(n, d=1.0 / n, dtype=torch.float64)  # integers, exact; scale in float64 before any cast
    return (2 * math.pi / length * k).to(dtype=dtype, device=device)


def spectral_resample(field: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Band-limited (Fourier) resampling of periodic fields onto another uniform grid.

    Keeps every mode with ``|k_i| < min(n_i, m_i) / 2`` exactly and drops the rest, including the
    ambiguous Nyquist modes, so downsampling is exact truncation of the Fourier series and upsampling
    is exact trigonometric interpolation of a band-limited field.

    Args:
        field: real tensor ``(..., *space)`` with ``len(space) == len(shape)`` in {1, 2}.
        shape: target spatial shape.

    Returns:
        Tensor ``(..., *shape)`` of the same dtype.
    """
    d = len(shape)
    if d not in (1, 2):
        raise ValueError(f"spectral_resample supports 1-D and 2-D fields, got target shape {shape}")
    if field.ndim < d:
        raise ValueError(f"field with shape {tuple(field.shape)} has fewer than {d} spatial dims")
    source = tuple(field.shape[-d:])
    if source == tuple(shape):
        return field
    spectrum = torch.fft.rfftn(field, dim=tuple(range(-d, 0)), norm="forward")
    out = spectrum.new_zeros((*field.shape[:-d], *shape[:-1], shape[-1] // 2 + 1))
    kx = (min(source[-1], shape[-1]) - 1) // 2  # kept non-negative modes along the last (rfft) dim
    if d == 1:
        out[..., : kx + 1] = spectrum[..., : kx + 1]
    else:
        ky = (min(source[0], shape[0]) - 1) // 2
        out[..., : ky + 1, : kx + 1] = spectrum[..., : ky + 1, : kx + 1]
        if ky > 0:
            out[..., -ky:, : kx + 1] = spectrum[..., -ky:, : kx + 1]
    return torch.fft.irfftn(out, s=tuple(shape), dim=tuple(range(-d, 0)), norm="forward")


@functools.lru_cache(maxsize=8)
def _sht(nlat: int, nlon: int, lmax: int, nodes: str):
    from ._optional import require_torch_harmonics

    require_torch_harmonics("energy_spectrum on the sphere")
    import torch_harmonics as th

    return th.RealSHT(nlat, nlon, lmax=lmax, mmax=lmax, grid=nodes, norm="ortho").double()


def sphere_degrees(grid: Grid) -> int:
    """The number ``L`` of degrees ``l < L`` that the transforms resolve exactly on a ``"latlon"`` grid.

    ``L = min(n_lat, (n_lon + 1) // 2)`` on Gauss-Legendre nodes, ``min((n_lat + 1) // 2, (n_lon + 1) // 2)``
    on equiangular ones. The forward transform integrates ``f Y_l^m`` of degree up to ``2 (L - 1)`` in
    ``sin(lat)`` and in ``e^{i lon}``: Gauss-Legendre is exact for degree ``< 2 n_lat``, Clenshaw-Curtis
    for ``< n_lat``, the longitude sum for ``|m| < n_lon`` (as :func:`sciml.models.sfno.least_points`).
    """
    nlat, nlon = grid.shape
    return min(nlat if grid.nodes == "legendre-gauss" else (nlat + 1) // 2, (nlon + 1) // 2)


def _sphere_spectrum(values: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    lmax = sphere_degrees(grid)
    coeffs = _sht(*grid.shape, lmax, grid.nodes)(torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)))
    power = coeffs.abs() ** 2  # (..., l, m), m >= 0
    power = (power[..., 0] + 2 * power[..., 1:].sum(dim=-1)) / (4 * math.pi)
    return power.numpy(), np.arange(lmax)


def _box_spectrum(values: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    d = grid.ndim
    power = np.abs(np.fft.fftn(values, axes=tuple(range(-d, 0)), norm="forward")) ** 2
    k = np.meshgrid(*[2 * math.pi * np.fft.fftfreq(n, 1.0 / n) / length for n, length in zip(grid.shape, grid.lengths)],
                    indexing="ij")
    dk = min(2 * math.pi / length for length in grid.lengths)
    shell = np.rint(np.sqrt(sum(ki**2 for ki in k)) / dk).astype(np.int64).ravel()
    order = np.argsort(shell, kind="stable")
    starts = np.flatnonzero(np.diff(shell[order], prepend=-1))
    flat = power.reshape(*power.shape[:-d], -1)[..., order]
    out = np.zeros((*power.shape[:-d], shell.max() + 1))
    out[..., shell[order][starts]] = np.add.reduceat(flat, starts, axis=-1)
    return out, np.arange(shell.max() + 1) * dk


def isotropic_spectrum(values: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Power per total wavenumber of fields ``values`` ``(..., *grid.shape)``: ``(power (..., K), axis (K,))``.

    On a ``"latlon"`` grid, per spherical-harmonic degree ``l < sphere_degrees(grid)`` (``axis`` the degrees),
    ``P(l) = (|a_l0|^2 + 2 sum_m |a_lm|^2) / (4 pi)`` with torch-harmonics' orthonormal ``RealSHT``; on a
    periodic box, the sum of ``|f_k|^2`` (FFT with ``norm="forward"``) over shells of ``|k|`` rounded to
    multiples of ``2 pi / max(L)`` (``axis`` the angular wavenumbers). Both sum to the (area-)mean of
    ``f^2`` for resolved fields (Parseval). The xarray form, with its checks, is
    :func:`sciml.forecast.scores.energy_spectrum`.
    """
    if grid.kind == "latlon":
        return _sphere_spectrum(values, grid)
    if grid.kind == "bounded":
        raise ValueError("a bounded (non-periodic) box has no Fourier spectrum of its own; use a periodic box or the sphere")
    return _box_spectrum(values, grid)
