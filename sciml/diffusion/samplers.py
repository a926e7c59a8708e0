"""Sampling fields from a denoiser or a velocity field, on any grid of its domain, with a fixed number of network
evaluations.

:func:`sample_tensor` draws ``n`` fields ``(n, channels, *grid.shape)`` on ``grid``: train at 32 x 32 and sample at 64 x 64
by passing ``Grid.box(64, 64)``; the initial noise is the function-space noise of the model on that grid (the same
function on every grid for a given generator state, :mod:`sciml.diffusion.noise`). Randomness comes from
``generator`` only. Each sampler calls the model exactly :func:`evaluations` times:

* ``"heun"``: EDM's deterministic second-order sampler (Karras et al. 2022, arXiv:2206.00364, Algorithm 1) on
  ``dx/dsigma = (x - D(x; sigma)) / sigma`` over the schedule
  ``s_i = (s_max^(1/rho) + i / (N - 1) (s_min^(1/rho) - s_max^(1/rho)))^rho``, ``i < N``, ``s_N = 0``
  (their eq. 5, ``rho = 7``), Heun steps with an Euler last step to 0: ``2 N - 1`` evaluations. With ``churn > 0``
  it is their stochastic Algorithm 2 (``S_tmin = 0``, ``S_tmax = inf``, ``S_noise = 1``): before each step the
  level is raised to ``sigma_hat = sigma (1 + gamma)``, ``gamma = min(churn / N, sqrt 2 - 1)``, by adding the
  model's noise with variance ``sigma_hat^2 - sigma^2``; still ``2 N - 1`` evaluations.
* ``"trig_heun"``: the same probability-flow ODE and budget as ``"heun"`` (``2 N - 1`` evaluations, no churn), integrated
  in the coordinates of the preconditioning: ``y = c_in(sigma) x`` and the angle ``u = arctan(sigma sqrt(v) /
  sigma_data)`` (:mod:`sciml.diffusion.model`), in which it reads ``dy/du = -F``, ``F = (D(x; sigma) - c_skip x) /
  c_out`` the preconditioned network's output (the trigonometric flow of Lu & Song 2024, "Simplifying, stabilizing
  and scaling continuous-time consistency models", arXiv:2410.11081, here from the pointwise EDM scalings): Heun
  steps in ``u`` over the angles of the levels ``s_i``, an Euler last step to ``u = 0``, and ``x = sigma_data y``.
  Where the data's Gaussian part is the noise's up to scale (a
  :class:`~sciml.diffusion.SpectrumMatchedField`), ``F`` is only the non-Gaussian part and vanishes for Gaussian
  data: the sampler is then exact at any budget, where ``"heun"`` with 18 steps leaves the energy of every mode
  11 % too high (its discretisation error on ``x ~ sqrt(sigma_data^2 + v sigma^2)``).
* ``"euler_maruyama"``: the reverse-time SDE of the variance-exploding forward process ``dx = sqrt(d[sigma^2]) dW_C``
  (``W_C`` the Wiener process of the noise's covariance ``C``; Song et al. 2021, "Score-based generative modeling
  through SDEs", eq. 6, in function space Lim et al. 2023, Kerrigan et al. 2023), with ``C grad log p_sigma(x) =
  (D(x; sigma) - x) / sigma^2`` (Tweedie), discretised by Euler-Maruyama in ``sigma^2`` on the same schedule:
  ``x <- x + (sigma_i^2 - sigma_{i+1}^2) / sigma_i^2 (D(x; sigma_i) - x) + sqrt(sigma_i^2 - sigma_{i+1}^2) xi``,
  ``xi ~ C``, and a last noise-free step ``x <- D(x; sigma_{N-1})``: ``N`` evaluations.
* ``"ode"`` for a denoiser: the probability-flow ODE ``dx/dsigma = (x - D(x; sigma)) / sigma`` (Song et al. 2021,
  Karras et al. 2022 eq. 3) integrated by ``torchdiffeq.odeint`` with the fixed-step ``method`` on the ``N + 1``
  levels ``s_0 = s_max, ..., s_N = s_min`` (eq. 5 with ``N + 1`` points); the result is the state at ``s_min``
  (noise of EDM level ``s_min`` left): ``stages(method) N`` evaluations.
* ``"ode"`` for a velocity field (functional flow matching, Kerrigan et al. 2024, arXiv:2305.17209): ``dx/dt = u(x, t)``
  from the noise at ``t = 0`` to ``t = 1`` on ``N`` uniform steps of ``method``: ``stages(method) N`` evaluations.

Noise levels ``sigma_min``, ``sigma_max`` are EDM levels ``s`` (defaults EDM's 0.002 and 80); the model's noise
multiplier is ``sigma = s * model.sigma_per_level`` (:mod:`sciml.diffusion.model`), so the defaults fit any data
amplitude and noise covariance.
"""

from __future__ import annotations

import itertools
import math
import numbers

import torch

from ..errors import ConfigError, DataError
from ..grids import Grid
from .model import Denoiser, FieldModel, VelocityField

__all__ = ["ODE_STAGES", "SAMPLERS", "edm_schedule", "evaluations", "sample_tensor"]

#: Samplers of a denoiser and of a velocity field, the first of each its default.
SAMPLERS = {Denoiser: ("heun", "trig_heun", "euler_maruyama", "ode"), VelocityField: ("ode",)}
#: Network evaluations per step of torchdiffeq's fixed-step methods (``"rk4"`` is its 3/8 rule).
ODE_STAGES = {"euler": 1, "midpoint": 2, "rk4": 4}
#: Default steps per sampler (EDM's 18 Heun steps = 35 evaluations).
DEFAULT_STEPS = {"heun": 18, "trig_heun": 18, "euler_maruyama": 256, "ode": 16}


def _finite(name: str, value, *, low: float = 0.0, strict: bool = True) -> float:
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
    if not (ok and (value > low if strict else value >= low)):
        raise ConfigError(f"{name} must be a finite number {'>' if strict else '>='} {low:g}, got {value!r}")
    return float(value)


def _steps(sampler: str, steps) -> int:
    if steps is None:
        return DEFAULT_STEPS[sampler]
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ConfigError(f"steps must be an integer >= 1 (a budget of {steps!r} network evaluations is none); "
                          f"{sampler!r} takes e.g. {DEFAULT_STEPS[sampler]}")
    return int(steps)


def _kind(model) -> type:
    for kind in SAMPLERS:
        if isinstance(model, kind):
            return kind
    raise ConfigError(f"sample takes a sciml.diffusion Denoiser or VelocityField, got {type(model).__name__}")


def evaluations(sampler: str, steps: int, *, method: str = "rk4") -> int:
    """Network evaluations of ``steps`` steps of ``sampler``: ``"heun"`` and ``"trig_heun"`` ``2 steps - 1``, ``"euler_maruyama"``
    ``steps``, ``"ode"`` ``ODE_STAGES[method] * steps``."""
    if sampler in ("heun", "trig_heun"):
        return 2 * steps - 1
    if sampler == "euler_maruyama":
        return steps
    if sampler == "ode":
        if method not in ODE_STAGES:
            raise ConfigError(f"method must be one of {', '.join(ODE_STAGES)} (fixed steps: a fixed budget), "
                              f"got {method!r}")
        return ODE_STAGES[method] * steps
    raise ConfigError(f"unknown sampler {sampler!r}; choose one of heun, trig_heun, euler_maruyama, ode")


def edm_schedule(points: int, *, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> torch.Tensor:
    """The EDM levels ``s_i = (s_max^(1/rho) + i / (points - 1) (s_min^(1/rho) - s_max^(1/rho)))^rho``, ``i = 0 ..
    points - 1`` (Karras et al. 2022, eq. 5), float64 ``(points,)``, from ``sigma_max`` down to ``sigma_min``
    (``[sigma_max]`` for one point)."""
    if points == 1:
        return torch.tensor([float(sigma_max)], dtype=torch.float64)
    ramp = torch.linspace(0, 1, points, dtype=torch.float64)
    top, bottom = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return (top + ramp * (bottom - top)) ** rho


def sample_tensor(model: FieldModel, grid: Grid, n: int, *, sampler: str | None = None, steps: int | None = None,
           generator: torch.Generator | None = None, sigma_min: float = 0.002, sigma_max: float = 80.0,
           rho: float = 7.0, churn: float = 0.0, method: str = "rk4", device: torch.device | str | None = None,
           dtype: torch.dtype | None = None) -> torch.Tensor:
    """Draw ``n`` fields on ``grid`` from ``model``: ``(n, model.channels, *grid.shape)`` (the tensor form of
    :func:`sciml.diffusion.sample`, which returns an ``xr.Dataset``).

    Args:
        model: a :class:`~sciml.diffusion.Denoiser` (e.g. ``task.ema.module`` of a trained
            :class:`~sciml.diffusion.DiffusionTask`) or a :class:`~sciml.diffusion.VelocityField`; left in its mode.
        grid: a ``Grid.box`` of the model's domain (the same lengths), at any resolution.
        n: number of fields, >= 1.
        sampler: ``"heun"`` (default for denoisers), ``"trig_heun"``, ``"euler_maruyama"``, ``"ode"`` (the only and default one for
            velocity fields); see the module doc.
        steps: ``N``; the model is called exactly :func:`evaluations` ``(sampler, N, method=method)`` times.
        generator: the only source of randomness (the initial noise; churn and SDE noise); ``None``: torch's global
            generator of its device. The noise is drawn on the generator's device and moved to ``device``.
        sigma_min, sigma_max, rho: EDM levels of the schedule's ends and its exponent (denoisers).
        churn: EDM's ``S_churn`` of the ``"heun"`` sampler (0: deterministic).
        method: torchdiffeq's fixed-step method of ``"ode"``: ``"euler"``, ``"midpoint"`` or ``"rk4"``.
        device, dtype: of the fields; default the model's parameters' (CPU and torch's default dtype for a model
            without parameters).

    Raises:
        ConfigError: a budget of zero steps, an option out of range (NaN included), a sampler the model does not
            take, a grid on another domain.
        DataError: the samples are not finite (a diverged model).
    """
    kind = _kind(model)
    sampler = SAMPLERS[kind][0] if sampler is None else sampler
    if sampler not in SAMPLERS[kind]:
        raise ConfigError(f"sampler {sampler!r} does not apply to a {kind.__name__}; choose one of "
                          f"{', '.join(SAMPLERS[kind])}")
    steps = _steps(sampler, steps)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ConfigError(f"the number of samples n must be an integer >= 1, got {n!r}")
    evaluations(sampler, steps, method=method)  # refuses a method without a fixed number of stages
    sigma_min, sigma_max = _finite("sigma_min", sigma_min), _finite("sigma_max", sigma_max)
    if sigma_min >= sigma_max:
        raise ConfigError(f"sigma_min {sigma_min!r} must be below sigma_max {sigma_max!r}")
    rho, churn = _finite("rho", rho), _finite("churn", churn, strict=False)
    model.check_grid(grid)
    parameter = next(iter(model.parameters()), None)
    device = torch.device(device) if device is not None else (parameter.device if parameter is not None else "cpu")
    dtype = dtype if dtype is not None else (parameter.dtype if parameter is not None else torch.get_default_dtype())

    def noise() -> torch.Tensor:
        return model.draw_noise(grid, int(n), generator=generator, device=device, dtype=dtype)

    with torch.no_grad():
        if kind is VelocityField:
            fields = _flow(model, noise(), steps, method)
        else:
            levels = edm_schedule(steps + (sampler == "ode"), sigma_min=sigma_min, sigma_max=sigma_max, rho=rho)
            sigmas = (levels * model.sigma_per_level).tolist()
            start = sigmas[0] * noise()
            if sampler == "heun":
                fields = _heun(model, start, sigmas, churn, noise)
            elif sampler == "trig_heun":
                fields = _trig_heun(model, start, sigmas)
            elif sampler == "euler_maruyama":
                fields = _euler_maruyama(model, start, sigmas, noise)
            else:
                fields = _probability_flow(model, start, sigmas, method)
    if not bool(torch.isfinite(fields).all()):
        raise DataError(f"the {sampler!r} sampler gave non-finite fields: the model's weights or outputs are not "
                        f"finite (a diverged training run?)")
    return fields


def _heun(model: Denoiser, x: torch.Tensor, sigmas: list[float], churn: float, noise) -> torch.Tensor:
    """Karras et al. 2022, Algorithm 2 (Algorithm 1 for ``churn = 0``); ``sigmas`` ``N`` levels, then 0."""
    levels = [*sigmas, 0.0]
    gamma = min(churn / len(sigmas), math.sqrt(2) - 1)
    for sigma, following in itertools.pairwise(levels):
        if gamma > 0:
            raised = sigma * (1 + gamma)
            x = x + math.sqrt(raised**2 - sigma**2) * noise()
            sigma = raised
        slope = (x - model(x, sigma)) / sigma
        proposal = x + (following - sigma) * slope
        if following > 0:
            corrected = (proposal - model(proposal, following)) / following
            proposal = x + (following - sigma) * 0.5 * (slope + corrected)
        x = proposal
    return x


def _trig_heun(model: Denoiser, x: torch.Tensor, sigmas: list[float]) -> torch.Tensor:
    """Heun on ``dy/du = -F`` (``y = c_in x``, ``u = arctan(sigma sqrt(v) / sigma_data)``) over ``sigmas``, then
    an Euler step to ``u = 0``; returns ``x = sigma_data y`` (the module doc)."""
    data, root_v = model.sigma_data, math.sqrt(model.noise_variance)

    def scalings(angle: float) -> tuple[float, float, float, float]:  # sigma, c_in, c_skip, c_out
        sigma = math.tan(angle) * data / root_v
        total = data**2 + (sigma * root_v) ** 2
        return sigma, total**-0.5, data**2 / total, sigma * root_v * data / math.sqrt(total)

    def network(y: torch.Tensor, angle: float) -> torch.Tensor:
        sigma, c_in, c_skip, c_out = scalings(angle)
        state = y / c_in
        return (model(state, sigma) - c_skip * state) / c_out

    angles = [math.atan(sigma * root_v / data) for sigma in sigmas] + [0.0]
    y = x * scalings(angles[0])[1]
    for angle, following in itertools.pairwise(angles):
        slope = -network(y, angle)
        proposal = y + (following - angle) * slope
        if following > 0:
            proposal = y + (following - angle) * 0.5 * (slope - network(proposal, following))
        y = proposal
    return data * y


def _euler_maruyama(model: Denoiser, x: torch.Tensor, sigmas: list[float], noise) -> torch.Tensor:
    """The reverse SDE by Euler-Maruyama in ``sigma^2`` over ``sigmas`` and a last step ``x <- D(x; sigma_{N-1})``."""
    for sigma, following in itertools.pairwise(sigmas):
        drop = sigma**2 - following**2
        x = x + drop / sigma**2 * (model(x, sigma) - x) + math.sqrt(drop) * noise()
    return model(x, sigmas[-1])


def _odeint(field, x: torch.Tensor, times: torch.Tensor, method: str) -> torch.Tensor:
    """``x`` carried along ``dx/dt = field(t, x)`` through the fixed grid ``times`` by torchdiffeq; the end state."""
    from torchdiffeq import odeint

    ends = times[[0, -1]]
    path = odeint(field, x, ends, method=method, options={"grid_constructor": lambda func, y0, t: times})
    return path[-1]


def _probability_flow(model: Denoiser, x: torch.Tensor, sigmas: list[float], method: str) -> torch.Tensor:
    times = torch.tensor(sigmas, dtype=x.dtype, device=x.device)
    return _odeint(lambda sigma, state: (state - model(state, sigma)) / sigma, x, times, method)


def _flow(model: VelocityField, x: torch.Tensor, steps: int, method: str) -> torch.Tensor:
    times = torch.linspace(0, 1, steps + 1, dtype=x.dtype, device=x.device)
    return _odeint(lambda t, state: model(state, t), x, times, method)
