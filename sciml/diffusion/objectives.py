"""Training objectives of function-space diffusion and flow matching, as one :class:`~sciml.train.Task`.

Every objective here has one interface, ``objective.loss(forward, model, clean, generator=g) -> (loss, logs)``:
``clean`` ``(batch, channels, *space)`` on any grid of ``model.domain``, ``forward`` the module to call (``model``
itself, or its ``torch.compile`` wrapper), ``g`` the **only** source of randomness (noise levels, times and the
noise fields; torch's global generators are never touched). :class:`DiffusionTask` trains any of them through
:func:`sciml.train.fit` with an exponential moving average of the weights.

* :class:`EDMLoss`, denoising score matching in the form of Karras et al. 2022 (arXiv:2206.00364, Table 1):
  EDM level ``ln s ~ N(P_mean, P_std^2)`` (``s = sigma sqrt(v) 0.5 / sigma_data``, see
  :mod:`sciml.diffusion.model`), ``x = x_0 + sigma xi``, loss ``lambda(sigma) |D(x; sigma) - x_0|^2`` with
  ``lambda = 1 / c_out^2 = (sigma_data^2 + v sigma^2) / (v sigma^2 sigma_data^2)``: the preconditioned network's
  target has unit pointwise variance at every level.
* :class:`VPLoss`, the variance-preserving SDE of Song et al. 2021 ("Score-based generative modeling through
  stochastic differential equations", ICLR): ``t ~ U(t_min, 1)``, ``alpha(t) = exp(-z)``, ``z = beta_min t +
  (beta_max - beta_min) t^2 / 2``, ``x_t = sqrt(alpha) x_0 + sqrt(1 - alpha) eps`` with ``eps = xi sigma_data /
  sqrt(v)`` (the noise scaled to the data's pointwise variance, so that ``x_t`` keeps it: variance preserving on
  functions), and the noise-prediction loss ``|eps_hat - eps|^2 / sigma_data^2``. As in Karras et al. 2022 (Table 1,
  "VP"), the network sees ``x_t / sqrt(alpha) = x_0 + r eps``, ``r = sqrt(expm1(z))``, i.e. the denoiser at
  ``sigma = r sigma_data / sqrt(v)``, and ``eps_hat = (x_t / sqrt(alpha) - D) / r``, so ``eps_hat - eps =
  (x_0 - D) / r`` (computed so, without the cancellation at small ``r``): the weight is ``lambda = 1 / (v sigma^2)``.
  It trains the same :class:`~sciml.diffusion.EDMDenoiser`, so every sampler takes a VP-trained model (EDM's point
  that training and sampling are separate choices).
* :class:`FlowMatchingLoss`, functional flow matching (Kerrigan et al. 2024, "Functional flow matching", AISTATS,
  arXiv:2305.17209) with the source the noise ``x_0 = xi`` (a Gaussian measure on functions), the linear path
  ``x_t = (1 - t) x_0 + t x_1`` from the data ``x_1``, ``t ~ U(0, 1)``, and the conditional velocity target
  ``x_1 - x_0``: loss ``|u(x_t, t) - (x_1 - x_0)|^2``.

``|.|^2`` is the mean over channels and grid points (on a uniform grid, the squared L2 norm over the box's volume),
then over the batch.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..errors import ConfigError
from ..train.task import Task, adamw, decay_groups
from .model import (
    ConditionedDenoiser,
    Denoiser,
    FieldModel,
    VelocityField,
)

__all__ = ["DiffusionTask", "EDMLoss", "FlowMatchingLoss", "Objective", "VPLoss"]


def _number(owner: str, name: str, value, *, low: float | None = None, high: float | None = None) -> float:
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
    ok = ok and (low is None or value > low) and (high is None or value < high)
    if not ok:
        bounds = " and ".join(f"{op} {b:g}" for op, b in ((">", low), ("<", high)) if b is not None)
        raise ConfigError(f"{owner}: {name} must be a finite number{' ' + bounds if bounds else ''}, got {value!r}")
    return float(value)


def _uniform(generator: torch.Generator, n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.rand((n,), generator=generator, dtype=torch.float64).to(device=like.device, dtype=like.dtype)


def _per_sample_mean(error: torch.Tensor) -> torch.Tensor:
    return error.pow(2).flatten(1).mean(dim=1)


def _broadcast(values: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    return values.view(-1, *([1] * (field.ndim - 1)))


class Objective:
    """The interface of a training objective. Subclasses are frozen dataclasses of their options.

    Attributes:
        trains: the kind of model the objective trains (:class:`~sciml.diffusion.Denoiser` or
            :class:`~sciml.diffusion.VelocityField`).
    """

    trains = FieldModel

    def loss(self, forward: Callable, model: FieldModel, clean: torch.Tensor, *, generator: torch.Generator
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(loss, logs)`` on ``clean`` ``(batch, channels, *space)``: means over the batch; randomness from
        ``generator`` only. ``forward(x, level)`` is the module to evaluate (``model`` or its compiled wrapper)."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class EDMLoss(Objective):
    """Denoising score matching with EDM's noise distribution and weighting (see the module doc).

    Attributes:
        p_mean, p_std: ``ln s ~ N(p_mean, p_std^2)`` for the EDM level ``s`` (Karras et al. 2022: -1.2, 1.2).

    Logs ``denoise_mse``, the unweighted ``|D(x; sigma) - x_0|^2`` over the training distribution of levels.
    """

    p_mean: float = -1.2
    p_std: float = 1.2
    trains = Denoiser

    def __post_init__(self) -> None:
        _number("EDMLoss", "p_mean", self.p_mean)
        _number("EDMLoss", "p_std", self.p_std, low=0.0)

    def loss(self, forward, model, clean, *, generator):
        grid, n = model.grid_of(clean), clean.shape[0]
        normal = torch.randn((n,), generator=generator, dtype=torch.float64).to(device=clean.device, dtype=clean.dtype)
        sigma = (self.p_mean + self.p_std * normal).exp() * model.sigma_per_level
        noise = model.draw_noise(grid, n, generator=generator, device=clean.device, dtype=clean.dtype)
        denoised = forward(clean + _broadcast(sigma, clean) * noise, sigma)
        squared = _per_sample_mean(denoised - clean)
        return (squared / model.residual_scale(sigma) ** 2).mean(), {"denoise_mse": squared.mean().detach()}


@dataclass(frozen=True, kw_only=True)
class VPLoss(Objective):
    """Noise prediction on the variance-preserving SDE (Song et al. 2021; see the module doc).

    Attributes:
        beta_min, beta_max: the linear ``beta(t) = beta_min + t (beta_max - beta_min)`` (Song et al.: 0.1, 20):
            the noise-to-data ratio ``sqrt((1 - alpha) / alpha)`` runs from ``1e-3`` at ``t_min`` to ``152`` at
            ``t = 1`` (EDM levels half of that).
        t_min: smallest time drawn (Song et al.: 1e-5).

    Logs ``denoise_mse``, the unweighted ``|D - x_0|^2`` of the equivalent denoiser.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    t_min: float = 1e-5
    trains = Denoiser

    def __post_init__(self) -> None:
        _number("VPLoss", "beta_min", self.beta_min, low=0.0)
        if _number("VPLoss", "beta_max", self.beta_max, low=0.0) <= self.beta_min:
            raise ConfigError(f"VPLoss: beta_max {self.beta_max!r} must exceed beta_min {self.beta_min!r}")
        _number("VPLoss", "t_min", self.t_min, low=0.0, high=1.0)

    def loss(self, forward, model, clean, *, generator):
        grid, n = model.grid_of(clean), clean.shape[0]
        t = self.t_min + (1 - self.t_min) * _uniform(generator, n, clean)
        z = self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2  # alpha = exp(-z)
        ratio = torch.expm1(z).sqrt()  # sqrt((1 - alpha) / alpha): x_t / sqrt(alpha) = x_0 + ratio * eps
        scale = model.sigma_data / math.sqrt(model.noise_variance)
        eps = scale * model.draw_noise(grid, n, generator=generator, device=clean.device, dtype=clean.dtype)
        denoised = forward(clean + _broadcast(ratio, clean) * eps, ratio * scale)
        eps_error = (clean - denoised) / _broadcast(ratio, clean)  # eps_hat - eps
        loss = _per_sample_mean(eps_error).mean() / model.sigma_data**2
        return loss, {"denoise_mse": _per_sample_mean(denoised - clean).mean().detach()}


@dataclass(frozen=True, kw_only=True)
class FlowMatchingLoss(Objective):
    """Functional flow matching with the noise as the source and the linear path (see the module doc); logs nothing
    besides the loss."""

    trains = VelocityField

    def loss(self, forward, model, clean, *, generator):
        grid, n = model.grid_of(clean), clean.shape[0]
        t = _uniform(generator, n, clean)
        source = model.draw_noise(grid, n, generator=generator, device=clean.device, dtype=clean.dtype)
        path = _broadcast(1 - t, clean) * source + _broadcast(t, clean) * clean
        return _per_sample_mean(forward(path, t) - (clean - source)).mean(), {}


class DiffusionTask(Task):
    """Train a denoiser or a velocity field with an objective through :func:`sciml.train.fit`.

    The data are the clean fields, ``(sample, channels, *space)`` (a tuple ``(fields,)`` or a dataset whose items
    start with the field). A :class:`~sciml.diffusion.ConditionedDenoiser` (super-resolution by an input channel)
    is trained on the same data, its condition derived from each clean field
    (:meth:`~sciml.diffusion.ConditionedDenoiser.condition_of`), or on pairs ``(fine, coarse)`` whose coarse fields
    are lifted to the fine grid. The task keeps an exponential moving average of the weights
    (``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn(ema_decay)``, updated after every step),
    validates it and keeps its best state (:meth:`validation_model`), and draws all noise from two generators it
    owns, one for training and one for validation (so validation never shifts the training noise); the EMA and both
    generator states are in :meth:`state_dict`, so a resumed run is bitwise the uninterrupted one. AdamW without
    weight decay on biases and vectors (:func:`~sciml.train.decay_groups`).

    Under ``torchrun`` every process holds the same generator state (the checkpoint restores rank 0's on every rank),
    so each process's share of a global batch is corrupted with the same draws as the other shares: correct, but the
    noise is shared across processes rather than independent.

    Args:
        model: an :class:`~sciml.diffusion.EDMDenoiser`, :class:`~sciml.diffusion.CoarseConditionedDenoiser` or
            :class:`~sciml.diffusion.NeuralVelocityField`.
        objective: :class:`EDMLoss` (default for denoisers), :class:`VPLoss` or :class:`FlowMatchingLoss` (default
            for velocity fields).
        ema_decay: the EMA's decay per step, in ``[0, 1)`` (EDM uses a half-life of ~0.5 M images).
        seed: seeds the training generator (``seed``) and the validation one (``seed + 1``).

    Attributes:
        ema: the ``AveragedModel``; ``ema.module`` is the averaged model to sample with.
    """

    def __init__(self, model: nn.Module, *, objective: Objective | None = None, ema_decay: float = 0.999,
                 seed: int = 0) -> None:
        super().__init__(model)
        if not isinstance(model, (Denoiser, VelocityField)):
            raise ConfigError(f"DiffusionTask trains a Denoiser or a VelocityField, got {type(model).__name__}")
        if objective is None:
            objective = EDMLoss() if isinstance(model, Denoiser) else FlowMatchingLoss()
        if not isinstance(objective, Objective):
            raise ConfigError(f"objective must be EDMLoss, VPLoss or FlowMatchingLoss, got {type(objective).__name__}")
        if not isinstance(model, objective.trains):
            raise ConfigError(f"{type(objective).__name__} trains a {objective.trains.__name__}, got a "
                              f"{type(model).__name__}")
        if isinstance(ema_decay, bool) or not isinstance(ema_decay, numbers.Real) or not 0 <= ema_decay < 1:
            raise ConfigError(f"ema_decay must be a number in [0, 1), got {ema_decay!r}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
        self.objective = objective
        self.ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(float(ema_decay)))
        self.generator = torch.Generator().manual_seed(int(seed))
        self.validation_generator = torch.Generator().manual_seed(int(seed) + 1)

    @staticmethod
    def _clean(batch) -> torch.Tensor:
        return batch[0] if isinstance(batch, (tuple, list)) else batch

    def _forward(self, forward, batch) -> tuple[Callable, torch.Tensor]:
        """``(forward(x, sigma), clean)``: for a :class:`~sciml.diffusion.ConditionedDenoiser` the condition is bound
        (the batch's second item lifted to the clean fields' grid, or the clean fields' own condition)."""
        clean = self._clean(batch)
        if not isinstance(self.model, ConditionedDenoiser):
            return forward, clean
        if isinstance(batch, (tuple, list)) and len(batch) > 1:
            condition = self.model.lift(batch[1].to(device=clean.device, dtype=clean.dtype), tuple(clean.shape[2:]))
        else:
            condition = self.model.condition_of(clean)
        return (lambda x, sigma: forward(x, sigma, condition)), clean

    def loss(self, model, batch):
        forward, clean = self._forward(model, batch)
        return self.objective.loss(forward, self.model, clean, generator=self.generator)

    def validate(self, model, batch) -> Mapping[str, torch.Tensor]:
        forward, clean = self._forward(model, batch)
        loss, logs = self.objective.loss(forward, model, clean, generator=self.validation_generator)
        return {"loss": loss.detach(), **logs}

    def optimizer(self, model, config):
        return adamw(decay_groups(model, config.weight_decay), config)

    def after_step(self, model, step):
        self.ema.update_parameters(model)

    def validation_model(self, model):
        return self.ema.module

    def state_dict(self) -> dict[str, Any]:
        return {"ema": self.ema.state_dict(), "generator": self.generator.get_state(),
                "validation_generator": self.validation_generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.ema.load_state_dict(state["ema"])
        self.generator.set_state(state["generator"])
        self.validation_generator.set_state(state["validation_generator"])
