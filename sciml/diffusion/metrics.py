"""Metrics of generated fields: spectra, point-value distributions, moments, two-point correlation, MMD, and the
ensemble scores of super-resolution.

Fields are torch tensors ``(n, channels, *space)`` or ``(n, *space)`` on a periodic ``Grid.box`` (1-D or 2-D);
``samples`` and ``data`` may hold different numbers of fields but lie on the same grid. Everything is computed in
float64 and returned as Python floats or float64 tensors.

* :func:`isotropic_spectrum`: ``E(k) = sum_{|k'| in shell k} <|u_k'|^2>``, the energy per integer shell of the
  wavenumber ``|k|`` (in cycles per box length, ``k'`` the integer mode; ``sum_k E(k) = <u^2>``, Parseval with the
  ``norm="forward"`` coefficients), averaged over the fields. :func:`spectrum_error`: ``E_s / E_d - 1`` per band of
  shells (Pope 2000, "Turbulent flows", sec. 6.5 for the isotropic shell spectrum).
* :func:`wasserstein_1d`: the 1-Wasserstein distance between the empirical distributions of all point values,
  ``W_1 = int |F_s(v) - F_d(v)| dv`` (exact for empirical measures; Villani 2009, "Optimal transport", ch. 6).
* :func:`moment_errors`: relative L2 errors of the pointwise mean and standard deviation fields and of the
  two-point correlation ``rho(r) = <u'(x) u'(x + r)> / <u'^2>`` (``u' = u - mean``), estimated over every periodic
  offset ``r`` by FFT.
* :func:`mmd`: the unbiased squared maximum mean discrepancy with a Gaussian kernel ``exp(-|u - v|^2 / (2 h^2))``,
  ``|.|`` the L2 norm over the box (so it does not grow with the resolution), ``h`` the median pairwise distance
  of the pooled fields by default (Gretton et al. 2012, "A kernel two-sample test", JMLR 13, eq. 3).
* :func:`ensemble_scores`: for an ensemble per case against the truth, the relative L2 of the ensemble mean, the
  fair CRPS and the spread/skill ratio, the latter two from :mod:`sciml.forecast.scores` (one definition of each
  score in the library).
"""

from __future__ import annotations

import math
import numbers

import torch

from ..errors import ConfigError, DataError
from ..grids import Grid

__all__ = [
    "ensemble_scores",
    "isotropic_spectrum",
    "mmd",
    "moment_errors",
    "spectrum_error",
    "two_point_correlation",
    "wasserstein_1d",
]


def _fields(name: str, x, grid: Grid | None) -> tuple[torch.Tensor, Grid]:
    """``x`` as float64 ``(n, channels, *space)`` and its grid (a unit box of its shape by default)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise DataError(f"{name} must be a real floating tensor (n, [channels,] *space), got "
                        f"{x.dtype if isinstance(x, torch.Tensor) else type(x).__name__}")
    if grid is not None and (not isinstance(grid, Grid) or grid.kind != "box"):
        raise ConfigError(f"the metrics take a periodic Grid.box, got {grid!r}")
    d = grid.ndim if grid is not None else (2 if x.ndim in (3, 4) else 1)
    if x.ndim == d + 1:
        x = x[:, None]
    if x.ndim != d + 2 or x.shape[0] < 1:
        raise DataError(f"{name} must be (n, [channels,] *space) with {d} spatial dims, got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise DataError(f"{name} has NaN or infinite values")
    grid = grid if grid is not None else Grid.box(*x.shape[2:])
    if tuple(x.shape[2:]) != tuple(grid.shape):
        raise DataError(f"{name} lies on {tuple(x.shape[2:])}, the grid is {grid.shape}")
    return x.detach().to(torch.float64).cpu(), grid


def _pair(samples, data, grid):
    s, grid = _fields("samples", samples, grid)
    d, _ = _fields("data", data, grid)
    if s.shape[1:] != d.shape[1:]:
        raise DataError(f"samples {tuple(s.shape[1:])} and data {tuple(d.shape[1:])} differ in channels or grid")
    return s, d, grid


def isotropic_spectrum(fields: torch.Tensor, *, grid: Grid | None = None) -> torch.Tensor:
    """Energy per integer wavenumber shell, averaged over fields: ``(channels, n_shells)`` float64.

    ``E_c(k) = mean_i sum_{round(|k'|) = k} |u_{i,c,k'}|^2``, ``u_k'`` the Fourier coefficients (``norm="forward"``)
    at the integer modes ``k'`` (cycles per box length; on a non-square box each axis in its own), ``k = 0 ..
    round(max |k'|)``; ``sum_k E_c(k)`` is the mean of ``u^2`` over the box. ``fields`` ``(n, [channels,] *space)``.
    """
    x, grid = _fields("fields", fields, grid)
    dims = tuple(range(2, x.ndim))
    power = torch.fft.fftn(x, dim=dims, norm="forward").abs().pow(2).mean(dim=0)  # (channels, *space)
    freqs = [torch.fft.fftfreq(n, 1.0 / n, dtype=torch.float64) for n in grid.shape]
    radius = torch.stack(torch.meshgrid(*freqs, indexing="ij")).pow(2).sum(0).sqrt().round().long().flatten()
    out = torch.zeros(x.shape[1], int(radius.max()) + 1, dtype=torch.float64)
    return out.index_add_(1, radius, power.flatten(1))


def spectrum_error(samples: torch.Tensor, data: torch.Tensor, *, grid: Grid | None = None,
                   bands: list[tuple[int, int]] | None = None) -> list[dict]:
    """The ratio of the samples' isotropic spectrum to the data's, per band of shells, minus one.

    Args:
        samples, data: ``(n, [channels,] *space)`` on the same grid.
        bands: ``[(k_lo, k_hi), ...]`` half-open ranges of shells ``k_lo <= k < k_hi`` (cycles per box length);
            default octaves ``[1, 2), [2, 4), ...`` up to the largest shell the grid holds in every direction
            (``min(n) / 2``).

    Returns:
        One dict per band: ``{"band": (k_lo, k_hi), "samples": E_s, "data": E_d, "error": E_s / E_d - 1}``, the
        energies summed over the band's shells and the channels. Identical fields give errors of exactly 0.
    """
    s, d, grid = _pair(samples, data, grid)
    es, ed = isotropic_spectrum(s, grid=grid).sum(0), isotropic_spectrum(d, grid=grid).sum(0)
    if bands is None:
        top, bands, k = min(grid.shape) // 2, [], 1
        while k < top:
            bands.append((k, min(2 * k, top)))
            k *= 2
    out = []
    for lo, hi in bands:
        if not (isinstance(lo, numbers.Integral) and isinstance(hi, numbers.Integral) and 0 <= lo < hi <= ed.numel()):
            raise ConfigError(f"band {(lo, hi)!r} must be integers 0 <= k_lo < k_hi <= {ed.numel()} (shells of this grid)")
        a, b = float(es[lo:hi].sum()), float(ed[lo:hi].sum())
        out.append({"band": (int(lo), int(hi)), "samples": a, "data": b, "error": a / b - 1 if b > 0 else math.inf})
    return out


def wasserstein_1d(samples: torch.Tensor, data: torch.Tensor) -> float:
    """``W_1`` between the empirical distributions of all values of ``samples`` and of ``data`` (any shapes).

    ``W_1 = int |F_s(v) - F_d(v)| dv``, evaluated exactly on the merged sorted values (the two CDFs are step
    functions). Shifting every value by ``c`` gives ``|c|``; identical values give 0. Units of the fields.
    """
    a = _values("samples", samples)
    b = _values("data", data)
    merged, _ = torch.cat([a, b]).sort()
    widths = merged.diff()
    cdf_a = torch.searchsorted(a.sort().values, merged[:-1], right=True).to(torch.float64) / a.numel()
    cdf_b = torch.searchsorted(b.sort().values, merged[:-1], right=True).to(torch.float64) / b.numel()
    return float(((cdf_a - cdf_b).abs() * widths).sum())


def _values(name: str, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.numel() == 0:
        raise DataError(f"{name} must be a non-empty real floating tensor")
    if not bool(torch.isfinite(x).all()):
        raise DataError(f"{name} has NaN or infinite values")
    return x.detach().to(torch.float64).cpu().flatten()


def two_point_correlation(fields: torch.Tensor, *, grid: Grid | None = None) -> torch.Tensor:
    """``rho_c(r) = <u'(x) u'(x + r)> / <u'^2>`` at every periodic grid offset ``r``: ``(channels, *space)``.

    ``u' = u - mean`` (the mean field over the ``n`` fields, ``n >= 2``), ``<.>`` over the fields and the points
    ``x``; computed as ``irfft(|rfft u'|^2)``. ``rho(0) = 1``.
    """
    x, grid = _fields("fields", fields, grid)
    if x.shape[0] < 2:
        raise DataError("two_point_correlation needs at least 2 fields")
    dims = tuple(range(2, x.ndim))
    anomaly = x - x.mean(dim=0, keepdim=True)
    spectrum = torch.fft.rfftn(anomaly, dim=dims, norm="forward").abs().pow(2).mean(dim=0)
    covariance = torch.fft.irfftn(spectrum, s=grid.shape, dim=tuple(range(1, len(dims) + 1)), norm="forward")
    return covariance / covariance.flatten(1)[:, :1].view(-1, *([1] * len(dims)))


def moment_errors(samples: torch.Tensor, data: torch.Tensor, *, grid: Grid | None = None) -> dict[str, float]:
    """Relative L2 errors of the mean field, the standard-deviation field and the two-point correlation.

    ``mean``: ``|m_s - m_d| / |s_d|`` (the mean error relative to the data's standard deviation field, since the
    mean of a centred field is ~0); ``std``: ``|s_s - s_d| / |s_d|``; ``correlation``: ``|rho_s - rho_d| /
    |rho_d|`` over every offset (:func:`two_point_correlation`); ``|.|`` the L2 norm over channels and points. Each
    field set needs ``n >= 2``.
    """
    s, d, grid = _pair(samples, data, grid)
    if s.shape[0] < 2 or d.shape[0] < 2:
        raise DataError("moment_errors needs at least 2 samples and 2 data fields")
    sd = d.std(dim=0)
    rho_s, rho_d = two_point_correlation(s, grid=grid), two_point_correlation(d, grid=grid)
    return {"mean": float((s.mean(0) - d.mean(0)).norm() / sd.norm()),
            "std": float((s.std(dim=0) - sd).norm() / sd.norm()),
            "correlation": float((rho_s - rho_d).norm() / rho_d.norm())}


def mmd(samples: torch.Tensor, data: torch.Tensor, *, bandwidth: float | None = None,
        grid: Grid | None = None) -> float:
    """The unbiased squared MMD with a Gaussian kernel between two sets of fields (Gretton et al. 2012, eq. 3).

    ``MMD_u^2 = 1/(m(m-1)) sum_{i != j} k(s_i, s_j) + 1/(n(n-1)) sum_{i != j} k(d_i, d_j) - 2/(m n) sum_{i,j}
    k(s_i, d_j)``, ``k(u, v) = exp(-|u - v|^2 / (2 h^2))``, ``|u|^2`` the mean of ``u^2`` over channels and points.
    Its expectation is 0 when both sets come from one distribution (so it can be slightly negative).

    Args:
        samples, data: ``(m, [channels,] *space)``, ``(n, ...)``, ``m, n >= 2``.
        bandwidth: ``h`` in the units of the fields; default the median of the pooled pairwise distances.
    """
    s, d, _ = _pair(samples, data, grid)
    m, n = s.shape[0], d.shape[0]
    if m < 2 or n < 2:
        raise DataError("mmd needs at least 2 samples and 2 data fields")
    pooled = torch.cat([s, d]).flatten(1)
    distance2 = torch.cdist(pooled, pooled).pow(2) / pooled.shape[1]
    if bandwidth is None:
        upper = distance2[torch.triu_indices(m + n, m + n, 1).unbind()]
        h2 = float(upper.median())
        h2 = h2 if h2 > 0 else 1.0
    else:
        if isinstance(bandwidth, bool) or not isinstance(bandwidth, numbers.Real) or not (
                math.isfinite(bandwidth) and bandwidth > 0):
            raise ConfigError(f"bandwidth must be a finite number > 0, got {bandwidth!r}")
        h2 = float(bandwidth) ** 2
    kernel = torch.exp(-distance2 / (2 * h2))
    kss, kdd, ksd = kernel[:m, :m], kernel[m:, m:], kernel[:m, m:]
    within_s = (kss.sum() - kss.diagonal().sum()) / (m * (m - 1))
    within_d = (kdd.sum() - kdd.diagonal().sum()) / (n * (n - 1))
    return float(within_s + within_d - 2 * ksd.mean())


def ensemble_scores(members: torch.Tensor, truth: torch.Tensor, *, grid: Grid | None = None) -> dict[str, float]:
    """Scores of an ensemble per case against the truth (super-resolution).

    Args:
        members: ``(batch, members, [channels,] *space)``, ``members >= 2``.
        truth: ``(batch, [channels,] *space)`` on the same grid (the true fine-grid fields, never an upsampled
            coarse one).

    Returns:
        ``rel_l2``: mean over cases of ``|mean_m x - y| / |y|``; ``crps``: the fair CRPS
        (:func:`sciml.forecast.scores.crps`, area-weighted over the box, averaged over cases and channels);
        ``spread_skill``: :func:`sciml.forecast.scores.spread_skill` (corrected for the ensemble size), over all
        cases and channels; ``mae_of_mean``: the mean absolute error of the ensemble mean (what a deterministic
        model's MAE is compared with). Units of the fields for ``crps`` and ``mae_of_mean``.
    """
    import xarray as xr

    from ..forecast.scores import crps, spread_skill

    if not isinstance(members, torch.Tensor) or members.ndim < 3:
        raise DataError("members must be a tensor (batch, members, [channels,] *space)")
    b, k = members.shape[:2]
    y, grid = _fields("truth", truth, grid)
    x, _ = _fields("members", members.reshape(b * k, *members.shape[2:]), grid)
    x = x.view(b, k, *y.shape[1:])
    if y.shape[0] != b:
        raise DataError(f"members hold {b} cases, the truth {y.shape[0]}")
    if k < 2:
        raise DataError("ensemble_scores needs at least 2 members (a spread)")
    mean = x.mean(1)
    rel = float(((mean - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)).mean())
    space = list(grid.dims)
    coords = {dim: values for dim, values in grid.coords().items()}
    ens = xr.DataArray(x.numpy(), dims=("sample", "member", "channel", *space), coords=coords, name="field")
    tru = xr.DataArray(y.numpy(), dims=("sample", "channel", *space), coords=coords, name="field")
    score = float(crps(ens, tru, over=["sample", "channel"]))
    ratio = float(spread_skill(ens, tru, over=["sample", "channel"]))
    return {"rel_l2": rel, "crps": score, "spread_skill": ratio, "mae_of_mean": float((mean - y).abs().mean())}
