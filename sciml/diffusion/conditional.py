"""Conditional generation with an unconditional denoiser: super-resolution and sparse observations, zero-shot.

A trained :class:`~sciml.diffusion.Denoiser` estimates ``E[x_0 | x_sigma]``. To sample ``x_0`` given a linear,
noise-free observation ``y = A x_0`` the denoised estimate is made consistent with ``y`` at every network
evaluation (the *data-consistency* or *null-space* step of DDNM, Wang, Yu & Zhang 2023, "Zero-shot image
restoration using denoising diffusion null-space model", ICLR; in function space as the guidance of FunDPS, Yao et
al. 2025, "Guided diffusion sampling on function spaces with applications to PDEs"):

    D_y(x; sigma) = D(x; sigma) + A^+ (y - A D(x; sigma)),     A^+ = C A^T (A C A^T)^(-1)

with ``C`` the covariance of the model's noise (:attr:`~sciml.diffusion.FieldModel.noise`), the ``C``-weighted
pseudo-inverse (``A A^+ = I``: the corrected estimate reproduces ``y`` exactly). Every sampler of
:func:`~sciml.diffusion.sample_tensor` then runs unchanged on ``D_y``; the Heun and Euler-Maruyama samplers end on a
``D_y`` evaluation, so their samples satisfy ``A x = y`` to rounding.

**Exactness.** For Gaussian data ``x_0 ~ N(0, s^2 C)`` (the noise's covariance up to scale) and the exact denoiser,
``D_y`` *is* the conditional denoiser ``E[x_0 | x_sigma, y]`` (``P = A^+ A`` is the ``C``-orthogonal projection onto
what ``y`` sees; ``(I - P) x_0`` is independent of ``y``, and ``D = g(sigma) I``), so the samplers draw from the exact
posterior (kriging mean and variance, up to their discretisation). For the low-mode observation of super-resolution
``C`` is diagonal in Fourier, ``A^+`` the trigonometric interpolation, and ``D_y`` is the conditional denoiser for any
data whose Fourier modes are independent (every stationary Gaussian field). For non-Gaussian data it is the DDNM
approximation.

Observations (:class:`LowModes`, :class:`PointValues`) are per case: ``(batch, channels, ...)``; each case gets
``members`` samples (:func:`conditional_sample`).

* :class:`LowModes` (super-resolution): a coarse field on a coarse grid of the same box; ``A`` keeps the Fourier
  modes ``|k_i| < n_i / 2`` of the coarse grid (:func:`sciml.spectral.spectral_resample`: the coarse field is read
  as the truncated Fourier series of the fine one, its Nyquist modes unused).
* :class:`PointValues` (inpainting, sparse sensors): values at a set of grid points of the target grid; ``A`` is
  point evaluation, ``A C A^T`` the noise's covariance kernel between the observed points.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass

import torch

from ..errors import ConfigError, DataError
from ..grids import Grid
from ..spectral import spectral_resample
from .model import Denoiser
from .noise import _folded_variance

__all__ = ["LowModes", "PointValues", "conditional_sample", "noise_covariance"]


def _finite_tensor(name: str, values) -> torch.Tensor:
    if not isinstance(values, torch.Tensor) or not values.is_floating_point():
        got = values.dtype if isinstance(values, torch.Tensor) else type(values).__name__
        raise DataError(f"{name} must be a real floating tensor, got {got}")
    if not bool(torch.isfinite(values).all()):
        bad = int((~torch.isfinite(values)).sum())
        raise DataError(f"{name} has {bad} NaN or infinite values of {values.numel()}; fill or mask them (a "
                        f"PointValues observation takes only the points that were observed)")
    return values


@dataclass(frozen=True, eq=False)
class LowModes:
    """A coarse observation of the low Fourier modes (super-resolution).

    Attributes:
        field: the coarse fields ``(batch, channels, *coarse)`` on a ``Grid.box`` of the model's box; their Fourier
            modes ``|k_i| < coarse_i / 2`` are the observation (in the units of the data).
    """

    field: torch.Tensor

    def __post_init__(self) -> None:
        _finite_tensor("the coarse field (condition)", self.field)
        if self.field.ndim not in (3, 4):
            raise ConfigError(f"LowModes takes coarse fields (batch, channels, *space) with 1 or 2 spatial dims, got "
                              f"shape {tuple(self.field.shape)}")

    @property
    def batch(self) -> int:
        return int(self.field.shape[0])

    def check(self, model: Denoiser, grid: Grid) -> None:
        """Refuse a condition the model and ``grid`` cannot take (channels, dims, a target no finer than it)."""
        shape = tuple(self.field.shape[2:])
        if self.field.shape[1] != model.channels or len(shape) != model.domain.ndim:
            raise ConfigError(f"the coarse field is (batch, {self.field.shape[1]}, *{shape}); the model takes "
                              f"{model.channels} channel(s) on a {model.domain.ndim}-D box")
        if any(m < c for m, c in zip(grid.shape, shape)) or tuple(grid.shape) == shape:
            raise ConfigError(f"the target grid {grid.shape} must be finer than the condition's {shape} (at least as "
                              f"many points per dim, more in one); super-resolution does not coarsen")

    def corrector(self, model: Denoiser, grid: Grid, members: int):
        """``D -> D + A^+ (y - A D)`` for ``(batch * members, channels, *grid.shape)`` estimates."""
        coarse = tuple(self.field.shape[2:])
        parameter = next(iter(model.parameters()), None)
        dtype = parameter.dtype if parameter is not None else self.field.dtype
        device = parameter.device if parameter is not None else self.field.device
        lifted = spectral_resample(self.field.to(device=device, dtype=dtype), tuple(grid.shape))
        lifted = lifted.repeat_interleave(members, dim=0)

        def correct(denoised: torch.Tensor) -> torch.Tensor:
            low = spectral_resample(spectral_resample(denoised, coarse), tuple(grid.shape))
            return denoised - low + lifted.to(denoised.dtype)

        return correct


@dataclass(frozen=True, eq=False)
class PointValues:
    """Values observed at a few grid points (inpainting; sparse sensors).

    Attributes:
        mask: ``bool`` ``grid.shape`` of the target grid, True where observed (the same points for every case and
            channel).
        values: ``(batch, channels, n_observed)``, the observed values in the C order of ``mask.nonzero()``.
        jitter: added to the diagonal of ``A C A^T`` relative to its mean diagonal (a noise-free observation needs
            only rounding's worth).
    """

    mask: torch.Tensor
    values: torch.Tensor
    jitter: float = 1e-8

    def __post_init__(self) -> None:
        if not isinstance(self.mask, torch.Tensor) or self.mask.dtype != torch.bool:
            raise ConfigError("PointValues: mask must be a bool tensor of the target grid's shape")
        _finite_tensor("the observed values (condition)", self.values)
        observed = int(self.mask.sum())
        if observed < 1:
            raise ConfigError("PointValues: the mask observes no point")
        if self.values.ndim != 3 or self.values.shape[2] != observed:
            raise ConfigError(f"PointValues: values must be (batch, channels, {observed}) for a mask of {observed} "
                              f"points, got shape {tuple(self.values.shape)}")
        if isinstance(self.jitter, bool) or not isinstance(self.jitter, numbers.Real) or not (
                math.isfinite(self.jitter) and self.jitter >= 0):
            raise ConfigError(f"PointValues: jitter must be a finite number >= 0, got {self.jitter!r}")

    @classmethod
    def from_fields(cls, fields: torch.Tensor, mask: torch.Tensor, **options) -> PointValues:
        """The observation of ``fields`` ``(batch, channels, *space)`` at ``mask`` (a bool ``space`` tensor)."""
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != tuple(
                fields.shape[2:]):
            raise ConfigError(f"the mask must be a bool tensor of the fields' spatial shape {tuple(fields.shape[2:])}")
        return cls(mask=mask, values=fields[..., mask], **options)

    @property
    def batch(self) -> int:
        return int(self.values.shape[0])

    def check(self, model: Denoiser, grid: Grid) -> None:
        """Refuse a mask of another grid or values of other channels."""
        if tuple(self.mask.shape) != tuple(grid.shape):
            raise ConfigError(f"the observation mask {tuple(self.mask.shape)} is not of the target grid {grid.shape}")
        if self.values.shape[1] != model.channels:
            raise ConfigError(f"the observed values have {self.values.shape[1]} channel(s), the model "
                              f"{model.channels}")

    def gain(self, model: Denoiser, grid: Grid, *, dtype=torch.float64, device=None) -> torch.Tensor:
        """``A^+ = C A^T (A C A^T)^(-1)``: ``(points, observed)``, the kriging weights of the noise's covariance."""
        kernel = noise_covariance(model.noise, grid).flatten()  # c(x - 0) at every grid offset
        shape = torch.tensor(grid.shape)
        points = torch.stack(torch.meshgrid(*[torch.arange(n) for n in grid.shape], indexing="ij"), -1).reshape(-1,
                                                                                                                grid.ndim)
        observed = points[self.mask.flatten().cpu()]

        def between(a, b):
            offset = (a[:, None, :] - b[None, :, :]) % shape
            flat = offset[..., 0] if grid.ndim == 1 else offset[..., 0] * grid.shape[1] + offset[..., 1]
            return kernel[flat]

        cross, inner = between(points, observed), between(observed, observed)
        inner = inner + self.jitter * inner.diagonal().mean() * torch.eye(len(observed), dtype=inner.dtype)
        return torch.linalg.solve(inner, cross.T).T.to(dtype=dtype, device=device)

    def corrector(self, model: Denoiser, grid: Grid, members: int):
        """``D -> D + A^+ (y - A D)`` for ``(batch * members, channels, *grid.shape)`` estimates."""
        parameter = next(iter(model.parameters()), None)
        dtype = parameter.dtype if parameter is not None else self.values.dtype
        device = parameter.device if parameter is not None else self.values.device
        gain = self.gain(model, grid, dtype=dtype, device=device)
        values = self.values.to(device=device, dtype=dtype).repeat_interleave(members, dim=0)
        mask = self.mask.to(device)

        def correct(denoised: torch.Tensor) -> torch.Tensor:
            residual = values.to(denoised.dtype) - denoised[..., mask]  # (n, channels, observed)
            update = residual @ gain.T.to(denoised.dtype)  # (n, channels, points)
            return denoised + update.view(denoised.shape)

        return correct


def noise_covariance(noise, grid: Grid) -> torch.Tensor:
    """The covariance kernel ``c(r) = E xi(x + r) xi(x)`` of ``noise`` at the offsets of ``grid``, float64 ``grid.shape``.

    ``c(r) = sum_k (lambda_k / |D|) exp(2 pi i k.r / L)`` over the band-limited modes (folded onto the grid's
    wavenumbers ``k mod n``, which is exact at grid offsets on any grid); ``c(0)`` is the pointwise variance.
    """
    return torch.fft.ifftn(_folded_variance(noise, grid), norm="forward").real


class _Guided(Denoiser):
    """``D_y(x; sigma) = correct(D(x; sigma))``: the model made consistent with an observation."""

    def __init__(self, base: Denoiser, correct) -> None:
        super().__init__(domain=base.domain, noise=base.noise, channels=base.channels, sigma_data=base.sigma_data)
        self.base, self.correct = base, correct

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        return self.correct(self.base(x, sigma))


def conditional_sample(model: Denoiser, grid: Grid, condition: LowModes | PointValues, members: int, *,
                       guidance: bool | None = None, sampler: str | None = None, steps: int | None = None,
                       generator: torch.Generator | None = None, **options) -> torch.Tensor:
    """Draw ``members`` fields per case of ``condition`` on ``grid``: ``(batch, members, channels, *grid.shape)``.

    Two ways to condition, chosen by the model:

    * an unconditional :class:`~sciml.diffusion.Denoiser` is **guided**: the sampler runs on ``D_y`` (see the module
      doc), zero-shot;
    * a :class:`~sciml.diffusion.ConditionedDenoiser` (trained with the coarse field as an input channel) takes a
      :class:`LowModes` condition **by the channel**: the coarse field is lifted to ``grid``
      (:meth:`~sciml.diffusion.ConditionedDenoiser.lift`) and fixed (:meth:`~sciml.diffusion.ConditionedDenoiser.bind`);
      ``guidance=True`` applies the data-consistency step on top (the low modes then hold to rounding).

    The network is called :func:`~sciml.diffusion.evaluations` times, once per evaluation for all ``batch *
    members`` fields; the unconditional path (:func:`~sciml.diffusion.sample_tensor`) is unchanged.

    Args:
        model: a :class:`~sciml.diffusion.Denoiser` (guidance needs ``E[x_0 | x_sigma]``; velocity fields are not
            taken) or a :class:`~sciml.diffusion.ConditionedDenoiser`.
        grid: the target ``Grid.box`` of the model's box (finer than a :class:`LowModes` condition).
        condition: a :class:`LowModes` or :class:`PointValues` observation of ``batch`` cases (a conditioned model
            takes :class:`LowModes` only).
        members: samples per case, >= 1.
        guidance: apply the data-consistency correction; default True for an unconditional model (it is the only
            conditioning it has), False for a conditioned one.
        sampler, steps, generator, options: as :func:`~sciml.diffusion.sample_tensor` (with guidance, ``"heun"`` and
            ``"euler_maruyama"`` end exactly on the observation; ``"ode"`` stops at ``sigma_min``).

    Raises:
        ConfigError: a zero budget, a grid on another box or coarser than the condition, mismatched channels, an
            unconditional model without guidance, a conditioned model given point values.
        DataError: NaN or infinite values in the condition.
    """
    from .model import ConditionedDenoiser
    from .samplers import _steps, sample_tensor

    if not isinstance(model, Denoiser):
        raise ConfigError(f"conditional sampling guides a sciml.diffusion Denoiser, got {type(model).__name__}")
    if not isinstance(condition, (LowModes, PointValues)):
        raise ConfigError(f"condition must be LowModes or PointValues, got {type(condition).__name__}")
    if isinstance(members, bool) or not isinstance(members, numbers.Integral) or members < 1:
        raise ConfigError(f"members must be an integer >= 1, got {members!r}")
    conditioned = isinstance(model, ConditionedDenoiser)
    if guidance is None:
        guidance = not conditioned
    if not isinstance(guidance, bool):
        raise ConfigError(f"guidance must be True, False or None, got {guidance!r}")
    if not conditioned and not guidance:
        raise ConfigError(f"a {type(model).__name__} is unconditional: guidance is its only conditioning (pass "
                          f"guidance=True or None, or train a CoarseConditionedDenoiser)")
    if conditioned and not isinstance(condition, LowModes):
        raise ConfigError(f"a {type(model).__name__} is conditioned on a coarse field (LowModes); point values need "
                          f"guidance of an unconditional denoiser")
    if steps is not None or sampler is not None:
        _steps(sampler or "heun", steps)  # a zero budget is refused before any work
    model.check_grid(grid)
    condition.check(model, grid)
    members = int(members)
    target = model
    if conditioned:
        coarse = tuple(condition.field.shape[2:])
        if coarse != tuple(model.coarse):
            warnings.warn(f"{type(model).__name__} was trained on the modes of a {tuple(model.coarse)} grid, the "
                          f"condition is on {coarse}: the model sees another observation than in training",
                          stacklevel=2)
        parameter = next(iter(model.parameters()), None)
        dtype = parameter.dtype if parameter is not None else condition.field.dtype
        device = parameter.device if parameter is not None else condition.field.device
        lifted = model.lift(condition.field.to(device=device, dtype=dtype), tuple(grid.shape))
        target = model.bind(lifted.repeat_interleave(members, dim=0))
    if guidance:
        target = _Guided(target, condition.corrector(model, grid, members))
    fields = sample_tensor(target, grid, condition.batch * members, sampler=sampler, steps=steps,
                           generator=generator, **options)
    return fields.view(condition.batch, members, *fields.shape[1:])
