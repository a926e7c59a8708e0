"""A neural ODE on the statistics of decaying turbulence, and the classical decay models beside it.

The state is positive, so the model evolves its logarithm, normalised:

    z = (log s - mu_s) / sigma_s,   s = (K, eps[, K_P]),        dz/dtau = f_theta(z, p),
    tau = (t - t_0) / T,   p = ((log Re, 1 / Fr) - mu_p) / sigma_p,

``K`` the kinetic energy, ``eps`` its dissipation rate, ``K_P`` the available potential energy of a stratified
flow, ``Re`` and ``Fr`` the initial Reynolds and Froude numbers (``1 / Fr = 0`` unstratified), ``T`` the median
initial eddy turnover time ``K_0 / eps_0`` of the training runs and ``f_theta`` a multilayer perceptron. It is
integrated with torchdiffeq (``odeint``, or ``odeint_adjoint`` for memory ``O(1)`` in the length; ``rk4`` on a
fixed step with cubic interpolation to the output times, or adaptive ``dopri5``) and fitted to DNS decay curves
by trajectory fitting (Chen et al. 2018, "Neural ordinary differential equations", NeurIPS; Portwood et al.
2019, "Turbulence forecasting via Neural ODE", arXiv:1911.05180, who learn the dissipation of decaying
stratified turbulence this way). Trajectories may be observed at their own irregular times: each batch is
integrated once on the union of its (shifted) times and each trajectory read at its own.

Baselines, fitted to the same training runs:

* the standard k-epsilon model of decaying turbulence (Launder & Spalding 1974; Pope 2000, "Turbulent
  Flows", sec. 10.4), ``dK/dt = -eps``, ``deps/dt = -C_eps2 eps^2 / K``, whose solution from ``(K_0, eps_0)`` is
  ``K = K_0 (1 + t / t_0)^(-n)``, ``eps = eps_0 (1 + t / t_0)^(-n - 1)`` with ``n = 1 / (C_eps2 - 1)``,
  ``t_0 = n K_0 / eps_0``; ``C_eps2`` minimises the squared error of ``log eps`` over the training runs;
* a power-law decay ``K = K_0 (1 + t / t_0)^(-n)``, ``eps = -dK/dt = n K_0 / t_0 (1 + t / t_0)^(-n - 1)``, with one
  ``n`` and one virtual origin ``t_0`` for all runs (least squares on ``log K``).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, DataError
from ..train import Task

if TYPE_CHECKING:
    import xarray as xr

    from ..train import History, TrainConfig

__all__ = [
    "KEpsilonBaseline",
    "PowerLawBaseline",
    "StatisticsConfig",
    "StatisticsEnsemble",
    "StatisticsModel",
    "StatisticsODE",
    "StatisticsTask",
    "Trajectories",
    "decay_errors",
    "fit_statistics_ensemble",
    "fit_statistics_model",
    "interval_coverage",
    "load_statistics_model",
    "predict_statistics",
    "trajectories_from_dataset",
]

FORMAT_VERSION = 1
PARAMETERS = ("reynolds", "inverse_froude")
UNSTRATIFIED = ("kinetic_energy", "dissipation")
STRATIFIED = ("kinetic_energy", "dissipation", "potential_energy")
METHODS = ("rk4", "dopri5")
_ATTRS = {
    "kinetic_energy": {"long_name": "kinetic energy per unit mass K = <|u|^2> / 2", "units": "1"},
    "dissipation": {"long_name": "kinetic energy dissipation rate eps", "units": "1"},
    "potential_energy": {"long_name": "available potential energy K_P = <b^2> / (2 N^2)", "units": "1"},
}


@dataclass(frozen=True, kw_only=True)
class StatisticsConfig:
    """The network and the integration of :class:`StatisticsODE`.

    Attributes:
        hidden: width of the hidden layers of ``f_theta``.
        layers: hidden layers (``>= 1``), tanh activations (a smooth right-hand side).
        method: ``"rk4"`` (fixed step of at most ``step`` in ``tau``, cubic Hermite interpolation to the output times) or
            ``"dopri5"`` (adaptive, tolerances ``rtol``, ``atol``).
        step: the rk4 step in normalised time ``tau = t / T`` (``T`` the median initial ``K_0 / eps_0``).
        rtol, atol: dopri5 tolerances.
        adjoint: integrate with ``odeint_adjoint`` (memory independent of the number of steps; slower).
        time_input: give ``f_theta`` the time since the start ``tau`` as well (a non-autonomous model: the
            decay from a fresh initial spectrum has a transient no autonomous ODE of ``(K, eps)`` needs to
            share with later times).
        energy_budget: for unstratified turbulence, impose the exact kinetic-energy budget ``dK/dt = -eps``
            (``d log K/dt = -eps / K``) and learn only the unclosed dissipation equation, as a correction to
            the k-epsilon closure calibrated on the same runs: ``d log eps/dt = -C_eps2 eps / K + g_theta``
            (``g_theta`` starts at zero, so training starts from the calibrated k-epsilon model). ``K`` can
            then never grow and the decay never reaches ``K = 0`` in finite time, as a free ``f_theta``
            with ``eps`` held at its initial value would by ``t = K_0 / eps_0``. Stratified states (with
            ``K_P``, whose budget also holds the unknown buoyancy flux) are learned in full.
    """

    hidden: int = 64
    layers: int = 2
    method: str = "rk4"
    step: float = 0.1
    rtol: float = 1e-5
    atol: float = 1e-6
    adjoint: bool = False
    time_input: bool = False
    energy_budget: bool = True

    def __post_init__(self) -> None:
        for name in ("hidden", "layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        for name in ("step", "rtol", "atol"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive number, got {value!r}")


class StatisticsODE(nn.Module):
    """``dz/dtau = f_theta(z, p[, tau])`` on the normalised log state ``z`` ``(batch, S)``, parameters ``p``
    ``(batch, P)``; the normalisation lives in buffers (saved with the weights). With
    ``config.energy_budget`` and the unstratified state, the ``log K`` component is the exact budget
    ``d log K/dt = -eps / K`` and the ``log eps`` component is ``-C_eps2 eps / K + g_theta`` (buffer
    ``c_eps2``, the calibrated k-epsilon constant; ``g_theta`` initialised to zero).

    Buffers: ``state_mean``, ``state_scale`` ``(S,)`` of ``log s``; ``parameter_mean``, ``parameter_scale``
    ``(P,)`` of ``(log Re, 1 / Fr)``; ``time_scale`` ``()`` the ``T`` of ``tau = t / T``.
    """

    def __init__(self, n_state: int, n_parameters: int = len(PARAMETERS), *,
                 config: StatisticsConfig = StatisticsConfig()) -> None:
        super().__init__()
        self.n_state, self.n_parameters, self.config = n_state, n_parameters, config
        self.energy_budget = config.energy_budget and n_state == len(UNSTRATIFIED)  # state (log K, log eps)
        width = n_state + n_parameters + (1 if config.time_input else 0)
        layers: list[nn.Module] = []
        for _ in range(config.layers):
            layers += [nn.Linear(width, config.hidden), nn.Tanh()]
            width = config.hidden
        layers.append(nn.Linear(width, n_state - 1 if self.energy_budget else n_state))
        if self.energy_budget:  # start from the calibrated k-epsilon model: the correction g_theta is zero
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)
        self.net = nn.Sequential(*layers)
        self.register_buffer("c_eps2", torch.tensor(KEpsilonBaseline.c_eps2))
        for name, size in (("state_mean", n_state), ("parameter_mean", n_parameters)):
            self.register_buffer(name, torch.zeros(size))
        for name, size in (("state_scale", n_state), ("parameter_scale", n_parameters)):
            self.register_buffer(name, torch.ones(size))
        self.register_buffer("time_scale", torch.ones(()))

    def forward(self, tau: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The right-hand side on the augmented state ``y = [z, p]`` ``(batch, S + P)``: ``[f_theta, 0]``;
        ``tau`` a scalar or one time per row ``(batch,)``."""
        z, p = y[:, :self.n_state], y[:, self.n_state:]
        inputs = [z, p]
        if self.config.time_input:
            inputs.append(torch.as_tensor(tau, dtype=z.dtype, device=z.device).reshape(-1, 1).expand(z.shape[0], 1))
        learned = self.net(torch.cat(inputs, dim=1))
        if self.energy_budget:  # dz/dtau = T d(log s)/dt / sigma_s: the exact K budget, k-epsilon + g_theta for eps
            log_k, log_eps = (z * self.state_scale + self.state_mean).unbind(dim=1)
            rate = self.time_scale * torch.exp(log_eps - log_k)  # T eps / K
            learned = torch.stack([-rate / self.state_scale[0],
                                   -self.c_eps2 * rate / self.state_scale[1] + learned[:, 0]], dim=1)
        return torch.cat([learned, torch.zeros_like(p)], dim=1)

    def encode_state(self, values: torch.Tensor) -> torch.Tensor:
        """Positive statistics ``(..., S)`` -> normalised log state ``z``."""
        return (values.log() - self.state_mean) / self.state_scale

    def decode_state(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised log state ``z`` ``(..., S)`` -> positive statistics."""
        return (z * self.state_scale + self.state_mean).exp()

    def encode_parameters(self, parameters: torch.Tensor) -> torch.Tensor:
        """``(Re, 1 / Fr)`` ``(..., P)`` -> normalised ``(log Re, 1 / Fr)``."""
        features = torch.cat([parameters[..., :1].log(), parameters[..., 1:]], dim=-1)
        return (features - self.parameter_mean) / self.parameter_scale

    def integrate(self, z0: torch.Tensor, p: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """``z`` at the increasing normalised times ``tau`` ``(T,)``, ``tau[0]`` the start: ``(T, batch, S)``.

        ``rk4``: torchdiffeq's classical RK4 on the uniform grid of ``ceil(span / step)`` steps over
        ``[tau[0], tau[-1]]``, read at ``tau`` by cubic Hermite interpolation with the right-hand side at the
        grid points (fourth order at the steps, third between). ``dopri5``: adaptive, at ``tau`` directly.
        """
        from torchdiffeq import odeint, odeint_adjoint

        cfg = self.config
        y0 = torch.cat([z0, p], dim=1)
        solve = odeint_adjoint if cfg.adjoint else odeint
        kwargs = {"adjoint_params": tuple(self.net.parameters())} if cfg.adjoint else {}
        if cfg.method == "dopri5":
            return solve(self, y0, tau, method="dopri5", rtol=cfg.rtol, atol=cfg.atol, **kwargs)[..., :self.n_state]
        span = float(tau[-1] - tau[0])
        steps = max(1, math.ceil(span / cfg.step - 1e-9))
        grid = tau[0] + torch.arange(steps + 1, dtype=tau.dtype, device=tau.device) * (span / steps)
        y = solve(self, y0, grid, method="rk4", **kwargs)  # (G, batch, S + P)
        if steps == 0 or len(tau) == len(grid) and bool(torch.equal(tau, grid)):
            return y[..., :self.n_state]
        count, batch = y.shape[:2]
        slope = self(grid.repeat_interleave(batch), y.reshape(count * batch, -1)).reshape(count, batch, -1)
        h = span / steps
        index = (torch.searchsorted(grid, tau, right=True) - 1).clamp(0, count - 2)
        s = ((tau - grid[index]) / h).to(y.dtype)[:, None, None]
        y0_, y1_, f0, f1 = y[index], y[index + 1], slope[index], slope[index + 1]
        s2, s3 = s * s, s * s * s
        out = ((2 * s3 - 3 * s2 + 1) * y0_ + (s3 - 2 * s2 + s) * h * f0 + (-2 * s3 + 3 * s2) * y1_
               + (s3 - s2) * h * f1)
        return out[..., :self.n_state]

    def integrate_irregular(self, z0: torch.Tensor, p: torch.Tensor, tau: torch.Tensor,
                            mask: torch.Tensor) -> torch.Tensor:
        """Each trajectory at its own times: ``tau`` ``(batch, T)`` from 0 (entries where ``mask`` is False
        are ignored), solved once on the union of the times; returns ``(batch, T, S)``."""
        grid = torch.unique(torch.where(mask, tau, torch.zeros_like(tau)))  # sorted; holds 0
        z = self.integrate(z0, p, grid)  # (G, batch, S)
        index = torch.searchsorted(grid, torch.where(mask, tau, torch.zeros_like(tau)).contiguous())
        return z.permute(1, 0, 2)[torch.arange(z0.shape[0], device=z0.device)[:, None], index]


class Trajectories(NamedTuple):
    """Statistics trajectories for training: ``times`` ``(N, T)`` (padded after each trajectory's last
    observation), ``values`` ``(N, T, S)`` positive, ``mask`` ``(N, T)`` bool (observed), ``parameters``
    ``(N, P)`` ``(Re, 1 / Fr)``; ``variables`` names the ``S`` state components."""

    times: torch.Tensor
    values: torch.Tensor
    mask: torch.Tensor
    parameters: torch.Tensor
    variables: tuple[str, ...]

    def irregular(self, fraction: float, *, seed: int) -> Trajectories:
        """Keep, per trajectory, its first observation and a random ``fraction`` of the others (its own
        irregular times, drawn from ``numpy.random.default_rng(seed)``), packed to the front."""
        if not 0 < fraction <= 1:
            raise ConfigError(f"fraction must be in (0, 1], got {fraction!r}")
        rng = np.random.default_rng(seed)
        n = self.mask.shape[0]
        keep = self.mask.clone()
        for i in range(n):
            observed = torch.nonzero(self.mask[i]).flatten().numpy()
            count = max(1, round(fraction * (len(observed) - 1)))
            chosen = np.sort(rng.choice(observed[1:], size=min(count, len(observed) - 1), replace=False))
            keep[i] = False
            keep[i, observed[0]] = True
            keep[i, torch.as_tensor(chosen, dtype=torch.long)] = True
        times, values, mask = (torch.zeros_like(self.times), torch.ones_like(self.values), torch.zeros_like(keep))
        for i in range(n):
            idx = torch.nonzero(keep[i]).flatten()
            k = len(idx)
            times[i, :k], values[i, :k], mask[i, :k] = self.times[i, idx], self.values[i, idx], True
            times[i, k:], values[i, k:] = self.times[i, idx[-1]], self.values[i, idx[-1]]
        return Trajectories(times, values, mask, self.parameters, self.variables)


def _variables(ds: xr.Dataset) -> tuple[str, ...]:
    return STRATIFIED if "potential_energy" in ds else UNSTRATIFIED


def _check_statistics(name: str, values: np.ndarray, samples: np.ndarray, times: np.ndarray) -> None:
    """One-line :class:`DataError` for non-finite or non-positive statistics ``(sample, time)``."""
    bad = ~np.isfinite(values)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataError(f"{name} is not finite ({values[i, j]}) at sample {samples[i]}, time {times[j]:g} "
                        f"({int(bad.sum())} values); drop or repair those runs")
    bad = values <= 0
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataError(f"{name} must be positive (the model evolves its logarithm), got {values[i, j]:.6g} at sample "
                        f"{samples[i]}, time {times[j]:g} ({int(bad.sum())} values)")


def _check_times(times: np.ndarray, what: str = "statistics times") -> None:
    if not np.all(np.isfinite(times)):
        raise DataError(f"{what} must be finite, got {times.tolist()[:8]}")
    steps = np.diff(times)
    if np.any(steps <= 0):
        j = int(np.argmax(steps <= 0))
        raise DataError(f"{what} must be strictly increasing, got {times[j]:g} then {times[j + 1]:g} at index {j + 1}")


def _parameters(ds: xr.Dataset) -> np.ndarray:
    """``(sample, 2)`` ``(Re, 1 / Fr)`` from the coordinates (``inverse_froude`` 0 when absent)."""
    if "reynolds" not in ds.coords and "reynolds" not in ds:
        raise DataError("the statistics dataset has no 'reynolds' coordinate along sample (the turbulence recipes "
                        "write one)")
    reynolds = np.asarray(ds["reynolds"].values, dtype=np.float64).reshape(-1)
    inverse_froude = (np.asarray(ds["inverse_froude"].values, dtype=np.float64).reshape(-1)
                      if "inverse_froude" in ds.coords or "inverse_froude" in ds else np.zeros_like(reynolds))
    params = np.stack([reynolds, inverse_froude], axis=1)
    if not np.all(np.isfinite(params)) or np.any(reynolds <= 0) or np.any(inverse_froude < 0):
        raise DataError(f"reynolds must be positive and inverse_froude >= 0 and both finite, got "
                        f"{params.tolist()[:4]}")
    return params


def trajectories_from_dataset(ds: xr.Dataset, variables: Sequence[str] | None = None) -> Trajectories:
    """The decay curves of a statistics dataset (``turbulence3d``/``turbulence2d``) as :class:`Trajectories`.

    ``variables`` defaults to ``(kinetic_energy, dissipation)`` and, when the dataset has it,
    ``potential_energy``. Raises :class:`DataError` (one line) for missing variables, times that do not
    increase, non-finite or non-positive statistics.
    """
    variables = tuple(variables or _variables(ds))
    missing = [v for v in variables if v not in ds]
    if missing:
        raise DataError(f"the statistics dataset lacks {', '.join(missing)}; it has {', '.join(map(str, ds.data_vars))}")
    if "time" not in ds.dims or "sample" not in ds.dims:
        raise DataError(f"statistics must be over (sample, time), got dims {dict(ds.sizes)}")
    times = np.asarray(ds["time"].values, dtype=np.float64)
    _check_times(times)
    samples = np.asarray(ds["sample"].values)
    values = []
    for name in variables:
        array = np.asarray(ds[name].transpose("sample", "time").values, dtype=np.float64)
        _check_statistics(name, array, samples, times)
        values.append(array)
    n = len(samples)
    return Trajectories(times=torch.as_tensor(np.broadcast_to(times, (n, len(times))).copy()),
                        values=torch.as_tensor(np.stack(values, axis=-1)),
                        mask=torch.ones(n, len(times), dtype=torch.bool),
                        parameters=torch.as_tensor(_parameters(ds)), variables=variables)


class StatisticsTask(Task):
    """Trajectory fitting: the mean squared error of the normalised log state along each trajectory.

    Batches are ``(tau, z, mask, p)``: normalised times from each trajectory's start ``(batch, T)``, normalised
    log states ``(batch, T, S)``, the observed entries ``(batch, T)`` and normalised parameters ``(batch, P)``.
    Each trajectory starts from its first observation and is integrated to its own times
    (:meth:`StatisticsODE.integrate_irregular`). Logs ``rmse_<variable>``, the error of ``log`` of each state
    variable (in nepers, ~ a relative error).
    """

    def __init__(self, model: StatisticsODE, variables: Sequence[str]) -> None:
        super().__init__(model)
        self.variables = tuple(variables)

    def loss(self, model: nn.Module, batch: Any):
        tau, z, mask, p = batch
        predicted = self.model.integrate_irregular(z[:, 0], p, tau, mask)
        weight = mask.to(z.dtype)[..., None]
        error = (predicted - z).square() * weight  # (batch, T, S)
        count = weight.sum().clamp_min(1)
        per_variable = error.sum(dim=(0, 1)) / count * self.model.state_scale.square()  # in log units
        return error.sum() / (count * z.shape[-1]), {f"rmse_{name}": per_variable[i].sqrt()
                                                     for i, name in enumerate(self.variables)}


@dataclass(frozen=True)
class KEpsilonBaseline:
    """The standard k-epsilon model of decaying turbulence, ``dK/dt = -eps``, ``deps/dt = -C_eps2 eps^2 / K``
    (Pope 2000, "Turbulent Flows", sec. 10.4; ``C_eps2 = 1.92`` in the standard model), solved exactly.

    Attributes:
        c_eps2: the constant, ``> 1`` (the decay exponent ``n = 1 / (C_eps2 - 1)``).
    """

    c_eps2: float = 1.92

    def predict(self, k0: np.ndarray, eps0: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(K, eps)`` ``(N, T)`` at times ``t`` ``(N, T)`` since the start from ``k0``, ``eps0`` ``(N,)``."""
        n = 1.0 / (self.c_eps2 - 1.0)
        t0 = n * k0 / eps0
        ratio = 1 + np.asarray(t) / t0[:, None]
        return k0[:, None] * ratio ** (-n), eps0[:, None] * ratio ** (-n - 1)

    @classmethod
    def fit(cls, data: Trajectories, *, bounds: tuple[float, float] = (1.01, 6.0)) -> KEpsilonBaseline:
        """``C_eps2`` minimising the mean squared error of ``log eps`` over the observed times of ``data``."""
        from scipy.optimize import minimize_scalar

        t, k, eps, mask = _baseline_arrays(data)

        def cost(c: float) -> float:
            _, predicted = cls(c).predict(k[:, 0], eps[:, 0], t)
            return float(np.mean((np.log(predicted) - np.log(eps))[mask] ** 2))

        result = minimize_scalar(cost, bounds=bounds, method="bounded", options={"xatol": 1e-8})
        return cls(float(result.x))


@dataclass(frozen=True)
class PowerLawBaseline:
    """Power-law decay ``K = K_0 (1 + t / t_0)^(-n)``, ``eps = n K_0 / t_0 (1 + t / t_0)^(-n - 1)``, one
    exponent ``n`` and virtual origin ``t_0`` for all runs (Batchelor 1953; Comte-Bellot & Corrsin 1966, J.
    Fluid Mech. 25, measure ``n ~ 1.2-1.4``).

    Attributes:
        exponent: ``n > 0``.
        origin: ``t_0 > 0`` (the same time units as the data).
    """

    exponent: float = 1.3
    origin: float = 1.0

    def predict(self, k0: np.ndarray, eps0: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(K, eps)`` ``(N, T)`` at times ``t`` ``(N, T)`` since the start (``eps0`` unused)."""
        ratio = 1 + np.asarray(t) / self.origin
        k = k0[:, None] * ratio ** (-self.exponent)
        return k, self.exponent * k / (self.origin * ratio)

    @classmethod
    def fit(cls, data: Trajectories) -> PowerLawBaseline:
        """``(n, t_0)`` minimising the squared error of ``log K`` over the observed times of ``data``."""
        from scipy.optimize import least_squares

        t, k, _, mask = _baseline_arrays(data)

        def residual(x: np.ndarray) -> np.ndarray:
            n, t0 = math.exp(x[0]), math.exp(x[1])
            return (np.log(k[:, :1]) - n * np.log1p(t / t0) - np.log(k))[mask]

        scale = float(np.median(k[:, 0] / _baseline_arrays(data)[2][:, 0]))
        result = least_squares(residual, x0=np.array([math.log(1.3), math.log(scale)]))
        return cls(float(math.exp(result.x[0])), float(math.exp(result.x[1])))


def _baseline_arrays(data: Trajectories) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(t since start, K, eps, mask)`` ``(N, T)`` numpy arrays of ``data``."""
    times = data.times.numpy()
    t = times - times[:, :1]
    k = data.values[..., data.variables.index("kinetic_energy")].numpy()
    eps = data.values[..., data.variables.index("dissipation")].numpy()
    return t, k, eps, data.mask.numpy()


@dataclass
class StatisticsModel:
    """A trained statistics model: the ODE (with its normalisation), what it evolves, the parameter range
    it was trained on, and the calibrated baselines.

    Attributes:
        module: the :class:`StatisticsODE`.
        variables: names of the state components (``kinetic_energy``, ``dissipation``[, ``potential_energy``]).
        parameter_range: ``{"reynolds": [low, high], "inverse_froude": [low, high]}`` of the training runs.
        k_epsilon: the k-epsilon baseline with ``C_eps2`` fitted to the training runs.
        power_law: the power-law baseline fitted to the training runs.
        time_range: ``[0, longest training trajectory]``, times since the start.
        provenance: free-form record (data, command, training history summary).
    """

    module: StatisticsODE
    variables: tuple[str, ...]
    parameter_range: dict[str, list[float]]
    k_epsilon: KEpsilonBaseline
    power_law: PowerLawBaseline
    time_range: list[float] = field(default_factory=lambda: [0.0, math.inf])
    provenance: dict = field(default_factory=dict)

    def manifest(self) -> dict:
        """The JSON manifest :meth:`save` writes."""
        from .. import __version__

        m = self.module
        return {"format_version": FORMAT_VERSION, "sciml_version": __version__, "kind": "node-statistics",
                "variables": list(self.variables), "parameters": list(PARAMETERS),
                "config": asdict(m.config), "parameter_range": self.parameter_range,
                "time_range": self.time_range, "k_epsilon": asdict(self.k_epsilon),
                "power_law": asdict(self.power_law),
                "normalisation": {"state_mean": m.state_mean.tolist(), "state_scale": m.state_scale.tolist(),
                                  "parameter_mean": m.parameter_mean.tolist(),
                                  "parameter_scale": m.parameter_scale.tolist(),
                                  "time_scale": float(m.time_scale)},
                "provenance": self.provenance}

    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``manifest.json`` (JSON) + ``weights.pt`` (tensors only) into ``directory`` atomically."""
        from .._atomic import write_model_directory

        return write_model_directory(directory, self.manifest(), self.module, overwrite=overwrite)

    @classmethod
    def load(cls, directory: str | os.PathLike, *, device: str | torch.device = "cpu") -> StatisticsModel:
        """Read a model written by :meth:`save`; the weights with ``torch.load(weights_only=True)`` (tensors,
        no code), checked against the manifest (every tensor present, of the right shape, finite)."""
        manifest, state, manifest_path, weights_path = _read_model_directory(directory)
        if manifest.get("kind") == ENSEMBLE_KIND:
            raise DataError(f"{directory}: an ensemble of {len(manifest.get('members', []))} statistics models; read it "
                            "with StatisticsEnsemble.load or load_statistics_model")
        model = _model_from_manifest(manifest, manifest_path)
        _load_weights(model.module, state, weights_path)
        model.module.to(device).eval()
        return model


ENSEMBLE_KIND = "node-statistics-ensemble"


def _read_model_directory(directory: str | os.PathLike) -> tuple[dict, Any, Path, Path]:
    """``(manifest, weights, manifest path, weights path)`` of a saved model directory (one-line DataErrors)."""
    directory = Path(directory)
    manifest_path, weights_path = directory / "manifest.json", directory / "weights.pt"
    if not manifest_path.is_file() or not weights_path.is_file():
        raise DataError(f"{directory}: not a saved statistics model (needs manifest.json and weights.pt)")
    try:
        manifest = json.loads(manifest_path.read_text())
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DataError(f"{manifest_path}: unreadable statistics model manifest ({error}); re-save the model") from None
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure is a bad file
        raise DataError(f"{weights_path}: unreadable weights ({type(error).__name__}); re-save the model") from None
    return manifest, state, manifest_path, weights_path


def _model_from_manifest(manifest: dict, manifest_path: Path) -> StatisticsModel:
    """A :class:`StatisticsModel` with an untrained module built from one model's manifest."""
    try:
        if manifest.get("kind") != "node-statistics" or manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"kind {manifest.get('kind')!r}, format {manifest.get('format_version')!r}")
        config = StatisticsConfig(**manifest["config"])
        variables = tuple(manifest["variables"])
        module = StatisticsODE(len(variables), len(manifest["parameters"]), config=config)
        k_epsilon = KEpsilonBaseline(**manifest["k_epsilon"])
        power_law = PowerLawBaseline(**manifest["power_law"])
        return StatisticsModel(module=module, variables=variables, parameter_range=manifest["parameter_range"],
                               k_epsilon=k_epsilon, power_law=power_law, time_range=manifest["time_range"],
                               provenance=manifest.get("provenance", {}))
    except (ValueError, KeyError, TypeError, AttributeError, ConfigError) as error:
        raise DataError(f"{manifest_path}: unreadable statistics model manifest ({error}); re-save the model") \
            from None


def _load_weights(module: nn.Module, state: Any, weights_path: Path) -> None:
    """Load ``state`` into ``module`` after checking it: the same tensor names and shapes, all finite."""
    expected = module.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected) or any(
            not isinstance(state[k], torch.Tensor) or state[k].shape != v.shape for k, v in expected.items()):
        raise DataError(f"{weights_path}: the weights do not match the manifest's network; re-save the model")
    if not all(bool(torch.isfinite(v).all()) for v in state.values()):
        raise DataError(f"{weights_path}: non-finite weights; re-train the model")
    module.load_state_dict(state)


@dataclass
class StatisticsEnsemble:
    """A deep ensemble of statistics models (Lakshminarayanan et al. 2017, "Simple and scalable predictive
    uncertainty estimation using deep ensembles", NeurIPS): ``M`` :class:`StatisticsModel` trained on the
    same runs from independent random initialisations and batch orders (:func:`fit_statistics_ensemble`).

    :func:`predict_statistics` integrates every member and returns their geometric mean (the mean of the
    log state the members evolve), the spread (standard deviation over members of ``log s``, in nepers:
    a relative spread) and the members themselves along ``member``. The members share the normalisation
    and the calibrated baselines (both are fitted to the data, not drawn).

    Deep ensembles are often overconfident: their members share the errors of the model class and the data, so
    the spread underestimates the error. :meth:`calibrate` scales the spread, per variable, so that a chosen
    interval covers the chosen fraction of held-out runs (variance scaling; Kuleshov et al. 2018, "Accurate
    uncertainties for deep learning using calibrated regression", ICML; Levi et al. 2022, "Evaluating and
    calibrating uncertainty prediction in regression tasks", Sensors 22).

    Attributes:
        members: the ``M >= 2`` models, the same variables, parameter range and baselines.
        provenance: free-form record (data, command, training summary).
        spread_scale: ``{variable: factor}`` multiplying the spread (1 for a variable not named; set by
            :meth:`calibrate`).
    """

    members: list[StatisticsModel]
    provenance: dict = field(default_factory=dict)
    spread_scale: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.members = list(self.members)
        if len(self.members) < 2 or not all(isinstance(m, StatisticsModel) for m in self.members):
            raise ConfigError(f"an ensemble needs at least 2 StatisticsModel members, got {len(self.members)}")
        first = self.members[0]
        for i, m in enumerate(self.members[1:], 1):
            if m.variables != first.variables or m.parameter_range != first.parameter_range:
                raise ConfigError(f"ensemble member {i} evolves {m.variables} on {m.parameter_range}, member 0 "
                                  f"{first.variables} on {first.parameter_range}; train the members on the same runs")

    @property
    def variables(self) -> tuple[str, ...]:
        """The state components (those of every member)."""
        return self.members[0].variables

    @property
    def parameter_range(self) -> dict[str, list[float]]:
        """The trained parameter range (of every member)."""
        return self.members[0].parameter_range

    @property
    def time_range(self) -> list[float]:
        """``[0, longest training trajectory]``."""
        return self.members[0].time_range

    @property
    def k_epsilon(self) -> KEpsilonBaseline:
        """The k-epsilon baseline calibrated on the training runs."""
        return self.members[0].k_epsilon

    @property
    def power_law(self) -> PowerLawBaseline:
        """The power-law baseline fitted to the training runs."""
        return self.members[0].power_law

    def manifest(self) -> dict:
        """The JSON manifest :meth:`save` writes: every member's own manifest under ``members``."""
        from .. import __version__

        return {"format_version": FORMAT_VERSION, "sciml_version": __version__, "kind": ENSEMBLE_KIND,
                "members": [m.manifest() for m in self.members], "spread_scale": dict(self.spread_scale),
                "provenance": self.provenance}

    def calibrate(self, runs: xr.Dataset, *, coverage: float = 0.95, width: float = 2.0) -> StatisticsEnsemble:
        """A copy whose spread is scaled per variable so that the interval ``s exp(+-width * spread)`` holds
        (at least) the fraction ``coverage`` of the values of the held-out ``runs`` (a statistics dataset, not
        the training runs), over their times after the first: the factor is the ``coverage`` quantile of
        ``|log s_DNS - log s| / (width sigma)``. The calibration holds for runs like ``runs``; check it on
        others with :func:`interval_coverage`."""
        from dataclasses import replace

        if not (isinstance(coverage, (int, float)) and 0 < coverage < 1):
            raise ConfigError(f"coverage must be in (0, 1), got {coverage!r}")
        if not (isinstance(width, (int, float)) and math.isfinite(width) and width > 0):
            raise ConfigError(f"width must be a positive number, got {width!r}")
        raw = replace(self, spread_scale={})
        predicted = predict_statistics(raw, runs, baselines=False)
        scale = {}
        for name in self.variables:
            spread = np.asarray(predicted[f"{name}_spread"].transpose("sample", "time").values)[:, 1:]
            residual = np.abs(np.log(np.asarray(runs[name].transpose("sample", "time").values, dtype=np.float64))
                              - np.log(np.asarray(predicted[name].transpose("sample", "time").values)))[:, 1:]
            if residual.shape != spread.shape:
                raise DataError(f"{name} of the calibration runs has shape {residual.shape}, the prediction's "
                                f"{spread.shape}")
            ratio = residual / (width * np.maximum(spread, np.finfo(np.float64).tiny))
            scale[name] = float(np.quantile(ratio, coverage, method="higher"))
        provenance = {**self.provenance, "calibration": {"runs": int(runs.sizes["sample"]), "coverage": coverage,
                                                         "width": width}}
        return replace(self, spread_scale=scale, provenance=provenance)

    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``manifest.json`` + ``weights.pt`` (member ``i``'s tensors under ``"i."``) atomically."""
        from .._atomic import write_model_directory

        return write_model_directory(directory, self.manifest(), nn.ModuleList([m.module for m in self.members]),
                                     overwrite=overwrite)

    @classmethod
    def load(cls, directory: str | os.PathLike, *, device: str | torch.device = "cpu") -> StatisticsEnsemble:
        """Read an ensemble written by :meth:`save`, each member's weights checked like
        :meth:`StatisticsModel.load`'s."""
        manifest, state, manifest_path, weights_path = _read_model_directory(directory)
        if manifest.get("kind") != ENSEMBLE_KIND or manifest.get("format_version") != FORMAT_VERSION \
                or not isinstance(manifest.get("members"), list):
            raise DataError(f"{manifest_path}: not a statistics ensemble manifest (kind {manifest.get('kind')!r}); "
                            "read a single model with StatisticsModel.load")
        members = [_model_from_manifest(m, manifest_path) if isinstance(m, dict) else None
                   for m in manifest["members"]]
        if any(m is None for m in members):
            raise DataError(f"{manifest_path}: unreadable ensemble member manifest; re-save the model")
        _load_weights(nn.ModuleList([m.module for m in members]), state, weights_path)
        for m in members:
            m.module.to(device).eval()
        try:
            scale = {str(k): float(v) for k, v in dict(manifest.get("spread_scale", {})).items()}
            return cls(members=members, provenance=manifest.get("provenance", {}), spread_scale=scale)
        except ConfigError as error:
            raise DataError(f"{manifest_path}: {error}") from None
        except (TypeError, ValueError) as error:
            raise DataError(f"{manifest_path}: unreadable spread_scale ({error}); re-save the model") from None


def load_statistics_model(directory: str | os.PathLike, *,
                          device: str | torch.device = "cpu") -> StatisticsModel | StatisticsEnsemble:
    """Read a :class:`StatisticsModel` or a :class:`StatisticsEnsemble`, whichever ``directory`` holds."""
    manifest_path = Path(directory) / "manifest.json"
    try:
        kind = json.loads(manifest_path.read_text()).get("kind")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        kind = None  # StatisticsModel.load names what is wrong
    loader = StatisticsEnsemble.load if kind == ENSEMBLE_KIND else StatisticsModel.load
    return loader(directory, device=device)


def _normalise(module: StatisticsODE, data: Trajectories) -> None:
    """Set ``module``'s buffers from the training trajectories."""
    logs = data.values.log()[data.mask]  # (points, S)
    module.state_mean.copy_(logs.mean(dim=0))
    module.state_scale.copy_(logs.std(dim=0).clamp_min(1e-3))
    features = torch.cat([data.parameters[:, :1].log(), data.parameters[:, 1:]], dim=1)
    module.parameter_mean.copy_(features.mean(dim=0))
    spread = features.std(dim=0) if len(features) > 1 else torch.ones(features.shape[1], dtype=features.dtype)
    module.parameter_scale.copy_(torch.where(spread > 1e-8, spread, torch.ones_like(spread)))
    k, eps = (data.values[:, 0, data.variables.index(v)] for v in ("kinetic_energy", "dissipation"))
    module.time_scale.copy_((k / eps).median())


def _tensors(module: StatisticsODE, data: Trajectories) -> tuple[torch.Tensor, ...]:
    """``(tau, z, mask, p)`` float32 tensors for :class:`StatisticsTask`."""
    with torch.no_grad():
        tau = (data.times - data.times[:, :1]) / module.time_scale.to(data.times.dtype)
        z = module.encode_state(data.values.to(module.state_mean.dtype))
        p = module.encode_parameters(data.parameters.to(module.state_mean.dtype))
    return tau.float(), z.float(), data.mask, p.float()


def fit_statistics_model(
    train: xr.Dataset | Trajectories,
    *,
    val: xr.Dataset | Trajectories | None = None,
    config: StatisticsConfig = StatisticsConfig(),
    train_config: TrainConfig | None = None,
    irregular: float | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    seed: int = 0,
) -> tuple[StatisticsModel, History]:
    """Train a :class:`StatisticsModel` on DNS decay curves with :func:`sciml.train.fit` and calibrate the
    k-epsilon and power-law baselines on the same runs.

    Args:
        train: a statistics dataset (``turbulence3d`` / ``turbulence2d``) or :class:`Trajectories`.
        val: validation runs (the best epoch is kept).
        config: the network and integrator (:class:`StatisticsConfig`).
        train_config: options of the loop; default 300 epochs, batch 8, lr 3e-3, CPU, cosine schedule.
        irregular: keep only this fraction of each training trajectory's times, drawn per trajectory (training
            on irregular output times); ``None``: all.
        checkpoint_dir, resume: as :func:`sciml.train.fit`.
        seed: seeds the network's initialisation and the irregular subsampling.

    Returns:
        ``(model, history)``.
    """
    from ..train import fit, seed_everything

    data = train if isinstance(train, Trajectories) else trajectories_from_dataset(train)
    val_data = (None if val is None else val if isinstance(val, Trajectories)
                else trajectories_from_dataset(val, data.variables))
    if val_data is not None and val_data.variables != data.variables:
        raise DataError(f"validation runs evolve {val_data.variables}, training runs {data.variables}")
    if irregular is not None:
        data = data.irregular(irregular, seed=seed)
    train_config = train_config or _default_train_config()
    seed_everything(seed)
    k_epsilon = KEpsilonBaseline.fit(data)
    module = StatisticsODE(len(data.variables), len(PARAMETERS), config=config).double()
    _normalise(module, data)
    module.c_eps2.fill_(k_epsilon.c_eps2)  # the prior of the dissipation equation (with energy_budget)
    module = module.float()
    task = StatisticsTask(module, data.variables)
    history = fit(task, _tensors(module, data), config=train_config,
                  val_data=None if val_data is None else _tensors(module, val_data), checkpoint_dir=checkpoint_dir,
                  resume=resume)
    module.cpu().eval()
    features = data.parameters.numpy()
    parameter_range = {name: [float(features[:, i].min()), float(features[:, i].max())]
                       for i, name in enumerate(PARAMETERS)}
    span = (data.times - data.times[:, :1])[data.mask]
    model = StatisticsModel(module=module, variables=data.variables, parameter_range=parameter_range,
                            k_epsilon=k_epsilon, power_law=PowerLawBaseline.fit(data),
                            time_range=[0.0, float(span.max())],
                            provenance={"runs": len(data.times), "epochs": len(history),
                                        "final_train_loss": history[-1]["train_loss"] if history else None})
    return model, history


def _default_train_config() -> TrainConfig:
    from ..train import TrainConfig

    return TrainConfig(epochs=300, batch_size=8, lr=3e-3, device="cpu", progress=False, weight_decay=0.0,
                       grad_clip=1.0)


def fit_statistics_ensemble(
    train: xr.Dataset | Trajectories,
    *,
    members: int = 5,
    val: xr.Dataset | Trajectories | None = None,
    config: StatisticsConfig = StatisticsConfig(),
    train_config: TrainConfig | None = None,
    irregular: float | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    seed: int = 0,
) -> tuple[StatisticsEnsemble, list[History]]:
    """Train a deep ensemble of ``members`` statistics models: one :func:`fit_statistics_model` (one
    :func:`sciml.train.fit` of the same :class:`StatisticsTask`) per member, on the same runs.

    Member ``m`` is initialised from ``seed + m`` and visits the batches in the order of
    ``train_config.seed + m``; the irregular subsampling (``irregular``, drawn once from ``seed``), the
    normalisation and the baselines are the same for every member, so the members differ only by the
    randomness of training (Lakshminarayanan et al. 2017). One fit per member, rather than one fit of a
    network with a member axis, keeps each member exactly what :func:`fit_statistics_model` trains (its
    own best epoch on ``val``, its own checkpoints under ``checkpoint_dir/member-m``); the price is ``M``
    sequential fits.

    Args:
        train, val, config, irregular, resume: as :func:`fit_statistics_model`.
        members: ``M >= 2``.
        train_config: as :func:`fit_statistics_model` (its ``seed`` offset per member).
        checkpoint_dir: member ``m`` checkpoints in ``checkpoint_dir / f"member-{m}"``.
        seed: the first member's initialisation seed and the seed of the irregular subsampling.

    Returns:
        ``(ensemble, [history of each member])``.
    """
    from dataclasses import replace

    if isinstance(members, bool) or not isinstance(members, int) or members < 2:
        raise ConfigError(f"members must be an integer >= 2 (use fit_statistics_model for one), got {members!r}")
    data = train if isinstance(train, Trajectories) else trajectories_from_dataset(train)
    val_data = (None if val is None else val if isinstance(val, Trajectories)
                else trajectories_from_dataset(val, data.variables))
    if irregular is not None:
        data = data.irregular(irregular, seed=seed)
    train_config = train_config or _default_train_config()
    models, histories = [], []
    for m in range(members):
        model, history = fit_statistics_model(
            data, val=val_data, config=config, train_config=replace(train_config, seed=train_config.seed + m),
            checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir) / f"member-{m}", resume=resume,
            seed=seed + m)
        model.provenance["member"] = m
        models.append(model)
        histories.append(history)
    ensemble = StatisticsEnsemble(members=models, provenance={
        "runs": len(data.times), "members": members,
        "final_train_loss": [h[-1]["train_loss"] if h else None for h in histories]})
    return ensemble, histories


def _initial(model: StatisticsModel, initial: xr.Dataset | Mapping[str, Any],
             times: Sequence[float] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
    """``(values0 (N, S), parameters (N, P), t (T,) since the start, samples (N,), sample coords)``."""
    import xarray as xr

    if isinstance(initial, xr.Dataset):
        ds = initial
        if "time" not in ds.dims:
            raise DataError(f"the initial dataset must be over (sample, time), got dims {dict(ds.sizes)}")
        all_times = np.asarray(ds["time"].values, dtype=np.float64)
        _check_times(all_times)
        missing = [v for v in model.variables if v not in ds]
        if missing:
            raise DataError(f"the dataset lacks {', '.join(missing)}, which the model evolves")
        trajectories_from_dataset(ds, model.variables)  # the whole file checked: a bad run is named, not compared
        first = ds.isel(time=0)
        samples = np.asarray(ds["sample"].values)
        values0 = np.stack([np.asarray(first[v].values, dtype=np.float64).reshape(-1) for v in model.variables], 1)
        parameters = _parameters(ds)
        t = all_times - all_times[0] if times is None else np.asarray(times, dtype=np.float64)
        coords = {name: np.asarray(ds[name].values) for name in ("viscosity", "buoyancy_frequency")
                  if name in ds.coords}
    elif isinstance(initial, Mapping):
        missing = [v for v in (*model.variables, "reynolds") if v not in initial]
        if missing:
            raise DataError(f"the initial state lacks {', '.join(missing)}; give {', '.join(model.variables)} and "
                            "reynolds (and inverse_froude when stratified)")
        values0 = np.stack([np.atleast_1d(np.asarray(initial[v], dtype=np.float64)) for v in model.variables], 1)
        reynolds = np.atleast_1d(np.asarray(initial["reynolds"], dtype=np.float64))
        inverse_froude = np.atleast_1d(np.asarray(initial.get("inverse_froude", 0.0), dtype=np.float64))
        parameters = np.stack(np.broadcast_arrays(reynolds, inverse_froude), 1) * np.ones((len(values0), 1))
        if not np.all(np.isfinite(parameters)) or np.any(parameters[:, 0] <= 0) or np.any(parameters[:, 1] < 0):
            raise DataError(f"reynolds must be positive and inverse_froude >= 0 and both finite, got "
                            f"{parameters.tolist()[:4]}")
        samples = np.arange(len(values0))
        if times is None:
            raise ConfigError("give times when the initial state is a mapping of values")
        t = np.asarray(times, dtype=np.float64)
        coords = {}
    else:
        raise ConfigError(f"initial must be a statistics xr.Dataset or a mapping of initial values, got "
                          f"{type(initial).__name__}")
    _check_times(t, "times")
    if t[0] < 0:
        raise DataError(f"times are since the initial state and must be >= 0, got {t[0]:g}")
    for i, name in enumerate(model.variables):
        _check_statistics(f"initial {name}", values0[:, i:i + 1], samples, np.zeros(1))
    return values0, parameters, t, samples, coords


def _warn_outside(model: StatisticsModel, parameters: np.ndarray, t: np.ndarray) -> None:
    for i, name in enumerate(PARAMETERS):
        low, high = model.parameter_range[name]
        outside = (parameters[:, i] < low * (1 - 1e-9) - 1e-12) | (parameters[:, i] > high * (1 + 1e-9) + 1e-12)
        if outside.any():
            values = parameters[outside, i]
            shown = (f"{values.min():.4g}" if values.min() == values.max() else f"{values.min():.4g}..{values.max():.4g}")
            warnings.warn(f"{name} {shown} of {int(outside.sum())} run(s) is outside "
                          f"the trained range [{low:.4g}, {high:.4g}]: the model extrapolates", stacklevel=3)
    if t[-1] > model.time_range[1] * (1 + 1e-9):
        warnings.warn(f"times up to {t[-1]:.4g} go beyond the trained decay [0, {model.time_range[1]:.4g}]: the model "
                      "extrapolates in time", stacklevel=3)


def predict_statistics(model: StatisticsModel | StatisticsEnsemble, initial: xr.Dataset | Mapping[str, Any],
                       times: Sequence[float] | None = None, *, baselines: bool = True) -> xr.Dataset:
    """Integrate the trained statistics model from initial values: the decay curves ``(sample, time)``.

    Args:
        model: a :class:`StatisticsModel` (:func:`fit_statistics_model`, :meth:`StatisticsModel.load`) or a
            :class:`StatisticsEnsemble` (:func:`fit_statistics_ensemble`, :func:`load_statistics_model`).
        initial: a statistics dataset (each sample starts from its first time, with its ``reynolds`` and
            ``inverse_froude`` coordinates), or a mapping with the initial ``kinetic_energy``, ``dissipation``
            (``potential_energy`` when stratified) and ``reynolds`` (``inverse_froude``), numbers or arrays
            ``(N,)``.
        times: increasing times since the initial state, ``>= 0``; default the dataset's own times, shifted to
            start at 0.
        baselines: also return the calibrated k-epsilon (``*_k_epsilon``) and power-law (``*_power_law``)
            predictions of ``kinetic_energy`` and ``dissipation``.

    Returns:
        ``xr.Dataset`` with the predicted ``kinetic_energy``, ``dissipation`` (and ``potential_energy``) over
        ``(sample, time)`` (CF ``units``, ``long_name``), ``reynolds`` and ``inverse_froude`` coordinates along
        ``sample``, ``time`` the time since the initial state. For an ensemble of ``M`` members, each state
        variable is the geometric mean ``exp(mean_m log s_m)``, ``<name>_spread`` ``(sample, time)`` the
        standard deviation over members of ``log s_m`` (nepers; ``s * exp(+-2 spread)`` is a ~95 % interval
        if the members' logs are Gaussian) and ``<name>_members`` ``(member, sample, time)`` the members'.
        All start from the same initial state, so the spread is 0 at ``time = 0``.

    Warns:
        UserWarning: parameters outside the trained range (naming it), or times beyond the trained decay.

    Raises:
        DataError: times not increasing, non-positive or non-finite initial values (one line each).
    """
    import xarray as xr

    if not isinstance(model, (StatisticsModel, StatisticsEnsemble)):
        raise ConfigError(f"model must be a StatisticsModel or StatisticsEnsemble, got {type(model).__name__}")
    values0, parameters, t, samples, extra = _initial(model, initial, times)
    _warn_outside(model, parameters, t)
    if isinstance(model, StatisticsModel):
        predicted = np.exp(_integrate_log(model.module, values0, parameters, t))  # (N, T, S)
        data_vars = {name: (("sample", "time"), predicted[..., i], {**_ATTRS[name], "source": "neural ODE"})
                     for i, name in enumerate(model.variables)}
    else:
        logs = np.stack([_integrate_log(m.module, values0, parameters, t) for m in model.members])  # (M, N, T, S)
        count = len(model.members)
        mean, spread = logs.mean(axis=0), logs.std(axis=0, ddof=1)
        data_vars = {}
        for i, name in enumerate(model.variables):
            spread[..., i] *= model.spread_scale.get(name, 1.0)
            data_vars[name] = (("sample", "time"), np.exp(mean[..., i]),
                               {**_ATTRS[name], "source": f"neural ODE ensemble: geometric mean of {count} members"})
            data_vars[f"{name}_spread"] = (
                ("sample", "time"), spread[..., i],
                {"long_name": f"ensemble spread of log {name}: standard deviation over the {count} members",
                 "units": "1", "spread_scale": model.spread_scale.get(name, 1.0),
                 "comment": f"a relative spread (nepers), times spread_scale; interval {name} * exp(+-z * spread)"})
            data_vars[f"{name}_members"] = (("member", "sample", "time"), np.exp(logs[..., i]),
                                            {**_ATTRS[name], "source": "neural ODE ensemble member"})
    if baselines:
        k0, eps0 = (values0[:, model.variables.index(v)] for v in ("kinetic_energy", "dissipation"))
        grid = np.broadcast_to(t, (len(k0), len(t)))
        for label, baseline in (("k_epsilon", model.k_epsilon), ("power_law", model.power_law)):
            k, eps = baseline.predict(k0, eps0, grid)
            what = (f"k-epsilon model, C_eps2 = {model.k_epsilon.c_eps2:.4g}" if label == "k_epsilon" else
                    f"power law, n = {model.power_law.exponent:.4g}, t0 = {model.power_law.origin:.4g}")
            data_vars[f"kinetic_energy_{label}"] = (("sample", "time"), k, {**_ATTRS["kinetic_energy"], "source": what})
            data_vars[f"dissipation_{label}"] = (("sample", "time"), eps, {**_ATTRS["dissipation"], "source": what})
    coords = {"sample": ("sample", samples, {"long_name": "sample index", "units": "1"}),
              "time": ("time", t, {"long_name": "time since the initial state (nondimensional)", "units": "1",
                                   "axis": "T"}),
              "reynolds": ("sample", parameters[:, 0], {"long_name": "initial Reynolds number", "units": "1"}),
              "inverse_froude": ("sample", parameters[:, 1], {"long_name": "inverse initial Froude number",
                                                              "units": "1"}),
              **{name: ("sample", value, {"long_name": name.replace("_", " "), "units": "1"})
                 for name, value in extra.items()}}
    attrs = {"Conventions": "CF-1.10", "model": "neural ODE on (log K, log eps[, log K_P])",
             "trained_reynolds_range": model.parameter_range["reynolds"],
             "trained_inverse_froude_range": model.parameter_range["inverse_froude"]}
    if isinstance(model, StatisticsEnsemble):
        coords["member"] = ("member", np.arange(len(model.members)), {"long_name": "ensemble member", "units": "1"})
        attrs["ensemble_members"] = len(model.members)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _integrate_log(module: StatisticsODE, values0: np.ndarray, parameters: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``log s`` ``(N, T, S)`` float64 from ``values0`` ``(N, S)`` at the times ``t`` ``(T,)`` since the start."""
    device, dtype = module.state_mean.device, module.state_mean.dtype
    with torch.no_grad():
        z0 = module.encode_state(torch.as_tensor(values0, dtype=dtype, device=device))
        p = module.encode_parameters(torch.as_tensor(parameters, dtype=dtype, device=device))
        tau = torch.as_tensor(t - t[0], dtype=dtype, device=device) / module.time_scale
        if t[0] > 0:  # integrate from the initial state at 0, report from t[0]
            tau = torch.cat([tau.new_zeros(1), torch.as_tensor(t, dtype=dtype, device=device) / module.time_scale])
        z = module.integrate(z0, p, tau)
        if t[0] > 0:
            z = z[1:]
        return (z * module.state_scale + module.state_mean).permute(1, 0, 2).double().cpu().numpy()


def decay_errors(predicted: xr.Dataset, truth: xr.Dataset, variable: str = "dissipation") -> dict[str, float]:
    """Mean relative error ``mean_t |q_hat - q| / q`` of ``variable`` over the whole decay, averaged over the
    runs, for the neural ODE and each baseline in ``predicted`` (:func:`predict_statistics`) against
    ``truth`` (the DNS statistics at the same times since the start): ``{"node": e, "k_epsilon": e,
    "power_law": e}``."""
    reference = np.asarray(truth[variable].transpose("sample", "time").values, dtype=np.float64)
    out = {}
    for label, name in (("node", variable), ("k_epsilon", f"{variable}_k_epsilon"),
                        ("power_law", f"{variable}_power_law")):
        if name in predicted:
            value = np.asarray(predicted[name].transpose("sample", "time").values)
            if value.shape != reference.shape:
                raise DataError(f"{name} has shape {value.shape}, the reference {reference.shape}")
            out[label] = float(np.mean(np.abs(value - reference) / reference))
    return out


def interval_coverage(predicted: xr.Dataset, truth: xr.Dataset, variable: str = "dissipation", *,
                      width: float = 2.0) -> float:
    """The fraction of DNS values of ``variable`` ``(sample, time)`` inside an ensemble's interval
    ``[s exp(-width sigma), s exp(width sigma)]``, ``s`` the geometric mean and ``sigma`` the spread of
    :func:`predict_statistics` with a :class:`StatisticsEnsemble`; the initial time (where the interval
    has zero width by construction) is left out. Calibrated intervals give ~0.95 at ``width = 2`` when the
    members' logs are Gaussian; deep ensembles are often overconfident (below it)."""
    if f"{variable}_spread" not in predicted:
        raise DataError(f"the prediction has no {variable}_spread; predict with a StatisticsEnsemble")
    if not (math.isfinite(width) and width > 0):
        raise ConfigError(f"width must be a positive number, got {width!r}")
    centre = np.asarray(predicted[variable].transpose("sample", "time").values, dtype=np.float64)
    spread = np.asarray(predicted[f"{variable}_spread"].transpose("sample", "time").values, dtype=np.float64)
    reference = np.asarray(truth[variable].transpose("sample", "time").values, dtype=np.float64)
    if reference.shape != centre.shape:
        raise DataError(f"{variable} has shape {centre.shape}, the reference {reference.shape}")
    inside = np.abs(np.log(reference) - np.log(centre)) <= width * spread
    return float(inside[:, 1:].mean())
