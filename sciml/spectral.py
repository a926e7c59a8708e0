"""Fourier helpers for periodic fields: wavenumbers and band-limited resampling.

Fields are real tensors whose last ``d`` dims (``d`` = 1 or 2) are periodic and uniformly sampled.
"""

from __future__ import annotations

import math

import torch

__all__ = ["wavenumbers", "spectral_resample"]


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
