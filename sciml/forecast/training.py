"""Training a forecaster: one-step pretraining, then autoregressive fine-tuning, all through ``sciml.train.fit``.

The FourCastNet recipe (Pathak et al. 2022, arXiv:2202.11214, section 3): train the one-step map
``u(t) -> u(t + dt)``, then fine-tune on two-step rollouts, the loss summed over both predicted steps
with gradients through the first (the model learns from its own outputs, which is what makes long
rollouts stable). Here the fine-tuning curriculum is a parameter (``curriculum=(2,)`` is the paper's;
``(2, 4, 8)`` lengthens it stage by stage). On the sphere every loss is area-weighted: the relative L2
error uses the grid's quadrature weights.

``spectral_weight > 0`` adds a spectral term to the rollout loss, :func:`spectral_loss`: the mean
squared log ratio of the forecast's power per spherical-harmonic degree (or Fourier shell on a periodic
box) to the truth's, at every step of the rollout, the constraint of Chattopadhyay & Hassanzadeh
(2023, "Long-term instabilities of deep learning-based digital twins of the climate system: the cause and
a solution", arXiv:2304.07029) and Guan et al. (2023, "Learning physics-constrained subgrid-scale
closures in the small-data regime for stable and accurate LES", Physica D 443, 133568): a pointwise
loss does not see small-scale power drifting away from the truth's over a rollout, a loss on the
spectrum does.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch
from torch import nn

from ..errors import ConfigError, DataError
from ..grids import Grid
from ..train import History, Task, TrainConfig, fit, relative_l2_loss, rollout_loss

if TYPE_CHECKING:
    import xarray as xr

    from ..surrogate import Surrogate

__all__ = ["RolloutTask", "fit_forecaster", "spectral_loss"]


@functools.lru_cache(maxsize=8)
def _sht(nlat: int, nlon: int, lmax: int, nodes: str, dtype: torch.dtype, device: str):
    import torch_harmonics as th

    return th.RealSHT(nlat, nlon, lmax=lmax, mmax=lmax, grid=nodes, norm="ortho").to(dtype=dtype, device=device)


def _power(x: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Power per degree ``l = 1 .. L-1`` (sphere) or shell ``1 .. min(n)//2 - 1`` (box): ``(*lead, K)``."""
    if grid.kind == "latlon":
        from ..spectral import sphere_degrees

        lmax = sphere_degrees(grid)
        coeffs = _sht(*grid.shape, lmax, grid.nodes, x.dtype, str(x.device))(x)  # (..., l, m), complex
        power = coeffs.real ** 2 + coeffs.imag ** 2
        return ((power[..., 0] + 2 * power[..., 1:].sum(-1)) / (4 * math.pi))[..., 1:]
    d = grid.ndim
    power = torch.fft.fftn(x, dim=tuple(range(-d, 0)), norm="forward").abs().pow(2)
    k = torch.meshgrid(*[torch.fft.fftfreq(n, 1.0 / n, dtype=torch.float64) * (2 * math.pi / length)
                         for n, length in zip(grid.shape, grid.lengths)], indexing="ij")
    dk = min(2 * math.pi / length for length in grid.lengths)
    shell = torch.sqrt(sum(ki ** 2 for ki in k)).div(dk).round().long().flatten().to(x.device)
    top = min(grid.shape) // 2  # shells complete in every direction
    keep = (shell >= 1) & (shell < top)
    flat = power.flatten(-d)[..., keep]
    out = flat.new_zeros((*flat.shape[:-1], top))
    return out.index_add(-1, shell[keep], flat)[..., 1:]


def spectral_loss(pred: torch.Tensor, true: torch.Tensor, *, grid: Grid, eps: float = 1e-6) -> torch.Tensor:
    r"""Mean squared log ratio of the power spectra of ``pred`` and ``true``: a scalar, 0 for equal spectra.

    .. math:: L = \operatorname{mean}_{b, c, l} \left[\ln \frac{P_{\rm pred}(l) + \epsilon_{bc}}
              {P_{\rm true}(l) + \epsilon_{bc}}\right]^2,
              \qquad \epsilon_{bc} = \mathrm{eps} \cdot \operatorname{mean}_l P_{\rm true}(l),

    over the degrees ``1 <= l < L`` that the grid resolves exactly (:func:`sciml.spectral.sphere_degrees`;
    ``l = 0``, the mean, is left to the pointwise loss), with ``P(l) = (|a_l0|^2 + 2 sum_m |a_lm|^2) / (4 pi)``
    the power of the orthonormal spherical-harmonic coefficients (as :func:`sciml.forecast.energy_spectrum`);
    on a periodic box the Fourier shells ``1 <= k < min(n) / 2``. The log ratio weighs every degree alike
    whatever its power, so the small scales, which hold little of the variance and which a relative-L2 loss
    barely sees, count as much as the large ones (Chattopadhyay & Hassanzadeh 2023, arXiv:2304.07029;
    Guan et al. 2023, Physica D 443, 133568). ``eps`` (relative to the truth's mean power per degree, not
    differentiated) keeps degrees where the truth has no power finite. Gradients flow through ``pred``.

    Shapes: ``pred``, ``true`` ``(batch, channel, *space)`` on ``grid`` (``"latlon"`` or ``"box"``).
    Reference: a field whose power at one degree is 4 times the truth's and equal elsewhere, on ``K``
    degrees, gives ``(ln 4)^2 / K``.
    """
    if pred.shape != true.shape:
        raise DataError(f"spectral_loss: pred {tuple(pred.shape)} and true {tuple(true.shape)} differ in shape")
    if grid.kind not in ("latlon", "box"):
        raise ConfigError(f"spectral_loss needs a 'latlon' or periodic 'box' grid, got a {grid.kind!r} grid")
    p, t = _power(pred, grid), _power(true, grid)  # (batch, channel, K)
    floor = eps * t.detach().mean(-1, keepdim=True) + torch.finfo(t.dtype).tiny
    return (torch.log(p + floor) - torch.log(t + floor)).pow(2).mean()


class RolloutTask(Task):
    """Autoregressive fine-tuning: ``steps`` applications of the model from one state.

    Batches are ``(past, future, ...)`` windows of :class:`sciml.data.TrajectoryWindows` with
    ``history=history, horizon=steps``: ``past`` is ``(batch, history, channel, *space)``, ``future``
    ``(batch, steps, channel, *space)``. The loss is :func:`sciml.train.rollout_loss`: the mean over the
    ``steps`` leads of the per-variable relative L2 error (area-weighted on the sphere), with gradients
    through the whole rollout; memory grows linearly in ``steps``.

    With ``history=h > 1`` (a model of :func:`~sciml.surrogate.fit_surrogate` with ``history=h`` and
    inputs equal to outputs) the model's input is the ``h`` frames stacked along channels, oldest first,
    ``(batch, h * channel, *space)``; each prediction becomes the newest frame of the next input and the
    oldest is dropped, ``x_{j+1} = [x_j[:, channel:], model(x_j)]``; the loss is the same mean over the
    leads.

    ``loss="anomaly_rel_l2"`` measures each variable's error relative to its departure from the training
    mean (the module's ``output_norm.mean``), ``||p - y|| / ||y - mean||``: the relative L2 of the
    standardised fields, as FourCastNet trains on normalised channels. It matters where a variable's
    mean dwarfs its variations (the fluid depth of shallow water: ~10 km mean, ~100 m waves), which the
    plain ``"rel_l2"`` would hardly weigh.

    ``spectral_weight=w > 0`` adds ``w`` times :func:`spectral_loss` of each predicted step to that step's
    loss (so the total is the mean over the leads of ``rel_l2 + w * spectral``): the forecast's power per
    degree is held to the truth's along the rollout, which a pointwise loss does not do at the small scales.
    """

    def __init__(self, module: nn.Module, *, grid: Grid, steps: int, loss: str = "anomaly_rel_l2",
                 history: int = 1, spectral_weight: float = 0.0) -> None:
        super().__init__(module)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"steps must be a positive integer, got {steps!r}")
        if isinstance(history, bool) or not isinstance(history, int) or history < 1:
            raise ConfigError(f"history must be a positive integer (frames in the model's input), got {history!r}")
        self.history = history
        if loss not in ("rel_l2", "anomaly_rel_l2"):
            raise ConfigError(f"loss must be 'rel_l2' or 'anomaly_rel_l2', got {loss!r}")
        if loss == "anomaly_rel_l2" and not hasattr(module, "output_norm"):
            raise ConfigError("loss 'anomaly_rel_l2' needs a module with an output_norm (a NormalizedOperator)")
        if isinstance(spectral_weight, bool) or not isinstance(spectral_weight, (int, float)) \
                or not math.isfinite(spectral_weight) or spectral_weight < 0:
            raise ConfigError(f"spectral_weight must be a finite number >= 0, got {spectral_weight!r}")
        if spectral_weight > 0 and grid.kind not in ("latlon", "box"):
            raise ConfigError(f"spectral_weight needs a 'latlon' or periodic 'box' grid, got a {grid.kind!r} grid")
        self.grid, self.steps, self.kind, self.spectral_weight = grid, steps, loss, float(spectral_weight)

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        past, future = batch[0], batch[1]  # (batch, history, C, *space), (batch, steps, C, *space)
        if past.shape[1] != self.history:
            raise DataError(f"the windows hold {past.shape[1]} past frame(s), the model takes history={self.history}; "
                            f"build them with TrajectoryWindows(history={self.history})")
        grid = self.grid.with_shape(*past.shape[3:])
        if self.kind == "rel_l2":
            per_step = functools.partial(relative_l2_loss, grid=grid, per_channel=True)
        else:
            mean = self.model.output_norm.mean.to(past.dtype).reshape(1, -1, *[1] * grid.ndim)  # (1, C, 1, ...)

            def per_step(pred, true):
                return relative_l2_loss(pred - mean, true - mean, grid=grid, per_channel=True)
        if self.spectral_weight > 0:
            pointwise, weight = per_step, self.spectral_weight

            def per_step(pred, true):
                return pointwise(pred, true) + weight * spectral_loss(pred, true, grid=grid)
        if self.history == 1:
            return rollout_loss(model, past[:, 0], future, loss=per_step)
        if future.shape[1] != self.steps:
            raise DataError(f"the windows hold {future.shape[1]} future frame(s), the task rolls out {self.steps}")
        channels = past.shape[2]
        x, total = past.flatten(1, 2), 0.0  # (batch, h C, *space): the frames oldest first
        for j in range(self.steps):  # the mean over the leads, as rollout_loss
            pred = model(x)
            total = total + per_step(pred, future[:, j])
            x = torch.cat([x[:, channels:], pred], dim=1)  # drop the oldest frame, add the newest
        return total / self.steps


def fit_forecaster(
    train: xr.Dataset,
    *,
    variables: Sequence[str],
    lag: int = 1,
    history: int = 1,
    validation: xr.Dataset | None = None,
    model: str = "sfno",
    model_options: dict | None = None,
    pretrain: TrainConfig = TrainConfig(epochs=40, batch_size=8, lr=3e-3),
    finetune: TrainConfig | None = None,
    curriculum: Sequence[int] = (2,),
    loss: str = "anomaly_rel_l2",
    spectral_weight: float = 0.0,
    log_dir: str | os.PathLike | None = None,
) -> tuple[Surrogate, dict[int, History]]:
    """Train a forecaster of ``variables`` on ``(sample, time, *space)`` trajectories.

    Stage 1 is :func:`sciml.surrogate.fit_surrogate` with ``lag`` (``inputs == outputs == variables``);
    then, for each ``k`` in ``curriculum``, :func:`sciml.train.fit` of a :class:`RolloutTask` with ``k``
    steps over windows of ``k + 1`` frames, continuing from the weights of the stage before.

    Args:
        train, validation: canonical datasets (files may be larger than memory: they are streamed).
        variables: the prognostic variables (channels, in order).
        lag: time steps of the file per model step (the lead time is ``lag`` times the file's step).
        history: frames of the state the model takes, ``lag`` steps apart (see
            :func:`~sciml.surrogate.fit_surrogate`); every stage trains on them (windows of
            ``history + k`` frames).
        model, model_options: a registered model (default SFNO, the spherical model of choice; use
            ``"fno"`` or ``"afno"`` on flat grids).
        pretrain: options of the one-step stage.
        finetune: options of each fine-tuning stage; default ``pretrain`` with a quarter of the epochs
            (at least 1) and a fifth of the learning rate, since the model starts trained.
        curriculum: rollout lengths of the fine-tuning stages, each >= 2, increasing; ``()``: none.
        loss: ``"anomaly_rel_l2"`` (default: each variable's error relative to its departure from the
            training mean, see :class:`RolloutTask`) or ``"rel_l2"``, in every stage.
        spectral_weight: weight of the spectral term (:func:`spectral_loss`) in the fine-tuning stages'
            rollout loss (see :class:`RolloutTask`); ``0`` (default): none. The one-step stage is unchanged.
        log_dir: JSON-lines logs ``steps_<k>.jsonl`` per stage (``k = 1``: pretraining).

    Returns:
        ``(surrogate, histories)``: the forecaster (``Surrogate`` with ``lead_time``; roll it out with
        :func:`sciml.forecast.forecast`) and the :class:`~sciml.train.History` of each stage by its
        rollout length (``1``: pretraining).
    """
    from ..data import TrajectoryWindows
    from ..surrogate import fit_surrogate

    variables = list(variables)
    stages = list(curriculum)
    if any(isinstance(k, bool) or not isinstance(k, int) or k < 2 for k in stages) or stages != sorted(set(stages)):
        raise ConfigError(f"curriculum must be increasing rollout lengths >= 2, e.g. (2,) or (2, 4), got {tuple(curriculum)!r}")
    finetune = finetune or dataclasses.replace(pretrain, epochs=max(1, pretrain.epochs // 4), lr=pretrain.lr / 5)
    logs = Path(log_dir) if log_dir is not None else None
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
    surrogate, first = fit_surrogate(train, inputs=variables, outputs=variables, lag=lag, history=history,
                                     validation=validation, model=model, model_options=model_options, loss=loss,
                                     config=pretrain, log_path=logs / "steps_1.jsonl" if logs else None)
    histories = {1: first}
    for k in stages:
        windows = TrajectoryWindows(train, variables=variables, history=history, horizon=k, lag=lag)
        val_windows = (TrajectoryWindows(validation, variables=variables, history=history, horizon=k, lag=lag)
                       if validation is not None else None)
        task = RolloutTask(surrogate.module, grid=surrogate.grid, steps=k, loss=loss, history=history,
                           spectral_weight=spectral_weight)
        histories[k] = fit(task, windows, val_data=val_windows, config=finetune,
                           log_path=logs / f"steps_{k}.jsonl" if logs else None)
    surrogate.provenance["forecast_training"] = {
        "curriculum": stages, "spectral_weight": float(spectral_weight), "finetune_config": dataclasses.asdict(finetune),
        "stages": {str(k): {"epochs_run": len(h), "stop_reason": h.stop_reason,
                            "final_train_loss": h[-1]["train_loss"] if h else math.nan} for k, h in histories.items()},
    }
    return surrogate, histories
