"""Denoisers and velocity fields on functions: a noise-conditioned neural operator, EDM preconditioning, exact
Gaussian references.

Fields are ``(batch, channel, *space)`` on a periodic ``Grid.box`` (1-D or 2-D) of a fixed **domain** (the box
lengths); the resolution is free: every module here is a function of the continuous field, so the same weights act
on a 16-point and a 64-point grid of the box.

**Noise.** The corruption is function-space Gaussian noise ``xi ~ N(0, C)`` with a trace-class ``C``
(:mod:`sciml.diffusion.noise`; Kerrigan, Ley & Smyth 2023, "Diffusion generative models in infinite dimensions";
Lim et al. 2023, "Score-based diffusion models in function space"): ``x_sigma = x_0 + sigma xi``. ``xi`` is
stationary with pointwise variance ``v = E xi(x)^2 = sum_k lambda_k / |D|`` (the trace formula), the same at every
point and on every grid of the domain, so the added noise has pointwise standard deviation ``sigma sqrt(v)`` (in
the units of the data).

**Preconditioning** (Karras et al. 2022, "Elucidating the design space of diffusion-based generative models",
arXiv:2206.00364, sec. 5 and app. B.6). The denoiser is ``D(x; sigma) = c_skip x + c_out F(c_in x; c_noise)`` with

    c_in    = 1 / sqrt(sigma_data^2 + v sigma^2)
    c_skip  = sigma_data^2 / (sigma_data^2 + v sigma^2)
    c_out   = sigma sqrt(v) sigma_data / sqrt(sigma_data^2 + v sigma^2)
    c_noise = log(sigma sqrt(v)) / 4

**The choice**: EDM derives its scalings from the per-coordinate variances of white noise (``v = 1``); here they
are derived from the *pointwise* variances of data and noise, ``sigma_data^2`` and ``v sigma^2``: ``c_in`` gives the
network's input unit pointwise variance, ``c_skip`` minimises the pointwise variance of the network's target and
``c_out`` makes it one. (The noise is correlated across points, so a per-Fourier-mode Wiener scaling would be the
exact optimum for Gaussian data; the pointwise choice needs no spectrum of the data and reduces to EDM's at
``v = 1``.) The EDM loss weight is ``lambda(sigma) = 1 / c_out^2``.

**Noise levels in EDM's units.** EDM's constants (``sigma_min = 0.002``, ``sigma_max = 80``, the training
distribution ``ln sigma ~ N(-1.2, 1.2^2)``) are for ``sigma_data = 0.5`` and white noise. The samplers and objectives
read them as the *EDM level* ``s = sigma sqrt(v) (0.5 / sigma_data)``, the pointwise noise-to-data ratio in EDM's
scale, so they carry over to any data amplitude and any noise covariance: ``sigma = s *``
:attr:`Denoiser.sigma_per_level`.

**Network** (:class:`NoiseConditionedFNO`): a Fourier neural operator (Li et al. 2021, arXiv:2010.08895) built
from neuraloperator's ``SpectralConv`` (``fft_norm="forward"``: the coefficients of the Fourier series, the same at
every resolution), conditioned on ``c_noise`` by FiLM (Perez et al. 2018): Fourier features of ``c_noise`` -> MLP ->
per layer a per-channel scale and shift applied after the Fourier layer.

**Exact references** (:class:`GaussianDenoiser`, :class:`GaussianVelocityField`): for Gaussian data
``x_0 ~ N(0, A)`` with ``A`` diagonal in the same Fourier basis as ``C`` (a
:class:`~sciml.diffusion.GaussianRandomField`, :class:`~sciml.diffusion.MaternField` or
:class:`~sciml.diffusion.SpectrumMatchedField`), the posterior mean is the
per-mode Wiener filter ``E[x_0 | x_sigma]_k = a_k / (a_k + sigma^2 b_k) (x_sigma)_k`` and the flow-matching velocity is
``E[x_1 - x_0 | x_t]_k = (t a_k - (1 - t) b_k) / (t^2 a_k + (1 - t)^2 b_k) (x_t)_k``, with ``a_k``, ``b_k`` the
variances of the Fourier coefficients of data and noise; they validate samplers independently of training.
"""

from __future__ import annotations

import copy
import math
import numbers
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from ..grids import Grid
from .noise import (
    GaussianRandomField,
    MaternField,
    SpectrumMatchedField,
    _folded_variance,
)

#: The noises a model takes (and the Gaussian data of the exact references).
_NOISES = (GaussianRandomField, MaternField, SpectrumMatchedField)

__all__ = [
    "CoarseConditionedDenoiser",
    "ConditionedDenoiser",
    "Denoiser",
    "EDMDenoiser",
    "FieldModel",
    "FieldNetConfig",
    "GaussianDenoiser",
    "GaussianVelocityField",
    "NeuralVelocityField",
    "NoiseConditionedFNO",
    "VelocityField",
    "edm_scalings",
]

#: EDM's data standard deviation (Karras et al. 2022), the scale its noise-level constants are given in.
EDM_SIGMA_DATA = 0.5


def _positive(owner: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{owner}: {name} must be a finite number > 0, got {value!r}")
    return float(value)


def _flag(owner: str, name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{owner}: {name} must be True or False, got {value!r}")
    return value


def _positive_int(owner: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{owner}: {name} must be an integer >= 1, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------------------------------- network
@dataclass(frozen=True, kw_only=True)
class FieldNetConfig:
    """Options of :class:`NoiseConditionedFNO`.

    Attributes:
        n_modes: Fourier modes kept per spatial dim (total, as in neuraloperator: ``(8, 8)`` keeps ``k_y = -4..3``
            and ``k_x = 0..4``); its length is the number of spatial dims (1 or 2).
        hidden_channels: width of the Fourier layers.
        n_layers: number of Fourier layers, each followed by a FiLM modulation.
        embedding_channels: width of the noise-level embedding MLP.
        frequencies: Fourier features of ``c_noise``: ``cos, sin(2 pi f_j c)`` for ``frequencies`` values ``f_j``
            spaced geometrically from 1/4 to 16 (cycles per unit of ``c_noise``).
        positional: append ``sin, cos(2 pi x_i / L_i)`` (:class:`~sciml.models.features.PeriodicFeatures`, the same
            functions at every resolution) as input channels; off by default: stationary data need none.
    """

    n_modes: tuple[int, ...] = (12, 12)
    hidden_channels: int = 32
    n_layers: int = 4
    embedding_channels: int = 64
    frequencies: int = 8
    positional: bool = False

    def __post_init__(self) -> None:
        owner = "FieldNetConfig"
        modes = self.n_modes
        if not isinstance(modes, (tuple, list)) or len(modes) not in (1, 2):
            raise ConfigError(f"{owner}: n_modes must be one or two positive integers (one per spatial dim), "
                              f"got {modes!r}")
        object.__setattr__(self, "n_modes", tuple(_positive_int(owner, "n_modes", m) for m in modes))
        for name in ("hidden_channels", "n_layers", "embedding_channels", "frequencies"):
            object.__setattr__(self, name, _positive_int(owner, name, getattr(self, name)))
        if not isinstance(self.positional, bool):
            raise ConfigError(f"{owner}: positional must be True or False, got {self.positional!r}")


class NoiseConditionedFNO(nn.Module):
    """``F(x; c)``: a Fourier neural operator whose layers a scalar condition ``c`` modulates (FiLM).

    ``(batch, channels, *space), (batch,) -> (batch, channels, *space)``:

        e   = MLP([cos(2 pi f c), sin(2 pi f c)])                   (batch, embedding_channels)
        h_0 = P_in x                                                 1x1 lift to hidden_channels
        h_l = act((K_l h_{l-1} + W_l h_{l-1}) (1 + g_l(e)) + b_l(e)) K_l spectral conv, W_l 1x1, g_l, b_l linear
        F   = P_out h_L                                              1x1, GELU, 1x1

    With ``input_channels > 0`` the forward takes ``inputs`` ``(batch, input_channels, *space)`` on ``x``'s grid,
    concatenated to ``x`` before the lift (the coarse field of :class:`CoarseConditionedDenoiser`); the output keeps
    ``channels``. ``act`` is GELU except after the last layer. ``g_l``, ``b_l`` start at zero (the modulation starts as the
    identity). Spectral weights are complex64: the module runs in float32 (or under autocast).
    """

    def __init__(self, channels: int, config: FieldNetConfig = FieldNetConfig(), *, input_channels: int = 0) -> None:
        from neuralop.layers.spectral_convolution import SpectralConv

        from ..models.features import PeriodicFeatures

        super().__init__()
        channels = _positive_int("NoiseConditionedFNO", "channels", channels)
        if isinstance(input_channels, bool) or not isinstance(input_channels, numbers.Integral) or input_channels < 0:
            raise ConfigError(f"NoiseConditionedFNO: input_channels must be an integer >= 0, got {input_channels!r}")
        if not isinstance(config, FieldNetConfig):
            raise ConfigError(f"NoiseConditionedFNO takes a FieldNetConfig, got {type(config).__name__}")
        self.config, self.channels, self.ndim = config, channels, len(config.n_modes)
        self.input_channels = int(input_channels)
        conv = nn.Conv1d if self.ndim == 1 else nn.Conv2d
        hidden, width = config.hidden_channels, config.embedding_channels
        self.features = PeriodicFeatures(self.ndim) if config.positional else None
        self.lift = conv(channels + self.input_channels + (2 * self.ndim if config.positional else 0), hidden, 1)
        self.spectral = nn.ModuleList(SpectralConv(hidden, hidden, config.n_modes) for _ in range(config.n_layers))
        self.pointwise = nn.ModuleList(conv(hidden, hidden, 1) for _ in range(config.n_layers))
        self.embedding = nn.Sequential(nn.Linear(2 * config.frequencies, width), nn.SiLU(), nn.Linear(width, width),
                                       nn.SiLU())
        self.film = nn.ModuleList(nn.Linear(width, 2 * hidden) for _ in range(config.n_layers))
        for film in self.film:
            nn.init.zeros_(film.weight)
            nn.init.zeros_(film.bias)
        self.project = nn.Sequential(conv(hidden, 2 * hidden, 1), nn.GELU(), conv(2 * hidden, channels, 1))

    def forward(self, x: torch.Tensor, condition: torch.Tensor, inputs: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != 2 + self.ndim or x.shape[1] != self.channels:
            raise ConfigError(f"NoiseConditionedFNO expects (batch, {self.channels}, *space) with {self.ndim} spatial "
                              f"dims, got {tuple(x.shape)}")
        if self.input_channels:
            if inputs is None or tuple(inputs.shape) != (x.shape[0], self.input_channels, *x.shape[2:]):
                got = None if inputs is None else tuple(inputs.shape)
                raise ConfigError(f"NoiseConditionedFNO was built with {self.input_channels} extra input channel(s): "
                                  f"inputs must be (batch, {self.input_channels}, *space) on x's grid, got {got}")
            x_in = torch.cat([x, inputs.to(x.dtype)], dim=1)
        elif inputs is not None:
            raise ConfigError("NoiseConditionedFNO was built without extra input channels (input_channels=0)")
        else:
            x_in = x
        frequencies = 2 * math.pi * torch.logspace(-2, 4, self.config.frequencies, base=2.0, device=x.device,
                                                   dtype=condition.dtype)
        phase = condition[:, None] * frequencies
        embedding = self.embedding(torch.cat([phase.cos(), phase.sin()], dim=1).to(x.dtype))
        h = self.lift(self.features(x_in) if self.features is not None else x_in)
        per_channel = (x.shape[0], -1) + (1,) * self.ndim
        for index, (spectral, pointwise, film) in enumerate(zip(self.spectral, self.pointwise, self.film)):
            scale, shift = film(embedding).view(*per_channel[:2], 2, *per_channel[2:]).unbind(2)
            h = (spectral(h) + pointwise(h)) * (1 + scale) + shift
            if index < len(self.spectral) - 1:
                h = nn.functional.gelu(h)
        return self.project(h)


# ---------------------------------------------------------------------------------------------- preconditioning
def edm_scalings(sigma: torch.Tensor, *, sigma_data: float, noise_variance: float
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(c_skip, c_out, c_in, c_noise)`` of the EDM preconditioning for noise of pointwise variance ``v``.

    ``c_in = 1 / sqrt(sigma_data^2 + v sigma^2)``, ``c_skip = sigma_data^2 / (sigma_data^2 + v sigma^2)``,
    ``c_out = sigma sqrt(v) sigma_data / sqrt(sigma_data^2 + v sigma^2)``, ``c_noise = log(sigma sqrt(v)) / 4``
    (Karras et al. 2022, Table 1, with ``sigma`` -> ``sigma sqrt(v)``; see the module doc). As ``sigma -> 0``:
    ``c_skip -> 1``, ``c_out -> 0`` (the denoiser is the identity); as ``sigma -> inf``: ``c_skip -> 0``,
    ``c_out -> sigma_data``.

    Args:
        sigma: noise multipliers ``> 0``, any shape; the results have its shape, dtype and device.
        sigma_data: pointwise standard deviation of the data.
        noise_variance: ``v``, the noise's pointwise variance.
    """
    effective = sigma * math.sqrt(noise_variance)
    total = sigma_data**2 + effective**2
    return sigma_data**2 / total, effective * sigma_data / total.sqrt(), total.rsqrt(), effective.log() / 4


# ---------------------------------------------------------------------------------------------- models on functions
class FieldModel(nn.Module):
    """What every model here and every sampler shares: the domain, the channels, the noise, the data scale.

    Attributes:
        domain: the periodic box the model was built for (its lengths; the resolution is not used).
        noise: the Gaussian noise on functions (:class:`~sciml.diffusion.GaussianRandomField`,
            :class:`~sciml.diffusion.MaternField` or :class:`~sciml.diffusion.SpectrumMatchedField`): the
            corruption of a denoiser, the source of a velocity field.
        channels: field channels, each with independent noise.
        sigma_data: pointwise standard deviation of the data (the units of the fields).
        noise_variance: ``v``, the noise's pointwise variance on the domain.
    """

    def __init__(self, *, domain: Grid, noise, channels: int, sigma_data: float) -> None:
        super().__init__()
        owner = type(self).__name__
        if not isinstance(domain, Grid) or domain.kind != "box":
            kind = domain.kind if isinstance(domain, Grid) else type(domain).__name__
            raise ConfigError(f"{owner}: domain must be a periodic Grid.box (1-D or 2-D), got {kind!r}")
        if not isinstance(noise, _NOISES):
            raise ConfigError(f"{owner}: noise must be a GaussianRandomField, MaternField or SpectrumMatchedField, "
                              f"got {type(noise).__name__}")
        self.domain, self.noise = domain, noise
        self.channels = _positive_int(owner, "channels", channels)
        self.sigma_data = _positive(owner, "sigma_data", sigma_data)
        self.noise_variance = noise.pointwise_variance(domain)
        self.spectral_output = False  # the denoisers take it as an option (EDMDenoiser)
        self._gains: dict = {}

    def check_grid(self, grid: Grid) -> None:
        """Refuse a grid on another domain than :attr:`domain` (any resolution of the box is accepted)."""
        same = (isinstance(grid, Grid) and grid.kind == "box" and grid.ndim == self.domain.ndim
                and all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(grid.lengths, self.domain.lengths)))
        if not same:
            got = f"a {grid.kind!r} grid with lengths {grid.lengths}" if isinstance(grid, Grid) else type(grid).__name__
            raise ConfigError(f"{type(self).__name__} was built on the periodic box with lengths "
                              f"{self.domain.lengths}, got {got}; sample on a Grid.box of the same lengths (any "
                              f"resolution)")

    def grid_of(self, field: torch.Tensor) -> Grid:
        """The grid of the domain that ``field`` ``(batch, channels, *space)`` lies on."""
        if not isinstance(field, torch.Tensor) or field.ndim != 2 + self.domain.ndim or field.shape[1] != self.channels:
            shape = tuple(field.shape) if isinstance(field, torch.Tensor) else type(field).__name__
            raise ConfigError(f"{type(self).__name__} takes fields (batch, {self.channels}, *space) with "
                              f"{self.domain.ndim} spatial dims, got {shape}")
        return Grid.box(*field.shape[2:], lengths=self.domain.lengths)

    def output_gain(self, shape: tuple[int, ...], *, device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``g_k = sqrt(b_k / max_j b_j)`` at the ``rfftn`` modes of a grid of ``shape`` (the last dim halved), with
        ``b_k`` the noise's coefficient variance folded onto the grid (``sum`` over ``k' = k mod n``) and the maximum
        over the noise's unfolded table (a constant of the domain, so ``g`` at a physical mode is the same on every
        grid that holds it unaliased)."""
        key = (tuple(shape), str(device), dtype)
        if key not in self._gains:
            grid = Grid.box(*shape, lengths=self.domain.lengths)
            half = _folded_variance(self.noise, grid)[..., : shape[-1] // 2 + 1]  # rfftn modes
            peak = self.noise.spectral_variance(grid).max()  # of the unfolded table: a constant of the domain
            self._gains[key] = (half / peak).sqrt().to(device=device, dtype=dtype)
        return self._gains[key]

    def _coloured(self, correction: torch.Tensor) -> torch.Tensor:
        """``G correction`` (``(batch, channels, *space)``) when :attr:`spectral_output`, else ``correction``."""
        if not self.spectral_output:
            return correction
        dims, shape = tuple(range(2, correction.ndim)), tuple(correction.shape[2:])
        gain = self.output_gain(shape, device=correction.device, dtype=correction.dtype)
        return torch.fft.irfftn(gain * torch.fft.rfftn(correction, dim=dims), s=shape, dim=dims)

    def draw_noise(self, grid: Grid, n: int, *, generator: torch.Generator | None, device: torch.device | str,
                   dtype: torch.dtype) -> torch.Tensor:
        """``n`` draws of :attr:`noise` on ``grid``, ``(n, channels, *grid.shape)``, from ``generator`` only."""
        fields = self.noise.sample(grid, n * self.channels, generator=generator, device=device, dtype=dtype)
        return fields.view(n, self.channels, *grid.shape)


def _per_sample(value, like: torch.Tensor) -> torch.Tensor:
    """A noise level or time as ``(batch,)`` in ``like``'s dtype and device (from a number, a scalar or a vector)."""
    value = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if value.ndim > 1 or (value.ndim == 1 and value.shape[0] != like.shape[0]):
        raise ConfigError(f"the noise level / time must be a number or one value per sample ({like.shape[0]}), got "
                          f"shape {tuple(value.shape)}")
    return value.expand(like.shape[0])


def _broadcast(values: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    return values.view(-1, *([1] * (field.ndim - 1)))


class Denoiser(FieldModel):
    """Base of the denoisers: ``forward(x, sigma)`` estimates ``E[x_0 | x_0 + sigma xi = x]``, ``xi ~`` :attr:`noise`.

    ``x`` is ``(batch, channels, *space)`` on any grid of :attr:`domain`, ``sigma`` a number or ``(batch,)``
    (the multiplier of ``xi``, > 0); the result has the shape of ``x``.
    """

    @property
    def sigma_per_level(self) -> float:
        """The noise multiplier ``sigma`` per EDM level ``s``: ``(sigma_data / 0.5) / sqrt(v)`` (see the module doc)."""
        return self.sigma_data / EDM_SIGMA_DATA / math.sqrt(self.noise_variance)

    def residual_scale(self, sigma: torch.Tensor) -> torch.Tensor:
        """``c_out(sigma)``, the pointwise standard deviation of the residual ``x_0 - c_skip x`` the network is scaled
        to (:func:`edm_scalings`); the EDM loss weight is ``1 / c_out^2``. ``sigma`` ``(batch,)`` -> ``(batch,)``."""
        return edm_scalings(sigma, sigma_data=self.sigma_data, noise_variance=self.noise_variance)[1]


class EDMDenoiser(Denoiser):
    """``D(x; sigma) = c_skip x + c_out G F(c_in x; c_noise)`` with :func:`edm_scalings` and ``F`` a
    :class:`NoiseConditionedFNO`; ``(batch, channels, *space), sigma -> (batch, channels, *space)``.

    ``G`` is the identity, or with ``spectral_output=True`` the Fourier multiplier of the noise's square-root
    covariance, ``(G u)_k = g_k u_k`` with ``g_k = sqrt(b_k / max_j b_j)`` (``b_k`` the noise's coefficient variance at
    the physical wavenumber, folded onto the grid's modes as the sampled noise is; :meth:`output_gain`). For Gaussian
    data whose covariance is the noise's up to scale (a :class:`~sciml.diffusion.SpectrumMatchedField`) the posterior
    mean is ``c_skip x`` exactly and the network's residual target at mode ``k`` has variance ``~ b_k``, so ``G``
    gives the network's errors the data's spectrum instead of a flat one: with a steep spectrum (Navier-Stokes
    vorticity falls by 1e-7 from ``|k| = 4`` to 16) an error of 1e-3 of the field in every mode is otherwise 1e4 times
    the data's energy in the high bands. ``G`` is a function of the physical wavenumber, so the weights still act the
    same on every grid. Use it with a noise whose spectrum is the data's: with another (a
    :class:`~sciml.diffusion.GaussianRandomField` far from the data's spectrum) ``G`` also keeps the network from
    removing the noise in the modes where the data have much less power than the noise, and samples keep it
    (measured on 8 -> 32 super-resolution with GRF noise: ensemble-mean error 0.040 against 0.032 without ``G``).

    **Mean field.** Data with a non-zero mean field ``m(x) = E[x_0](x)`` (forced flows: Kolmogorov or Li et al.
    forcing leave a standing pattern) are modelled about it, ``D(x; sigma) = m + D_0(x - m; sigma)`` with ``D_0`` the
    denoiser above of the centred data ``x_0 - m``: the skip then shrinks the fluctuation towards the mean field
    instead of towards zero. ``m`` is given on one grid of the box and used as its trigonometric interpolant
    (:func:`sciml.spectral.spectral_resample`) on every grid, so it is a function too; it is a buffer of the model
    (saved with the weights). Measure ``sigma_data`` (and a :class:`~sciml.diffusion.SpectrumMatchedField`) on the
    centred fields.

    Args:
        domain: the periodic box (``Grid.box``; any resolution of it); 1-D or 2-D as ``network.n_modes``.
        noise: the corruption ``xi`` (the same function on every grid of the box).
        channels: field channels.
        sigma_data: pointwise standard deviation of the data (EDM's 0.5 for images in [-1, 1]; measure yours).
        network: the operator's options.
        spectral_output: colour the network's output by ``G`` (above).
        mean_field: ``None`` (mean zero) or ``m``, ``(channels, *space)`` on a grid of the box (e.g. the mean of
            the training fields), in the fields' units.
        data_spectrum: ``None``, or the data's coefficient variances ``a_k`` (a
            :class:`~sciml.diffusion.SpectrumMatchedField` of the centred training fields) for the **per-mode
            (Wiener) preconditioning** below; it replaces ``spectral_output``.

    **Per-mode preconditioning** (``data_spectrum``): with ``a_k`` the data's and ``b_k`` the noise's coefficient
    variances, the skip is the Wiener filter of Gaussian data and the output is coloured by the residual's spectrum,

        ``D_0(x; sigma)_k = a_k / (a_k + sigma^2 b_k) x_k + c_out (s_k / max_j s_j) F_k``,
        ``s_k^2 = a_k sigma^2 b_k / (a_k + sigma^2 b_k)``,  ``c_out^2 = sum_k s_k^2``,

    so ``D_0`` is exact for Gaussian data at ``F = 0`` in every mode (the pointwise ``c_skip`` is exact only when the
    noise's spectrum is the data's up to scale), the network's errors never carry more than the data's spectrum
    (``s_k^2 <= a_k``) even where the noise is much louder than the data (a
    :meth:`~sciml.diffusion.SpectrumMatchedField.tempered` noise), and ``c_out`` is the residual's pointwise
    standard deviation, the EDM loss weight ``1 / c_out^2``. With the data's own spectrum as the noise
    (``b = a / c``) it is the pointwise skip and ``spectral_output=True`` exactly. The sums and the maximum run over
    the physical modes (a constant of the domain), so the weights act the same on every grid.

    Raises:
        ConfigError: a ``mean_field`` of the wrong shape or with NaN or infinite values; a ``data_spectrum`` that
            is not a :class:`~sciml.diffusion.SpectrumMatchedField` on this box, or with ``spectral_output``.
    """

    def __init__(self, *, domain: Grid, noise, channels: int = 1, sigma_data: float = 0.5,
                 network: FieldNetConfig = FieldNetConfig(), spectral_output: bool = False,
                 mean_field: torch.Tensor | None = None, data_spectrum: SpectrumMatchedField | None = None) -> None:
        super().__init__(domain=domain, noise=noise, channels=channels, sigma_data=sigma_data)
        if isinstance(network, FieldNetConfig) and len(network.n_modes) != domain.ndim:
            raise ConfigError(f"EDMDenoiser: network.n_modes {network.n_modes} has {len(network.n_modes)} dims, the "
                              f"domain {domain.ndim}")
        self.net = NoiseConditionedFNO(self.channels, network)
        self.spectral_output = _flag("EDMDenoiser", "spectral_output", spectral_output)
        if mean_field is not None:
            if (not isinstance(mean_field, torch.Tensor) or not mean_field.is_floating_point()
                    or mean_field.ndim != 1 + domain.ndim or mean_field.shape[0] != self.channels):
                shape = tuple(mean_field.shape) if isinstance(mean_field, torch.Tensor) else type(mean_field).__name__
                raise ConfigError(f"EDMDenoiser: mean_field must be a real tensor ({self.channels}, *space) with "
                                  f"{domain.ndim} spatial dim(s), got {shape}")
            if not bool(torch.isfinite(mean_field).all()):
                raise ConfigError("EDMDenoiser: mean_field has NaN or infinite values")
            mean_field = mean_field.detach().clone()
        self.register_buffer("mean_field", mean_field)  # (channels, *space) or None
        if data_spectrum is not None:
            if not isinstance(data_spectrum, SpectrumMatchedField) or len(data_spectrum.lengths) != domain.ndim:
                raise ConfigError(f"EDMDenoiser: data_spectrum must be a SpectrumMatchedField on a {domain.ndim}-D box, "
                                  f"got {data_spectrum!r}")
            if self.spectral_output:
                raise ConfigError("EDMDenoiser: data_spectrum colours the output itself; leave spectral_output False")
        self.data_spectrum = data_spectrum
        self._mode_tables: dict = {}

    def _mean_on(self, x: torch.Tensor) -> torch.Tensor:
        """The mean field on ``x``'s grid, ``(1, channels, *space)``."""
        from ..spectral import spectral_resample

        mean = self.mean_field.to(device=x.device, dtype=x.dtype)[None]
        return mean if tuple(mean.shape[2:]) == tuple(x.shape[2:]) else spectral_resample(mean, tuple(x.shape[2:]))

    def _tables(self, shape: tuple[int, ...] | None, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``(a_k, b_k)`` of data and noise at the ``rfftn`` modes of a grid of ``shape`` (folded as sampled), or with
        ``shape=None`` over every physical mode (flattened); cached."""
        key = (shape, str(device), dtype)
        if key not in self._mode_tables:
            top = max(self.data_spectrum.band_limit, self.noise.band_limit)
            grid = Grid.box(*(shape or (2 * top + 2,) * self.domain.ndim), lengths=self.domain.lengths)
            a, b = (_folded_variance(f, grid) for f in (self.data_spectrum, self.noise))
            if shape is not None:
                a, b = a[..., : shape[-1] // 2 + 1], b[..., : shape[-1] // 2 + 1]  # rfftn modes
            else:
                a, b = a.flatten(), b.flatten()
            self._mode_tables[key] = (a.to(device=device, dtype=dtype), b.to(device=device, dtype=dtype))
        return self._mode_tables[key]

    @staticmethod
    def _residual_variance(a: torch.Tensor, b: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per mode ``(a / (a + var b), a var b / (a + var b))``: the Wiener gain and the residual's variance (0
        where both are 0)."""
        total = a + var * b
        safe = torch.where(total > 0, total, 1.0)
        return torch.where(total > 0, a / safe, 0.0), torch.where(total > 0, a * var * b / safe, 0.0)

    def residual_scale(self, sigma: torch.Tensor) -> torch.Tensor:
        if self.data_spectrum is None:
            return super().residual_scale(sigma)
        a, b = self._tables(None, sigma.device, sigma.dtype)  # (modes,)
        return self._residual_variance(a, b, sigma[:, None] ** 2)[1].sum(-1).sqrt()

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        self.grid_of(x)
        sigma = _per_sample(sigma, x)
        mean = None if self.mean_field is None else self._mean_on(x)  # (1, channels, *space)
        if mean is not None:
            x = x - mean
        c_skip, c_out, c_in, c_noise = edm_scalings(sigma, sigma_data=self.sigma_data,
                                                    noise_variance=self.noise_variance)
        if self.data_spectrum is None:
            correction = self._coloured(self.net(_broadcast(c_in, x) * x, c_noise))  # (batch, channels, *space)
            denoised = _broadcast(c_skip, x) * x + _broadcast(c_out, x) * correction
        else:
            denoised = self._wiener(x, sigma, self.net(_broadcast(c_in, x) * x, c_noise))
        return denoised if mean is None else denoised + mean

    def _wiener(self, x: torch.Tensor, sigma: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """The per-mode preconditioning (class doc) of the centred ``x`` and the network's ``output``, both
        ``(batch, channels, *space)``."""
        dims, shape = tuple(range(2, x.ndim)), tuple(x.shape[2:])
        a, b = self._tables(shape, x.device, x.dtype)  # (*modes)
        var = _broadcast(sigma**2, x)  # (batch, 1, 1, ...)
        gain, residual = self._residual_variance(a, b, var)  # (batch, 1, *modes)
        a_all, b_all = self._tables(None, x.device, x.dtype)
        everywhere = self._residual_variance(a_all, b_all, sigma[:, None] ** 2)[1]  # (batch, modes)
        c_out = _broadcast(everywhere.sum(-1).sqrt(), x)
        colour = (residual / _broadcast(everywhere.amax(-1), x)).sqrt()
        spectrum = gain * torch.fft.rfftn(x, dim=dims) + c_out * colour * torch.fft.rfftn(output, dim=dims)
        return torch.fft.irfftn(spectrum, s=shape, dim=dims)


class ConditionedDenoiser(Denoiser):
    """Base of the denoisers conditioned by an input channel: ``forward(x, sigma, condition)`` estimates
    ``E[x_0 | x_0 + sigma xi = x, y]`` from ``condition``, the observation ``y`` as a field on ``x``'s grid.

    ``x``, ``condition`` are ``(batch, channels, *space)`` on the same grid of :attr:`domain` (any resolution);
    ``sigma`` as :class:`Denoiser`. :meth:`condition_of` turns a clean field into its condition (what training uses
    when the data are fields only); :meth:`lift` puts an observation on a grid; :meth:`bind` fixes the condition and
    gives a plain :class:`Denoiser` that every sampler takes. :func:`~sciml.diffusion.super_resolve` tells this kind of
    model from an unconditional one and conditions it by the channel instead of by guidance.

    Attributes:
        coarse: the spatial shape of the coarse grid whose Fourier modes ``|k_i| < coarse_i / 2`` the condition holds
            (the training condition; any coarse grid is taken at sampling, with a warning when it differs).
    """

    coarse: tuple[int, ...]

    def condition_of(self, fields: torch.Tensor) -> torch.Tensor:
        """The condition of clean ``fields`` ``(batch, channels, *space)``: their Fourier modes ``|k_i| < coarse_i /
        2`` on their own grid (spectral truncation to :attr:`coarse`, then trigonometric interpolation back)."""
        from ..spectral import spectral_resample

        self.grid_of(fields)
        return spectral_resample(spectral_resample(fields, self.coarse), tuple(fields.shape[2:]))

    def lift(self, coarse: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """A coarse observation ``(batch, channels, *coarse_space)`` on the grid of ``shape``: its trigonometric
        interpolant (:func:`sciml.spectral.spectral_resample`, exact for the modes it holds)."""
        from ..spectral import spectral_resample

        return spectral_resample(coarse, tuple(shape))

    def bind(self, condition: torch.Tensor) -> Denoiser:
        """The unconditional view ``D(x; sigma) = self(x, sigma, condition)`` for ``condition`` on the sampling grid
        (``(batch, channels, *space)``; ``batch`` equal to the number of fields sampled)."""
        return _Bound(self, condition)


class _Bound(Denoiser):
    """``D(x; sigma) = base(x, sigma, condition)``: a conditioned denoiser with its condition fixed."""

    def __init__(self, base: ConditionedDenoiser, condition: torch.Tensor) -> None:
        super().__init__(domain=base.domain, noise=base.noise, channels=base.channels, sigma_data=base.sigma_data)
        self.base, self.condition = base, condition

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        return self.base(x, sigma, self.condition.to(device=x.device, dtype=x.dtype))


def _coarse_shape(owner: str, coarse, ndim: int) -> tuple[int, ...]:
    if isinstance(coarse, numbers.Integral) and not isinstance(coarse, bool):
        coarse = (coarse,) * ndim
    if not isinstance(coarse, (tuple, list)) or len(coarse) != ndim:
        raise ConfigError(f"{owner}: coarse must be {ndim} positive integer(s) (the coarse grid's points per dim), got "
                          f"{coarse!r}")
    return tuple(_positive_int(owner, "coarse", c) for c in coarse)


def _mean_module(owner: str, mean_model, domain: Grid | None, channels: int) -> nn.Module | None:
    """A frozen copy of the regression module of ``mean_model`` (a Surrogate checked against ``domain`` and
    ``channels``, or a module), or None. The copy leaves the caller's model as it was (trainable, in its mode)."""
    if mean_model is None:
        return None
    if type(mean_model).__name__ == "Surrogate" and hasattr(mean_model, "module"):
        grid = mean_model.grid
        if domain is not None and (grid.kind != "box" or grid.ndim != domain.ndim or not all(
                math.isclose(a, b, rel_tol=1e-6) for a, b in zip(grid.lengths, domain.lengths))):
            raise ConfigError(f"{owner}: the mean model was trained on a {grid.kind!r} grid with lengths "
                              f"{tuple(grid.lengths)}, the denoiser's box has lengths {domain.lengths}; the domains "
                              f"must agree (the resolution may differ)")
        if len(mean_model.inputs) != channels or len(mean_model.outputs) != channels or mean_model.history != 1:
            raise ConfigError(f"{owner}: the mean model maps {mean_model.inputs} -> {mean_model.outputs}; it must map "
                              f"the {channels} interpolated coarse channel(s) to the {channels} fine one(s)")
        mean_model = mean_model.module
    if not isinstance(mean_model, nn.Module):
        raise ConfigError(f"{owner}: mean_model must be a sciml Surrogate or a torch nn.Module, got "
                          f"{type(mean_model).__name__}")
    mean_model = copy.deepcopy(mean_model)
    mean_model.eval()
    for parameter in mean_model.parameters():
        parameter.requires_grad_(False)
    return mean_model


class CoarseConditionedDenoiser(ConditionedDenoiser):
    """Super-resolution by an input channel: the coarse field, interpolated to the grid of ``x``, is an extra input
    of the network, and the denoiser models only what it does not determine (the residual).

    ``(batch, channels, *space), sigma, (batch, channels, *space) -> (batch, channels, *space)``:

        D(x; sigma, u) = u + c_skip r + c_out F([c_in r, u / s_u]; c_noise),    r = x - u

    with ``u`` the condition (the coarse field's trigonometric interpolant on ``x``'s grid, :meth:`lift`),
    :func:`edm_scalings` of ``sigma_data``, here the pointwise standard deviation of the **residual** ``x_0 - u`` (the
    part of the fine field the coarse one leaves open, typically much smaller than the field's), and ``s_u`` the
    pointwise standard deviation of ``u`` (``condition_scale``), so both network inputs have unit variance. Because
    ``x_sigma - u = (x_0 - u) + sigma xi``, this is EDM's denoiser of the residual given ``u`` (the regression-plus-
    residual split of CorrDiff, Mardani et al. 2023, arXiv:2309.15214, with the interpolant as the regression);
    ``F`` is a :class:`NoiseConditionedFNO` with ``channels`` extra inputs, so the same weights act on any grid of the
    box: train at 64 x 64 from 16 x 16 and super-resolve 16 -> 128. The noise must reach the modes to be generated:
    choose its ``band_limit`` at least ``n / 2 - 1`` of the finest target grid ``n``.

    Train it with :class:`~sciml.diffusion.DiffusionTask` (:class:`~sciml.diffusion.EDMLoss` or
    :class:`~sciml.diffusion.VPLoss`) on the fine fields alone (the condition is then :meth:`condition_of` them) or
    on ``(fine, coarse)`` pairs (the coarse fields lifted to the fine grid: e.g. a coarse solver's output).

    **Regression + residual diffusion** (CorrDiff, Mardani et al. 2023, arXiv:2309.15214). With ``mean_model`` a
    deterministic operator ``mu`` (e.g. the FNO super-resolver of :func:`sciml.surrogate.fit_surrogate` trained on the
    same pairs) the condition is its prediction ``u = mu(lift(c))`` instead of the interpolant, so

        x = mu(c) + r,     r ~ p_theta(r | mu(c)),

    the network learns only the distribution of the residual ``r = x_0 - mu(c)`` (small, small-scale, mean ~0), the
    ensemble mean inherits the regression's accuracy and the members add the spread it lacks. ``mu`` is frozen
    (a copy with ``requires_grad=False``, kept in eval mode, so the caller's model is untouched; its weights are part of
    :meth:`state_dict`), applied without
    gradients, and must act on any grid of the box (an FNO does), so zero-shot super-resolution still works. Measure
    ``sigma_data`` as the residual's std: ``scales(fields, coarse, mean_model=mu)``. Choose a noise whose spectrum
    reaches the residual's (small) scales: its ``band_limit`` up to the target grid's Nyquist mode, and a small
    ``alpha`` / large ``tau`` for a flatter spectrum.

    Args:
        domain, noise, channels, network: as :class:`EDMDenoiser`.
        coarse: the coarse grid's shape (an int for a square grid): the condition holds its modes ``|k_i| <
            coarse_i / 2``.
        sigma_data: pointwise standard deviation of the residual ``x_0 - u`` (:meth:`scales` measures it).
        condition_scale: pointwise standard deviation of ``u`` (:meth:`scales`).
        spectral_output: colour the network's output by the noise's square-root covariance (as
            :class:`EDMDenoiser`; nothing is then added above the noise's band limit).
        mean_model: ``None`` (the interpolant is the mean) or the regression ``mu``: a
            :class:`sciml.surrogate.Surrogate` with ``channels`` inputs and outputs trained on a box of the same
            lengths (its input the interpolated coarse field), or an ``nn.Module`` ``(batch, channels, *space) ->
            (batch, channels, *space)`` taking the interpolated coarse field in physical units.

    Raises:
        ConfigError: a ``mean_model`` on another box, of other channels, or not a module.
    """

    def __init__(self, *, domain: Grid, noise, coarse, channels: int = 1, sigma_data: float = 0.5,
                 condition_scale: float = 1.0, network: FieldNetConfig = FieldNetConfig(),
                 mean_model: nn.Module | None = None, spectral_output: bool = False) -> None:
        super().__init__(domain=domain, noise=noise, channels=channels, sigma_data=sigma_data)
        owner = "CoarseConditionedDenoiser"
        if isinstance(network, FieldNetConfig) and len(network.n_modes) != domain.ndim:
            raise ConfigError(f"{owner}: network.n_modes {network.n_modes} has {len(network.n_modes)} dims, the "
                              f"domain {domain.ndim}")
        self.coarse = _coarse_shape(owner, coarse, domain.ndim)
        self.condition_scale = _positive(owner, "condition_scale", condition_scale)
        self.net = NoiseConditionedFNO(self.channels, network, input_channels=self.channels)
        self.mean_model = _mean_module(owner, mean_model, domain, self.channels)
        self.spectral_output = _flag(owner, "spectral_output", spectral_output)

    @property
    def residual(self) -> bool:
        """True when a regression ``mean_model`` gives the mean (regression + residual diffusion)."""
        return self.mean_model is not None

    def train(self, mode: bool = True):
        """As ``nn.Module.train``; the frozen ``mean_model`` stays in eval mode."""
        super().train(mode)
        if self.mean_model is not None:
            self.mean_model.eval()
        return self

    def lift(self, coarse: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """The condition ``u`` on the grid of ``shape`` from a coarse observation ``(batch, channels,
        *coarse_space)``: its trigonometric interpolant, passed through ``mean_model`` when there is one."""
        return self._mean(super().lift(coarse, shape))

    def condition_of(self, fields: torch.Tensor) -> torch.Tensor:
        """The condition of clean ``fields`` ``(batch, channels, *space)``: the interpolant of their modes ``|k_i| <
        coarse_i / 2``, passed through ``mean_model`` when there is one."""
        return self._mean(super().condition_of(fields))

    def _mean(self, lifted: torch.Tensor) -> torch.Tensor:
        if self.mean_model is None:
            return lifted
        with torch.no_grad():
            mean = self.mean_model(lifted)
        if not isinstance(mean, torch.Tensor) or tuple(mean.shape) != tuple(lifted.shape):
            got = tuple(mean.shape) if isinstance(mean, torch.Tensor) else type(mean).__name__
            raise ConfigError(f"CoarseConditionedDenoiser: mean_model must map {tuple(lifted.shape)} to the same shape, "
                              f"got {got}")
        return mean.to(lifted.dtype)

    @staticmethod
    def scales(fields: torch.Tensor, coarse, *, mean_model=None, batch_size: int = 64) -> dict[str, float]:
        """``{"sigma_data": std(x_0 - u), "condition_scale": std(u)}`` of clean ``fields`` ``(n, channels, *space)``
        for the condition ``u`` of the coarse grid ``coarse`` (the keyword arguments of the constructor); with
        ``mean_model`` (as the constructor's) ``u`` is its prediction, applied ``batch_size`` fields at a time."""
        from ..spectral import spectral_resample

        if not isinstance(fields, torch.Tensor) or fields.ndim not in (3, 4) or not fields.is_floating_point():
            raise ConfigError("scales takes real fields (n, channels, *space) with 1 or 2 spatial dims")
        shape = _coarse_shape("CoarseConditionedDenoiser.scales", coarse, fields.ndim - 2)
        low = spectral_resample(spectral_resample(fields.double(), shape), tuple(fields.shape[2:]))
        if mean_model is not None:
            module = _mean_module("CoarseConditionedDenoiser.scales", mean_model, None, fields.shape[1])
            parameter = next(iter(module.parameters()), None)
            dtype = parameter.dtype if parameter is not None else torch.float32
            with torch.no_grad():
                low = torch.cat([module(chunk.to(dtype)).double() for chunk in low.split(int(batch_size))])
        return {"sigma_data": float((fields.double() - low).std()), "condition_scale": float(low.std())}

    def forward(self, x: torch.Tensor, sigma, condition: torch.Tensor) -> torch.Tensor:
        self.grid_of(x)
        if not isinstance(condition, torch.Tensor) or tuple(condition.shape) != tuple(x.shape):
            got = tuple(condition.shape) if isinstance(condition, torch.Tensor) else type(condition).__name__
            raise ConfigError(f"CoarseConditionedDenoiser: the condition must be the coarse field lifted to x's grid, "
                              f"{tuple(x.shape)}, got {got}")
        sigma = _per_sample(sigma, x)
        c_skip, c_out, c_in, c_noise = edm_scalings(sigma, sigma_data=self.sigma_data,
                                                    noise_variance=self.noise_variance)
        condition = condition.to(x.dtype)
        residual = x - condition
        network = self._coloured(self.net(_broadcast(c_in, x) * residual, c_noise, condition / self.condition_scale))
        return condition + _broadcast(c_skip, x) * residual + _broadcast(c_out, x) * network


class VelocityField(FieldModel):
    """Base of the flow-matching velocity fields: ``forward(x, t)`` estimates ``E[x_1 - x_0 | x_t = x]`` on the
    path ``x_t = (1 - t) x_0 + t x_1`` from ``x_0 ~`` :attr:`noise` (``t = 0``) to the data ``x_1`` (``t = 1``).

    ``x`` is ``(batch, channels, *space)`` on any grid of :attr:`domain`, ``t`` in ``[0, 1]`` a number or ``(batch,)``.
    """


class NeuralVelocityField(VelocityField):
    """``u(x, t) = c_out F(c_in(t) x; t)`` with ``F`` a :class:`NoiseConditionedFNO` (functional flow matching,
    Kerrigan et al. 2024, arXiv:2305.17209).

    ``c_in(t) = 1 / sqrt((1 - t)^2 v + t^2 sigma_data^2)`` (the pointwise standard deviation of ``x_t`` for
    independent source and data) and ``c_out = sqrt(v + sigma_data^2)`` (that of the target ``x_1 - x_0``), so the
    network sees and predicts fields of unit pointwise variance. Arguments as :class:`EDMDenoiser`.
    """

    def __init__(self, *, domain: Grid, noise, channels: int = 1, sigma_data: float = 0.5,
                 network: FieldNetConfig = FieldNetConfig()) -> None:
        super().__init__(domain=domain, noise=noise, channels=channels, sigma_data=sigma_data)
        if isinstance(network, FieldNetConfig) and len(network.n_modes) != domain.ndim:
            raise ConfigError(f"NeuralVelocityField: network.n_modes {network.n_modes} has {len(network.n_modes)} "
                              f"dims, the domain {domain.ndim}")
        self.net = NoiseConditionedFNO(self.channels, network)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        self.grid_of(x)
        t = _per_sample(t, x)
        c_in = ((1 - t) ** 2 * self.noise_variance + t**2 * self.sigma_data**2).rsqrt()
        c_out = math.sqrt(self.noise_variance + self.sigma_data**2)
        return c_out * self.net(_broadcast(c_in, x) * x, t)


# ---------------------------------------------------------------------------------------------- exact Gaussian models
def _mode_variances(noise, domain: Grid, shape: tuple[int, ...], owner: str) -> torch.Tensor:
    """``E|u_k|^2`` of ``noise``'s Fourier coefficients at the ``rfftn`` indices of a grid of ``shape`` on ``domain``,
    float64 (0 above the band limit); the grid must resolve the band limit (``2 B < n``)."""
    grid = Grid.box(*shape, lengths=domain.lengths)
    if not noise.resolves(grid):
        raise ConfigError(f"{owner}: the grid {shape} does not resolve the band limit {noise.band_limit} of {noise} "
                          f"(needs more than {2 * noise.band_limit} points per dim)")
    variance = noise.spectral_variance(domain)  # (2B + 1,) * d at index k + B
    b = noise.band_limit
    axes = [torch.fft.fftfreq(n, 1.0 / n, dtype=torch.float64).round().long() for n in shape[:-1]]
    axes.append(torch.fft.rfftfreq(shape[-1], 1.0 / shape[-1], dtype=torch.float64).round().long())
    inside = [k.abs() <= b for k in axes]
    index = [torch.where(ok, k + b, 0) for k, ok in zip(axes, inside)]
    if len(shape) == 1:
        return torch.where(inside[0], variance[index[0]], 0.0)
    return torch.where(inside[0][:, None] & inside[1][None, :], variance[index[0][:, None], index[1][None, :]], 0.0)


class _SpectralFilter:
    """Per-mode variances of the data and the noise on each grid shape seen (cached)."""

    def _variances(self, shape: tuple[int, ...], device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        key = (shape, str(device), dtype)
        if key not in self._cache:
            owner = type(self).__name__
            self._cache[key] = tuple(_mode_variances(noise, self.domain, shape, owner).to(device=device, dtype=dtype)
                                     for noise in (self.data, self.noise))
        return self._cache[key]

    def _apply(self, x: torch.Tensor, gain) -> torch.Tensor:
        """``irfft(gain(a, b) * rfft(x))`` over the spatial dims, ``a``, ``b`` ``(1, 1, *modes)``."""
        dims = tuple(range(2, x.ndim))
        a, b = self._variances(tuple(x.shape[2:]), x.device, x.dtype)
        spectrum = torch.fft.rfftn(x, dim=dims, norm="forward")
        return torch.fft.irfftn(gain(a[None, None], b[None, None]) * spectrum, s=x.shape[2:], dim=dims, norm="forward")


class GaussianDenoiser(_SpectralFilter, Denoiser):
    """The exact ``E[x_0 | x_0 + sigma xi]`` for Gaussian data ``x_0 ~ data`` (each channel independent): the per-mode
    Wiener filter ``a_k / (a_k + sigma^2 b_k)`` (0 where both variances are 0). Works on grids that resolve both
    band limits; ``sigma_data`` is the data's pointwise standard deviation.

    Args:
        data: the data's distribution, a :class:`~sciml.diffusion.GaussianRandomField`,
            :class:`~sciml.diffusion.MaternField` or :class:`~sciml.diffusion.SpectrumMatchedField`; ``domain``,
            ``noise``, ``channels`` as :class:`EDMDenoiser`.
    """

    def __init__(self, *, data, domain: Grid, noise, channels: int = 1) -> None:
        if not isinstance(data, _NOISES):
            raise ConfigError(f"GaussianDenoiser: data must be a GaussianRandomField, MaternField or SpectrumMatchedField, got "
                              f"{type(data).__name__}")
        super().__init__(domain=domain, noise=noise, channels=channels,
                         sigma_data=math.sqrt(data.pointwise_variance(domain)))
        self.data, self._cache = data, {}

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        self.grid_of(x)
        var = _broadcast(_per_sample(sigma, x), x) ** 2

        def wiener(a, b):
            total = a + var * b
            return torch.where(total > 0, a / torch.where(total > 0, total, 1.0), 0.0)

        return self._apply(x, wiener)


class GaussianVelocityField(_SpectralFilter, VelocityField):
    """The exact flow-matching velocity ``E[x_1 - x_0 | x_t]`` for ``x_0 ~ noise``, ``x_1 ~ data`` independent and
    Gaussian: per mode ``(t a_k - (1 - t) b_k) / (t^2 a_k + (1 - t)^2 b_k)`` (0 where both are 0); the ODE
    ``dx/dt = u`` scales each mode by ``sqrt((t^2 a_k + (1 - t)^2 b_k) / b_k)``, mapping the source to the data.
    Arguments as :class:`GaussianDenoiser`.
    """

    def __init__(self, *, data, domain: Grid, noise, channels: int = 1) -> None:
        if not isinstance(data, _NOISES):
            raise ConfigError(f"GaussianVelocityField: data must be a GaussianRandomField, MaternField or SpectrumMatchedField, got "
                              f"{type(data).__name__}")
        super().__init__(domain=domain, noise=noise, channels=channels,
                         sigma_data=math.sqrt(data.pointwise_variance(domain)))
        self.data, self._cache = data, {}

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        self.grid_of(x)
        t = _broadcast(_per_sample(t, x), x)

        def velocity(a, b):
            total = t**2 * a + (1 - t) ** 2 * b
            return torch.where(total > 0, (t * a - (1 - t) * b) / torch.where(total > 0, total, 1.0), 0.0)

        return self._apply(x, velocity)
