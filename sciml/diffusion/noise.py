"""Trace-class Gaussian noise on functions, drawn in torch from one ``torch.Generator``.

Function-space diffusion corrupts a field with Gaussian noise whose covariance ``C`` is trace class:
white noise has no limit as the grid is refined (its pointwise variance grows with the number of points),
while a trace-class ``C`` defines one Gaussian measure on functions, so a model trained at one resolution
sees the same noise at every other (Kerrigan, Ley & Smyth 2023, "Diffusion generative models in infinite
dimensions", AISTATS; Lim et al. 2023, "Score-based diffusion models in function space"). Here
``C = sigma^2 (-Laplacian + tau^2)^(-alpha)`` (:class:`GaussianRandomField`) or the Matérn covariance
(:class:`MaternField`), on the periodic box and on the unit sphere, or on the box the data's own
per-mode spectrum with a fitted power-law tail (:class:`SpectrumMatchedField`), sampled by the Karhunen-Loève series
(Lord, Powell & Shardlow 2014, "An Introduction to Computational Stochastic PDEs", ch. 7; on the sphere
Lang & Schwab 2015, "Isotropic Gaussian random fields on the sphere", Ann. Appl. Probab. 25)

    u = sum_j sqrt(lambda_j) xi_j phi_j,   xi_j ~ N(0, 1) independent,

with ``(lambda_j, phi_j)`` the eigenpairs of ``C``, kept up to a **band limit** ``B`` that belongs to the noise,
not to the grid.

**Box** ``[0, L_1) x ... x [0, L_d)``, ``d`` = 1 or 2, ``|D| = prod L_i``: the field is the Fourier series
``u(x) = sum_k u_k exp(2 pi i k.x / L)`` over the integer ``k`` with ``max_i |k_i| <= B``, Hermitian
(``u_{-k} = conj(u_k)``), ``E|u_k|^2 = lambda_k / |D|`` (``Re`` and ``Im`` each half of it, ``u_0`` real),
``lambda_k = sigma^2 (4 pi^2 |k / L|^2 + tau^2)^(-alpha)``: covariance kernel
``sum_k lambda_k / |D| exp(2 pi i k.(x - x') / L)``, pointwise variance ``sum_k lambda_k / |D|``. As in
:func:`sciml.gaussian_random_field` (whose eigenvalue formula this shares), ``u_k = (c_k + conj(c_{-k})) / 2``
from ``c_k = (a_k + i b_k) sqrt(lambda_k / |D|)``, two standard normals per ``k`` of the square
``[-B, B]^d`` (so twice the normals strictly needed, and no case for ``k = 0``).

**Sphere** (``Grid.latlon``; the unit sphere of its quadrature, ``Delta`` the Laplacian of the sphere of
radius ``R``, eigenvalues ``-l (l + 1) / R^2``): the real series
``u = sum_{l <= B} [a_l0 Y_l0 + 2 sum_{0 < m <= l} Re(a_lm Y_lm)]`` in torch-harmonics' orthonormal complex
harmonics ``Y_lm = P_lm(cos theta) e^{i m lon}`` (``norm="ortho"``, no Condon-Shortley phase), i.e. the
coefficients ``(l, m)`` that ``RealSHT`` returns and ``InverseRealSHT`` takes. The real orthonormal basis is
``Y_l0, sqrt(2) P_lm cos(m lon), sqrt(2) P_lm sin(m lon)``, so ``a_l0 ~ N(0, lambda_l)`` (real) and
``Re a_lm, Im a_lm ~ N(0, lambda_l / 2)`` for ``m > 0``: ``E|a_lm|^2 = lambda_l`` for every ``m <= l`` and, by
the addition theorem, the pointwise variance is ``sum_l (2 l + 1) / (4 pi) lambda_l`` at every point,
``lambda_l = sigma^2 (l (l + 1) / R^2 + tau^2)^(-alpha)``.

**The same generator state gives the same function on every grid.** The normals are one
``torch.randn((n, P), generator=g, dtype=float64)`` whose size depends only on the band limit and ``d``, in a
fixed order (``k`` in C order over ``[-B, B]^d``; ``(l, m)`` over the square ``(B + 1)^2``, ``m > l`` unused),
and the series is then *evaluated at the grid's nodes*: on the box an inverse FFT on the smallest multiple
``M`` of each grid size with ``M > 2 B`` (so every mode is represented and no Nyquist mode is used), then
every ``M / n``-th point; on the sphere the Legendre synthesis at the grid's latitudes (exact at any node
for any degree) and the same longitude oversampling. **A grid that cannot resolve the band limit sees the
function aliased, exactly as point sampling does; nothing is refused** (:meth:`resolves` tells whether a
grid resolves it; only then is the grid's mean the function's mean, and its FFT or SHT the coefficients).
Grids that share points agree there up to rounding; a different ``band_limit`` is a different function.

**Randomness.** Sampling uses only the generator it is given (``generator=None``: torch's global generator of
the device, as ``torch.randn`` does), so a training task that checkpoints its generator resumes bitwise.
The draw is made on the generator's device and moved to ``device``: a CPU generator gives the same noise on
CPU and GPU up to the transforms' rounding. ``P`` is padded to a multiple of 16, so on CPU (whose normal
sampler fills consecutive blocks of 16 from consecutive uniforms) a batch of ``n`` equals ``n`` draws of one
sample from the same generator, and leaves it in the same state. On CUDA the batch is one Philox launch,
and the relation that holds is only: the same generator state and the same ``n`` give the same samples.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..errors import ConfigError, GridError
from ..grids import Grid
from ..random_fields import _box_laplacian_eigenvalues, _power_law_eigenvalues

__all__ = ["GaussianRandomField", "MaternField", "SpectrumMatchedField", "synthesize"]

#: torch's CPU normal sampler fills blocks of this many values from consecutive uniforms.
_BLOCK = 16
#: Degrees summed exactly before the integral tail in the Matérn normalisation on the sphere.
_MATERN_SUM_DEGREES = 20_000


# ---------------------------------------------------------------------------------------------- checks
def _number(owner: str, name: str, value, *, low: float = 0.0) -> float:
    """``value`` as a finite float ``> low``, else a one-line :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{owner}: {name} must be a number, got {type(value).__name__} {value!r}")
    if not (math.isfinite(value) and value > low):
        raise ConfigError(f"{owner}: {name} must be finite and > {low:g}, got {value!r}")
    return float(value)


def _check_common(owner: str, band_limit, mean_zero, radius) -> None:
    if isinstance(band_limit, bool) or not isinstance(band_limit, (int, np.integer)) or band_limit < 1:
        raise ConfigError(f"{owner}: band_limit must be an integer >= 1 (the largest |k_i| or degree l kept), "
                          f"got {band_limit!r}")
    if not isinstance(mean_zero, (bool, np.bool_)):
        raise ConfigError(f"{owner}: mean_zero must be True or False, got {mean_zero!r}")
    _number(owner, "radius", radius)


def _domain(grid: Grid) -> tuple:
    """``("box", d, lengths)`` or ``("sphere", 2, None)``: all a noise reads from a grid (not its resolution)."""
    if not isinstance(grid, Grid):
        raise GridError(f"noise needs a sciml Grid (Grid.box or Grid.latlon), got {type(grid).__name__}")
    if grid.kind == "box":
        return ("box", grid.ndim, tuple(grid.lengths))
    if grid.kind == "latlon":
        return ("sphere", 2, None)
    raise GridError(f"noise needs a periodic Grid.box (1-D or 2-D) or a Grid.latlon sphere, got a {grid.kind!r} "
                    f"grid {grid.shape}, which is not periodic; sample on Grid.box with its lengths and restrict instead")


def _count(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"the number of samples n must be an integer >= 1, got {n!r}")
    return int(n)


def _device(device, generator) -> torch.device:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ConfigError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if device is not None:
        return torch.device(device)
    return generator.device if generator is not None else torch.get_default_device()


def _real_dtype(dtype) -> torch.dtype:
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ConfigError(f"dtype must be a real floating torch.dtype, got {dtype!r}")
    return dtype


def _device_key(device: torch.device) -> str:
    """A cache key naming one device (``"cuda"`` is the current CUDA device)."""
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return str(device)


# ---------------------------------------------------------------------------------------------- noises
class _SpectralNoise:
    """What every noise here shares; a subclass says which eigenvalues its covariance has on a grid's domain (a power
    law ``sigma^2 (-Delta + tau^2)^(-alpha)`` through :meth:`_power_law`, or its own :meth:`_eigenvalues`) and holds
    ``band_limit``, ``mean_zero`` and ``radius``."""

    band_limit: int
    mean_zero: bool
    radius: float

    def _power_law(self, domain: tuple) -> tuple[float, float, float]:  # (alpha, tau, sigma)
        raise NotImplementedError

    # ---------------------------------------------------------------- spectrum (numpy float64, CPU)
    def _eigenvalues(self, domain: tuple) -> np.ndarray:
        alpha, tau, sigma = self._power_law(domain)
        kind, d, lengths = domain
        b = int(self.band_limit)
        if kind == "box":
            axis = np.arange(-b, b + 1)
            modes = np.stack([k.ravel() for k in np.meshgrid(*([axis] * d), indexing="ij")], axis=-1)
            mu = _box_laplacian_eigenvalues(modes, np.array(lengths))
            eigen = _power_law_eigenvalues(mu, alpha=alpha, tau=tau, sigma=sigma).reshape((2 * b + 1,) * d)
            if self.mean_zero:
                eigen[(b,) * d] = 0.0
        else:
            degree = np.arange(b + 1, dtype=np.float64)
            eigen = _power_law_eigenvalues(degree * (degree + 1) / self.radius**2, alpha=alpha, tau=tau, sigma=sigma)
            if self.mean_zero:
                eigen[0] = 0.0
        return eigen

    def eigenvalues(self, grid: Grid, *, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
        """Eigenvalues of the covariance of what :meth:`sample` draws on ``grid``'s domain (band-limited, and 0 for
        the constant when ``mean_zero``); the grid's resolution does not matter.

        Returns:
            Box: ``(2 B + 1,) * d``, ``lambda_k`` at index ``k + B`` (``k = -B..B`` per axis, dims as the grid's).
            Sphere: ``(B + 1,)``, ``lambda_l`` per degree (multiplicity ``2 l + 1``).
        """
        return torch.from_numpy(self._eigenvalues(_domain(grid))).to(dtype=dtype, device=device)

    def spectral_variance(self, grid: Grid, *, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
        """``E|c|^2`` of each coefficient :meth:`coefficients` returns, in its layout.

        Box ``(2 B + 1,) * d``: ``lambda_k / |D|`` (``Re``/``Im`` each half of it, ``k = 0`` real). Sphere
        ``(B + 1, B + 1)`` over ``(l, m)``: ``lambda_l`` for ``m <= l`` (``Re``/``Im`` each half for ``m > 0``;
        ``m = 0`` real), 0 for ``m > l``.
        """
        domain = _domain(grid)
        eigen = self._eigenvalues(domain)
        if domain[0] == "box":
            value = eigen / math.prod(domain[2])
        else:
            value = np.tril(np.repeat(eigen[:, None], eigen.size, axis=1))
        return torch.from_numpy(value).to(dtype=dtype, device=device)

    def pointwise_variance(self, grid: Grid) -> float:
        """``E u(x)^2`` at every point (the trace formula): ``sum_k lambda_k / |D|`` on the box,
        ``sum_l (2 l + 1) / (4 pi) lambda_l`` on the sphere (the sampled field is stationary/isotropic)."""
        domain = _domain(grid)
        eigen = self._eigenvalues(domain)
        if domain[0] == "box":
            return float(eigen.sum() / math.prod(domain[2]))
        degree = np.arange(eigen.size)
        return float(np.sum((2 * degree + 1) / (4 * math.pi) * eigen))

    def resolves(self, grid: Grid) -> bool:
        """Whether ``grid`` holds every mode of the band limit unaliased: ``2 B < n`` per axis of a box; on a sphere
        ``2 B < nlon`` and the grid's forward SHT exact to degree ``B`` (``2 B < nlat`` on ``"equiangular"``
        nodes, Clenshaw-Curtis; ``B < nlat`` on ``"legendre-gauss"``). Sampling works on any grid either way."""
        kind = _domain(grid)[0]
        b = int(self.band_limit)
        if kind == "box":
            return all(2 * b < n for n in grid.shape)
        nlat, nlon = grid.shape
        return 2 * b < nlon and (b < nlat if grid.nodes == "legendre-gauss" else 2 * b < nlat)

    def normals_per_sample(self, grid: Grid) -> int:
        """How many float64 standard normals one sample takes from the generator (a multiple of 16):
        ``2 (2 B + 1)^d`` on the box, ``2 (B + 1)^2`` on the sphere, rounded up."""
        return _padded(self._used_normals(_domain(grid)))

    def _used_normals(self, domain: tuple) -> int:
        b = int(self.band_limit)
        return 2 * (2 * b + 1) ** domain[1] if domain[0] == "box" else 2 * (b + 1) ** 2

    # ---------------------------------------------------------------- drawing
    def coefficients(self, grid: Grid, n: int, *, generator: torch.Generator | None = None,
                     device: torch.device | str | None = None) -> torch.Tensor:
        """Draw ``n`` functions as their spectral coefficients, complex128 on ``device``.

        Only ``grid``'s domain is read (box lengths and dimension, or the sphere); evaluate the functions on any
        grid of that domain with :func:`synthesize` (``sample`` is ``synthesize(coefficients(...), grid)``).

        Args:
            grid: a periodic ``Grid.box`` (1-D or 2-D) or a ``Grid.latlon``.
            n: number of samples, >= 1.
            generator: the only source of randomness (``None``: torch's global generator of the device); the
                draw is made on its device.
            device: where the result lives; default the generator's device (the default device without one).

        Returns:
            Box ``(n, 2 B + 1[, 2 B + 1])``: ``u_k`` at index ``k + B``, Hermitian. Sphere ``(n, B + 1, B + 1)``:
            ``a_lm`` over ``(l, m)``, 0 for ``m > l``, real at ``m = 0`` (torch-harmonics' layout).
        """
        domain = _domain(grid)
        n = _count(n)
        device = _device(device, generator)
        _scales(self, domain, _device_key(device))  # refuse a bad covariance before the generator advances
        used = self._used_normals(domain)
        draw_device = generator.device if generator is not None else device
        normals = torch.randn((n, _padded(used)), generator=generator, dtype=torch.float64, device=draw_device)
        return self._from_normals(normals[:, :used].to(device), domain)

    def _from_normals(self, normals: torch.Tensor, domain: tuple) -> torch.Tensor:
        """The coefficients for standard normals ``(n, used)`` float64 (the linear map ``C^(1/2)`` in the basis)."""
        n, b = normals.shape[0], int(self.band_limit)
        scales = _scales(self, domain, _device_key(normals.device))
        if domain[0] == "box":
            size = 2 * b + 1
            xi = normals.reshape(n, *([size] * domain[1]), 2)
            c = torch.complex(xi[..., 0], xi[..., 1]) * scales[0]
            dims = tuple(range(1, domain[1] + 1))
            return 0.5 * (c + c.flip(dims).conj())  # Hermitian: the coefficients of Re sum_k c_k e_k
        xi = normals.reshape(n, b + 1, b + 1, 2)
        return torch.complex(xi[..., 0] * scales[0], xi[..., 1] * scales[1])

    def sample(self, grid: Grid, n: int, *, generator: torch.Generator | None = None,
               device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Draw ``n`` fields on ``grid``: ``(n, *grid.shape)``, latitude ascending on a sphere.

        The same generator state gives the same function on every grid of the domain (exactly the values of the
        series at the grid's nodes, aliased where the grid is coarser than the band limit); see the module doc.
        ``generator`` and ``device`` as in :meth:`coefficients`; ``dtype`` of the result (default torch's
        default dtype): the normals are float64 whatever it is, the synthesis runs in float64 for float64 and in
        float32 otherwise, so a float32 sample is the float64 one up to float32 rounding.
        """
        dtype = _real_dtype(dtype)
        return synthesize(self.coefficients(grid, n, generator=generator, device=device), grid, dtype=dtype)


@dataclass(frozen=True)
class GaussianRandomField(_SpectralNoise):
    """Gaussian noise ``N(0, sigma^2 (-Delta + tau^2)^(-alpha))`` on the periodic box or the sphere.

    Trace class (finite pointwise variance however fine the grid) for ``alpha > d / 2``: ``d`` = 1 on a 1-D box,
    2 on a 2-D box and on the sphere; checked when a grid is given. Larger ``alpha`` is smoother, ``1 / tau`` the
    correlation length.

    Attributes:
        alpha: smoothness exponent, ``> d / 2``.
        tau: inverse length scale, ``> 0``, in the inverse units of the box lengths (of ``radius`` on a sphere).
        sigma: amplitude, ``> 0``; ``None``: ``tau ** (alpha - d / 2)`` as :func:`sciml.gaussian_random_field`
            (Li et al. 2021), which keeps the variance of order one as ``tau`` changes.
        band_limit: ``B``, the largest ``|k_i|`` on the box or degree ``l`` on the sphere kept; the function drawn
            from a generator state is fixed by it, whatever the grid. 31 is resolved by 64-point boxes and by
            64-latitude spheres on either node set.
        mean_zero: drop the constant mode (``k = 0``, ``l = 0``); the draws are the same, so with the same
            generator state the field differs from the full one by a constant.
        radius: ``R`` of the sphere, whose Laplacian has eigenvalues ``-l (l + 1) / R^2`` (unused on boxes).
    """

    alpha: float = 2.5
    tau: float = 7.0
    sigma: float | None = None
    band_limit: int = 31
    mean_zero: bool = False
    radius: float = 1.0

    def __post_init__(self) -> None:
        owner = "GaussianRandomField"
        _number(owner, "alpha", self.alpha, low=0.5)  # d/2 >= 1/2 on every domain; the grid's d is checked later
        _number(owner, "tau", self.tau)
        if self.sigma is not None:
            _number(owner, "sigma", self.sigma)
        _check_common(owner, self.band_limit, self.mean_zero, self.radius)

    def _power_law(self, domain: tuple) -> tuple[float, float, float]:
        kind, d, _ = domain
        if not self.alpha > d / 2:
            where = f"{d}-D box" if kind == "box" else "sphere (d = 2)"
            raise ConfigError(f"GaussianRandomField: alpha={self.alpha:g} must exceed d/2 = {d / 2:g} on the {where} "
                              "for a trace-class covariance (finite variance at every resolution)")
        sigma = self.tau ** (self.alpha - d / 2) if self.sigma is None else self.sigma
        return float(self.alpha), float(self.tau), float(sigma)


@dataclass(frozen=True)
class MaternField(_SpectralNoise):
    """Gaussian noise with the Matérn covariance of smoothness ``nu``, length scale ``length_scale``, variance
    ``variance``, on the periodic box or the sphere: ``c (2 nu / length_scale^2 - Delta)^(-(nu + d / 2))``.

    That is :class:`GaussianRandomField` with ``alpha = nu + d / 2``, ``tau = sqrt(2 nu) / length_scale`` (trace
    class for every ``nu > 0``) and the amplitude ``c = sigma^2`` set by the domain:

    * **Box**: the eigenvalues are the Matérn spectral density on ``R^d`` at the box's wavenumbers,
      ``lambda_k = S(k / L)``, ``S(s) = variance 2^d pi^(d/2) Gamma(nu + d/2) (2 nu)^nu / (Gamma(nu) l^(2 nu))
      (2 nu / l^2 + 4 pi^2 |s|^2)^(-(nu + d/2))`` (Rasmussen & Williams 2006, eq. 4.15), so by Poisson summation
      the covariance is the periodised Matérn kernel ``sum_n k(x - x' + n L)``: pointwise variance ``variance``
      plus the images' share (negligible for ``length_scale << L``) less the modes above the band limit.
    * **Sphere**: the SPDE definition of Lang & Schwab (2015) and Borovitskiy et al. (2020, "Matérn Gaussian
      processes on Riemannian manifolds"), with ``c`` such that the *untruncated* field has pointwise variance
      ``variance`` (``sum_l (2 l + 1) / (4 pi) lambda_l``, summed to degree 20000 plus the integral of the tail);
      ``length_scale`` is a geodesic length in the units of ``radius``.

    With ``mean_zero`` the constant mode is dropped after that normalisation, so the variance is less by its share.
    ``band_limit`` and ``radius`` as in :class:`GaussianRandomField`; :meth:`pointwise_variance` gives the
    variance of what is actually sampled.
    """

    nu: float = 1.5
    length_scale: float = 0.1
    variance: float = 1.0
    band_limit: int = 31
    mean_zero: bool = False
    radius: float = 1.0

    def __post_init__(self) -> None:
        owner = "MaternField"
        for name in ("nu", "length_scale", "variance"):
            _number(owner, name, getattr(self, name))
        _check_common(owner, self.band_limit, self.mean_zero, self.radius)

    def _power_law(self, domain: tuple) -> tuple[float, float, float]:
        kind, d, _ = domain
        nu, ell = float(self.nu), float(self.length_scale)
        alpha, tau = nu + d / 2, math.sqrt(2 * nu) / ell
        if kind == "box":
            log_amplitude = (d * math.log(2) + d / 2 * math.log(math.pi) + math.lgamma(alpha) - math.lgamma(nu)
                             + nu * math.log(2 * nu) - 2 * nu * math.log(ell))
            return alpha, tau, math.sqrt(self.variance) * math.exp(0.5 * log_amplitude)
        return alpha, tau, math.sqrt(self.variance / _sphere_variance(alpha, tau, float(self.radius)))


@dataclass(frozen=True)
class SpectrumMatchedField(_SpectralNoise):
    """Gaussian noise on the periodic box whose covariance is the data's: per-mode variances measured from fields,
    extended above the measured modes by a power law in the physical wavenumber.

    The coefficient variances ``E|u_k|^2`` (units of the field squared; ``lambda_k = |D| E|u_k|^2``) are

        E|u_k|^2 = variances[k]                    max_i |k_i| <= K   (the table, measured)
        E|u_k|^2 = tail_amplitude |k / L|^(-p)     K < max_i |k_i| <= B   (the tail, p = tail_exponent)

    with ``|k / L|`` the physical wavenumber in cycles per unit length, so the covariance is a function on the box,
    not on a grid: as for :class:`GaussianRandomField`, the same generator state gives the same function on every
    grid (the module doc), and a model trained at 64 x 64 with ``band_limit`` 127 sees the noise it is sampled with at
    256 x 256. Trace class for ``p > d``. Used as the corruption of a denoiser, the Gaussian part of the data is then
    the noise's (``E[x_0 | x_sigma]`` of Gaussian data with this covariance is ``c_skip x_sigma`` under the pointwise
    EDM preconditioning of :mod:`sciml.diffusion.model`), so the network learns only the non-Gaussian part and the
    residual noise at the smallest level is the same small fraction of the data in every band (a data-adapted
    trace-class covariance as in Lim et al. 2023, "Score-based diffusion models in function space", and Kerrigan,
    Ley & Smyth 2023). Build it with :meth:`from_fields`.

    Attributes:
        variances: ``E|u_k|^2`` for ``k`` in ``[-K, K]^d``, C order (``k_y`` then ``k_x``), flattened:
            ``(2 K + 1)^d`` finite values ``>= 0``, not all 0, ``variances[k] = variances[-k]``.
        lengths: the box lengths ``L`` (``d`` = 1 or 2 values) the table belongs to.
        tail_exponent: ``p > d``.
        tail_amplitude: ``> 0``, units of the field squared times length^(-p).
        band_limit: ``B >= K``, the largest ``|k_i|`` kept (127 for grids up to 256 points per side).
        mean_zero: drop the constant mode.
    """

    variances: tuple[float, ...]
    lengths: tuple[float, ...]
    tail_exponent: float
    tail_amplitude: float
    band_limit: int
    mean_zero: bool = False
    radius: float = 1.0

    def __post_init__(self) -> None:
        owner = "SpectrumMatchedField"
        if (not isinstance(self.lengths, tuple) or len(self.lengths) not in (1, 2)):
            raise ConfigError(f"{owner}: lengths must be a tuple of 1 or 2 box lengths, got {self.lengths!r}")
        for length in self.lengths:
            _number(owner, "lengths", length)
        d = len(self.lengths)
        table = np.asarray(self.variances, dtype=np.float64) if isinstance(self.variances, tuple) else None
        side = round(table.size ** (1 / d)) if table is not None and table.ndim == 1 and table.size else 0
        if table is None or table.ndim != 1 or side % 2 != 1 or side**d != table.size:
            raise ConfigError(f"{owner}: variances must be a flat tuple of (2 K + 1)^{d} per-mode variances, got "
                              f"{type(self.variances).__name__} of {np.size(self.variances)} values")
        if not np.isfinite(table).all() or (table < 0).any() or not (table > 0).any():
            raise ConfigError(f"{owner}: the per-mode variances must be finite and >= 0 with one > 0 (a spectrum), got "
                              f"min {float(table[np.isfinite(table)].min()) if np.isfinite(table).any() else None!r}, "
                              f"{int(np.isnan(table).sum())} NaN")
        grid = table.reshape((side,) * d)
        if not np.allclose(grid, np.flip(grid), rtol=1e-9, atol=0.0):
            raise ConfigError(f"{owner}: variances must be symmetric (E|u_k|^2 = E|u_-k|^2 for a real field)")
        if _number(owner, "tail_exponent", self.tail_exponent) <= d:
            raise ConfigError(f"{owner}: tail_exponent={self.tail_exponent:g} must exceed d = {d} for a trace-class "
                              f"covariance (finite variance at every resolution)")
        _number(owner, "tail_amplitude", self.tail_amplitude)
        _check_common(owner, self.band_limit, self.mean_zero, self.radius)
        if self.band_limit < side // 2:
            raise ConfigError(f"{owner}: band_limit {self.band_limit} must be >= the table's largest mode {side // 2}")

    @property
    def table_limit(self) -> int:
        """``K``, the largest ``|k_i|`` whose variance is measured (the table's)."""
        return round(len(self.variances) ** (1 / len(self.lengths))) // 2

    def tempered(self, power: float, *, max_ratio: float = 1e3) -> SpectrumMatchedField:
        """A noise flatter than this one where it is strong: per-mode variance ``lambda_k r_k`` with
        ``r_k = min((lambda_max / lambda_k)^(1 - beta), R)`` (``beta`` = ``power``, ``R`` = ``max_ratio``), tabulated
        on every mode up to the band limit.

        With the data's own spectrum (``beta = 1``) every scale has the same signal-to-noise ratio at every noise
        level, so the sampler must form all scales at once. With ``beta < 1`` the noise-to-signal ratio ``r_k`` grows
        from the strongest mode towards weaker ones, so the large scales emerge first, at high noise, and the small
        ones later (the coarse-to-fine order of white-noise diffusion on natural images, whose power-law spectra make
        it "spectral autoregression": Rissanen et al. 2023, ICLR, arXiv:2206.13397; Dieleman 2024, "Diffusion is
        spectral autoregression"). ``R`` caps the ratio: modes ``R^(1 / (1 - beta))`` times weaker than the peak keep
        the matched shape, ``R`` times louder, so that the noise a sampler leaves at its last level in the weakest
        modes (``~ sigma_min^2 r_k`` of their energy) stays small where the data hold almost nothing (Navier-Stokes
        vorticity falls to float32 rounding above ``|k| ~ 16``).

        Raises:
            ConfigError: ``beta`` not in ``(0, 1]`` or ``R < 1``.
        """
        owner = "SpectrumMatchedField.tempered"
        beta, cap = _number(owner, "power", power), _number(owner, "max_ratio", max_ratio)
        if not 0 < beta <= 1 or cap < 1:
            raise ConfigError(f"{owner}: power must be in (0, 1] (1: this noise) and max_ratio >= 1, got {power!r} and "
                              f"{max_ratio!r}")
        d = len(self.lengths)
        table = self._eigenvalues(("box", d, tuple(self.lengths))) / math.prod(self.lengths)  # (2 B + 1,) * d
        ratio = np.where(table > 0, table.max() / np.where(table > 0, table, 1.0), 1.0) ** (1 - beta)
        tempered = table * np.minimum(ratio, cap)
        # the table reaches the band limit, so the tail (kept as this noise's, times R) is never used
        return replace(self, variances=tuple(float(v) for v in tempered.ravel()),
                       tail_amplitude=self.tail_amplitude * cap)

    @classmethod
    def from_fields(cls, fields: torch.Tensor, domain: Grid, *, band_limit: int, resolved: int | str | None = None,
                    tail_exponent: float | None = None, mean_zero: bool = False) -> SpectrumMatchedField:
        """The noise with the per-mode variances of ``fields`` about their mean and a fitted power-law tail.

        ``variances[k] = mean_i |u_ik - mean_j u_jk|^2`` over the fields (and channels, pooled: every channel gets
        the same noise) for ``max_i |k_i| <= K``, ``u_k`` the Fourier coefficients (``norm="forward"``). The tail:
        least squares of ``log E|u_k|^2`` on ``log |k / L|`` over the measured modes with variance ``> 0`` and
        integer radius ``|k|`` in ``[K / 2, K]`` gives ``p`` (or takes ``tail_exponent``) and the amplitude.

        Args:
            fields: ``(n, [channels,] *space)`` real, finite, on ``domain``'s grid, ``n >= 2``.
            domain: the ``Grid.box`` the fields lie on (its lengths define the physical wavenumber).
            band_limit: ``B >= K``: the largest ``|k_i|`` of the noise (``n / 2 - 1`` of the finest grid to sample).
            resolved: ``K``, the largest ``|k_i|`` the data determine (default ``min(shape) / 2 - 1``, below the
                Nyquist mode); e.g. ``(n - 1) // 3`` for a 2/3-dealiased spectral solver's output, whose higher
                modes are zero. ``"auto"``: the largest shell ``max_i |k_i| = K`` whose mean variance exceeds
                ``1e-12`` of the largest mode's (below that the fields hold rounding, not data: float32 rounding
                is ``~1e-14`` of the variance), so the tail starts where the data's spectrum ends.
            tail_exponent: ``p`` (fitted when ``None``); must exceed ``d``.
            mean_zero: drop the constant mode.

        Raises:
            DataError: fields of the wrong shape or grid, with NaN or infinite values, fewer than 2, or without
                variance.
            ConfigError: ``resolved`` beyond the grid's modes, ``band_limit < resolved``, a tail that is not trace
                class (``p <= d``; pass ``tail_exponent``).
        """
        from ..errors import DataError

        owner = "SpectrumMatchedField.from_fields"
        if not isinstance(domain, Grid) or domain.kind != "box" or domain.ndim not in (1, 2):
            raise ConfigError(f"{owner}: domain must be a periodic Grid.box (1-D or 2-D), got {domain!r}")
        d = domain.ndim
        if not isinstance(fields, torch.Tensor) or not fields.is_floating_point() or fields.is_complex():
            raise DataError(f"{owner}: fields must be a real floating tensor (n, [channels,] *space)")
        x = fields.detach().to(torch.float64).cpu()
        x = x[:, None] if x.ndim == d + 1 else x
        if x.ndim != d + 2 or tuple(x.shape[2:]) != tuple(domain.shape) or x.shape[0] < 2:
            raise DataError(f"{owner}: fields must be (n >= 2, [channels,] {', '.join(map(str, domain.shape))}) on "
                            f"the domain's grid, got {tuple(fields.shape)}")
        if not bool(torch.isfinite(x).all()):
            raise DataError(f"{owner}: fields have NaN or infinite values")
        top = min(domain.shape) // 2 - 1
        dims = tuple(range(2, x.ndim))
        coefficients = torch.fft.fftn(x - x.mean(0, keepdim=True), dim=dims, norm="forward")
        power = coefficients.abs().pow(2).mean(dim=(0, 1)).numpy()  # (*space), fft order
        if resolved == "auto":
            resolved = _resolved_shell(power, top)
        k_max = top if resolved is None else resolved
        if isinstance(k_max, bool) or not isinstance(k_max, (int, np.integer)) or not 1 <= k_max <= top:
            raise ConfigError(f"{owner}: resolved must be 'auto' or an integer in [1, {top}] (below the grid's "
                              f"Nyquist mode), got {resolved!r}")
        index = np.arange(-k_max, k_max + 1)
        table = power[np.ix_(*([index % n for n in domain.shape]))]
        table = 0.5 * (table + np.flip(table))  # exact symmetry against rounding
        if not (table > 0).any():
            raise DataError(f"{owner}: the fields do not vary (zero variance in every mode |k_i| <= {k_max})")
        lengths = np.array(domain.lengths)
        modes = np.stack(np.meshgrid(*([index] * d), indexing="ij"), axis=-1).reshape(-1, d)
        radius = np.sqrt((modes**2).sum(1))
        fit = (table.ravel() > 0) & (radius >= k_max / 2) & (radius <= k_max)
        log_k = np.log(np.sqrt(((modes[fit] / lengths) ** 2).sum(1)))
        log_v = np.log(table.ravel()[fit])
        if tail_exponent is None:
            if fit.sum() < 2 or np.ptp(log_k) == 0:
                raise DataError(f"{owner}: too few modes with variance in |k| in [{k_max / 2:g}, {k_max}] to fit the "
                                f"tail; pass tail_exponent")
            slope, intercept = np.polyfit(log_k, log_v, 1)
            exponent = float(-slope)
            if not exponent > d:
                raise ConfigError(f"{owner}: the fitted tail exponent {exponent:.3g} is not above d = {d} (not trace "
                                  f"class); pass tail_exponent")
        else:
            exponent = _number(owner, "tail_exponent", tail_exponent)
            if not fit.any():
                raise DataError(f"{owner}: no mode with variance in |k| in [{k_max / 2:g}, {k_max}] to fit the tail")
            intercept = float(np.mean(log_v + exponent * log_k))
        if isinstance(band_limit, (int, np.integer)) and not isinstance(band_limit, bool) and band_limit < k_max:
            raise ConfigError(f"{owner}: band_limit {band_limit} must be >= resolved {k_max}")
        return cls(variances=tuple(float(v) for v in table.ravel()), lengths=tuple(float(v) for v in lengths),
                   tail_exponent=exponent, tail_amplitude=float(math.exp(intercept)), band_limit=band_limit,
                   mean_zero=mean_zero)

    def _eigenvalues(self, domain: tuple) -> np.ndarray:
        kind, d, lengths = domain
        if kind != "box" or d != len(self.lengths) or not all(
                math.isclose(a, b, rel_tol=1e-12) for a, b in zip(lengths, self.lengths)):
            where = "a sphere" if kind != "box" else f"a {d}-D box with lengths {lengths}"
            raise ConfigError(f"SpectrumMatchedField was measured on the {len(self.lengths)}-D box with lengths "
                              f"{self.lengths}, got {where}")
        b, k_max, volume = int(self.band_limit), self.table_limit, math.prod(self.lengths)
        axis = np.arange(-b, b + 1)
        modes = np.stack(np.meshgrid(*([axis] * d), indexing="ij"), axis=-1)  # (2B + 1,) * d + (d,)
        wavenumber = np.sqrt(((modes / np.array(self.lengths)) ** 2).sum(-1))
        with np.errstate(divide="ignore"):
            variance = self.tail_amplitude * np.where(wavenumber > 0, wavenumber, 1.0) ** (-self.tail_exponent)
        inner = (slice(b - k_max, b + k_max + 1),) * d
        variance[inner] = np.asarray(self.variances).reshape((2 * k_max + 1,) * d)
        if self.mean_zero:
            variance[(b,) * d] = 0.0
        return variance * volume

    def __repr__(self) -> str:
        return (f"SpectrumMatchedField(K={self.table_limit}, lengths={self.lengths}, tail_exponent="
                f"{self.tail_exponent:.3g}, tail_amplitude={self.tail_amplitude:.3g}, band_limit={self.band_limit}, "
                f"mean_zero={self.mean_zero})")


def _folded_variance(noise, grid: Grid) -> torch.Tensor:
    """``E|c_k|^2`` of a box noise's coefficients folded onto ``grid``'s FFT modes (``sum`` over ``k' = k mod n``, as
    the sampled noise is on any grid, resolved or not): float64 ``grid.shape``, FFT order."""
    variance = noise.spectral_variance(grid)  # (2B + 1,) * d at index k + B
    k = torch.arange(-noise.band_limit, noise.band_limit + 1)
    folded = torch.zeros(grid.shape, dtype=torch.float64)
    if grid.ndim == 1:
        folded.index_put_((k % grid.shape[0],), variance, accumulate=True)
    else:
        ky, kx = torch.meshgrid(k % grid.shape[0], k % grid.shape[1], indexing="ij")
        folded.index_put_((ky.flatten(), kx.flatten()), variance.flatten(), accumulate=True)
    return folded


def _sphere_variance(alpha: float, tau: float, radius: float) -> float:
    """``sum_{l >= 0} (2 l + 1) / (4 pi) (l (l + 1) / R^2 + tau^2)^(-alpha)`` for ``alpha > 1``: the first
    :data:`_MATERN_SUM_DEGREES` terms plus the integral of the rest from ``l = L + 1/2`` (midpoint rule),
    ``R^2 / (4 pi (alpha - 1)) u^(1 - alpha)`` at ``u = (L + 1/2)(L + 3/2) / R^2 + tau^2``."""
    top = _MATERN_SUM_DEGREES
    degree = np.arange(top + 1, dtype=np.float64)
    head = np.sum((2 * degree + 1) / (4 * math.pi) * (degree * (degree + 1) / radius**2 + tau**2) ** (-alpha))
    u = (top + 0.5) * (top + 1.5) / radius**2 + tau**2
    return float(head + radius**2 / (4 * math.pi * (alpha - 1)) * u ** (1 - alpha))


def _padded(count: int) -> int:
    return -(-count // _BLOCK) * _BLOCK


@functools.lru_cache(maxsize=32)
def _scales(noise: _SpectralNoise, domain: tuple, device: str) -> tuple[torch.Tensor, ...]:
    """Standard deviations that turn the normals into coefficients, float64 on ``device`` (cached: one transfer).

    Box: ``(sqrt(lambda_k / |D|),)`` of shape ``(2 B + 1,) * d``. Sphere: the ``(B + 1, B + 1)`` deviations of
    ``(Re a_lm, Im a_lm)``: ``sqrt(lambda_l)`` and 0 at ``m = 0``, ``sqrt(lambda_l / 2)`` both for ``0 < m <= l``.
    """
    eigen = noise._eigenvalues(domain)
    if domain[0] == "box":
        return (torch.from_numpy(np.sqrt(eigen / math.prod(domain[2]))).to(device),)
    size = eigen.size
    real = np.tril(np.repeat(np.sqrt(eigen / 2)[:, None], size, axis=1))
    imag = real.copy()
    real[:, 0], imag[:, 0] = np.sqrt(eigen), 0.0
    return torch.from_numpy(real).to(device), torch.from_numpy(imag).to(device)


# ---------------------------------------------------------------------------------------------- synthesis
def synthesize(coefficients: torch.Tensor, grid: Grid, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Evaluate spectral series at ``grid``'s nodes (exact point values; aliased where the grid is coarse).

    Args:
        coefficients: complex, as :meth:`GaussianRandomField.coefficients` returns them. Box
            ``(n, 2 B + 1[, 2 B + 1])``: ``u_k`` at index ``k + B`` of ``u(x) = sum_k u_k exp(2 pi i k.x / L)``,
            Hermitian (``u_{-k} = conj(u_k)``; only ``k_x >= 0`` is read, with ``u_{(-k_y, 0)} = conj(u_{(k_y, 0)})``
            assumed). Sphere ``(n, B + 1, B + 1)`` over ``(l, m)`` in torch-harmonics' orthonormal convention
            without the Condon-Shortley phase: ``u = sum_l [a_l0 Y_l0 + 2 sum_{m > 0} Re(a_lm Y_lm)]``
            (``m > l`` and ``Im a_l0`` ignored).
        grid: a periodic ``Grid.box`` of the same dimension, or a ``Grid.latlon`` (either node set).
        dtype: of the result (default torch's default dtype); computed in float64 for float64, else float32.

    Returns:
        ``(n, *grid.shape)`` on the coefficients' device; latitude ascending on a sphere.
    """
    kind, d, _ = _domain(grid)
    dtype = _real_dtype(dtype)
    work = torch.float64 if dtype == torch.float64 else torch.float32
    if not isinstance(coefficients, torch.Tensor) or not coefficients.is_complex():
        got = coefficients.dtype if isinstance(coefficients, torch.Tensor) else type(coefficients).__name__
        raise ConfigError(f"coefficients must be a complex tensor, got {got}")
    shape = tuple(coefficients.shape)
    coefficients = coefficients.to(torch.complex128 if work == torch.float64 else torch.complex64)
    if kind == "box":
        if len(shape) != d + 1 or shape[0] < 1 or len(set(shape[1:])) != 1 or shape[1] % 2 != 1:
            raise ConfigError(f"box coefficients must be (n, {', '.join(['2B+1'] * d)}) for this {d}-D grid, "
                              f"got shape {shape}")
        return _synthesize_box(coefficients, grid).to(dtype)
    if len(shape) != 3 or shape[0] < 1 or shape[1] != shape[2]:
        raise ConfigError(f"sphere coefficients must be (n, B+1, B+1) over (l, m), got shape {shape}")
    return _synthesize_sphere(coefficients, grid, work).to(dtype)


def _oversampled(n: int, band_limit: int) -> int:
    """The smallest multiple of ``n`` above ``2 B``: every ``|k| <= B`` distinct, no Nyquist mode."""
    return n * -(-(2 * band_limit + 1) // n)


def _synthesize_box(coefficients: torch.Tensor, grid: Grid) -> torch.Tensor:
    n, d = coefficients.shape[0], grid.ndim
    b = (coefficients.shape[1] - 1) // 2
    sizes = [_oversampled(points, b) for points in grid.shape]
    spectrum = coefficients.new_zeros((n, *sizes[:-1], sizes[-1] // 2 + 1))
    if d == 1:
        spectrum[:, : b + 1] = coefficients[:, b:]
    else:
        spectrum[:, : b + 1, : b + 1] = coefficients[:, b:, b:]  # k_y = 0..B
        spectrum[:, sizes[0] - b:, : b + 1] = coefficients[:, :b, b:]  # k_y = -B..-1
    field = torch.fft.irfftn(spectrum, s=sizes, dim=tuple(range(1, d + 1)), norm="forward")
    stride = tuple(slice(None, None, size // points) for size, points in zip(sizes, grid.shape))
    return field[(slice(None), *stride)]


def _synthesize_sphere(coefficients: torch.Tensor, grid: Grid, work: torch.dtype) -> torch.Tensor:
    nlat, nlon = grid.shape
    degrees = coefficients.shape[-1]
    nlon_eval = _oversampled(nlon, degrees - 1)
    isht = _inverse_sht(nlat, nlon_eval, grid.nodes, degrees, _device_key(coefficients.device), work)
    field = isht(coefficients)  # (n, nlat, nlon_eval), colatitude ascending = latitude descending
    return field[..., :: nlon_eval // nlon].flip(-2)


@functools.lru_cache(maxsize=16)
def _inverse_sht(nlat: int, nlon: int, nodes: str, degrees: int, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """torch-harmonics' ``InverseRealSHT`` to degree ``degrees - 1`` on ``nlat x nlon`` (imported here, lazily)."""
    from .._optional import require_torch_harmonics

    require_torch_harmonics("sphere noise (sciml.diffusion)")
    import torch_harmonics as th

    isht = th.InverseRealSHT(nlat, nlon, lmax=degrees, mmax=degrees, grid=nodes, norm="ortho", csphase=False)
    return isht.to(device=device, dtype=dtype)


#: Shells whose mean variance is below this fraction of the largest mode's hold rounding, not data.
_RESOLVED_FLOOR = 1e-12


def _resolved_shell(power: np.ndarray, top: int) -> int:
    """The largest ``K <= top`` whose shell ``max_i |k_i| = K`` of ``power`` (``(*space)``, fft order) has a mean above
    :data:`_RESOLVED_FLOOR` of ``power``'s maximum (at least 1)."""
    shell = np.zeros(power.shape, dtype=int)
    for axis, n in enumerate(power.shape):
        k = np.abs(np.fft.fftfreq(n, 1.0 / n)).astype(int)
        shell = np.maximum(shell, k.reshape([-1 if a == axis else 1 for a in range(power.ndim)]))
    floor = _RESOLVED_FLOOR * power.max()
    held = [k for k in range(1, top + 1) if power[shell == k].mean() > floor]
    return max(held, default=1)

