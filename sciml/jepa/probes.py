"""Probes on frozen features, split-conformal intervals, label-efficiency curves and the supervised baseline.

* :func:`embed`: the frozen representation of whole trajectories, the mean over a fixed tiling of windows
  (deterministic: up to 4 evenly spaced time starts; space starts every ``size_x / shifts`` points, default
  ``shifts = 4``, so every point is seen at 4 positions inside a window). On the periodic grid a translation is an
  exact symmetry, and averaging a non-invariant encoder over translations (the group average, or Reynolds
  operator) removes the part of the representation that depends only on where the windows fall: on the Burgers
  benchmark the window-to-window variance of the features is as large as their spread across trajectories, and
  4 shifts instead of 1 cut the ridge probe's test error by a factor of 2.3 to 2.8 (``docs/jepa.md``).
* :class:`RidgeProbe`: closed-form ridge regression of log-coefficients on centred features divided by one
  global scale (the root mean per-feature variance, not each feature's own std, so that near-constant, noisy
  embedding dimensions are not blown up to unit variance), its penalty chosen by exact leave-one-out error over
  a grid (Hastie, Tibshirani & Friedman 2009, eq. 7.52 generalised: ``e_i / (1 - H_ii)`` with the ridge hat
  matrix ``H = 1/n + U diag(s^2 / (s^2 + alpha)) U^T``).
* :class:`MLPProbe`: a small MLP head (one hidden layer) trained through :func:`sciml.train.fit`.
* :func:`conformal_quantile`: split-conformal half-widths (Vovk et al. 2005; Lei et al. 2018, "Distribution-free
  predictive inference for regression", JASA): with ``m`` calibration residuals ``|y - y_hat|``, the
  ``ceil((m + 1) level)``-th smallest covers a new exchangeable truth with probability ``>= level``.
* :func:`label_efficiency`: relative error of the coefficient against the number of labelled trajectories.
* :class:`SupervisedTask` / :func:`supervised_baseline`: the same encoder and a linear head trained from scratch
  on the labels, on random augmented crops, for a given number of optimiser steps (the baseline of Mialon et al.
  2023, arXiv:2307.05432).
* :class:`CoefficientModel` / :func:`fit_probe`: a pretrained encoder with a ridge probe and its conformal
  half-widths, what :func:`sciml.jepa.discover` applies.

Coefficients are regressed in log space (they are log-uniform); the relative error reported is
``mean |c_hat - c| / c`` with ``c_hat = exp(log-prediction)``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, DataError
from ..train.task import Task, adamw, decay_groups
from .encoder import EncoderConfig, JEPAModel
from .objectives import augment
from .views import CropOffsets, crop

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["embed", "RidgeProbe", "MLPProbe", "conformal_quantile", "relative_error", "label_efficiency",
           "SupervisedRegressor", "SupervisedTask", "supervised_baseline", "CoefficientModel", "fit_probe",
           "LABEL_BUDGETS"]

#: Label budgets of the label-efficiency curves (trajectories).
LABEL_BUDGETS = (16, 64, 256, 1024)
#: The ridge penalties searched by leave-one-out (on features of unit root-mean-square, ``n`` rows: the
#: penalty is relative to ``||x||_F^2 = n F``).
_ALPHAS = tuple(float(10.0 ** k) for k in np.arange(-6.0, 6.01, 0.5))


def _tiling(frames: int, space: Sequence[int], size_t: int, size_x: Sequence[int],
            shifts: int = 1) -> list[tuple[int, tuple[int, ...]]]:
    starts_t = sorted({int(round(v)) for v in np.linspace(0, frames - size_t, min(4, frames - size_t + 1))})
    grids = [range(0, n, max(1, s // shifts)) for n, s in zip(space, size_x)]
    mesh = np.stack(np.meshgrid(*[np.asarray(g) for g in grids], indexing="ij"), -1).reshape(-1, len(space))
    return [(t, tuple(int(v) for v in x)) for t in starts_t for x in mesh]


@torch.no_grad()
def embed(model: JEPAModel, trajectories: torch.Tensor, *, batch_size: int = 64, shifts: int = 4) -> torch.Tensor:
    """Frozen representation of trajectories ``(sample, time, channel, *space) -> (sample, F)`` float64: the mean
    of :meth:`JEPAModel.represent` over a fixed tiling of ``(size_t, size_x)`` windows (module doc), periodic in
    space: up to 4 evenly spaced time starts times, along each spatial dim, starts every ``size_x // shifts``
    points (``shifts = 1``: windows that tile the domain once; the default 4 averages over translations by a
    quarter window, see the module doc). Cost grows as ``shifts ** d``."""
    if isinstance(shifts, bool) or not isinstance(shifts, numbers.Integral) or shifts < 1:
        raise ConfigError(f"shifts must be an integer >= 1, got {shifts!r}")
    spec = model.spec
    size_t, size_x = int(spec["size_t"]), [int(s) for s in spec["size_x"]]
    frames, space = trajectories.shape[1], tuple(trajectories.shape[3:])
    tiles = _tiling(frames, space, size_t, size_x, int(shifts))
    model = model.eval()
    device = model.scale.device
    out = []
    for start in range(0, len(trajectories), batch_size):
        chunk = trajectories[start:start + batch_size].to(device=device, dtype=torch.float32)
        total = 0
        for t0, x0 in tiles:
            offsets = CropOffsets(torch.full((len(chunk),), t0, dtype=torch.long),
                                  torch.tensor([x0] * len(chunk), dtype=torch.long))
            total = total + model.represent(crop(chunk, size_t=size_t, size_x=size_x, offsets=offsets)).double()
        out.append((total / len(tiles)).cpu())
    return torch.cat(out) if out else torch.zeros(0, model.encoder.features, dtype=torch.float64)


def _world_size() -> int:
    """The processes :func:`sciml.train.fit` will train on: ``torch.distributed``'s world when initialised, else
    ``WORLD_SIZE`` (set by ``torchrun``), else 1."""
    import os

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return max(1, int(os.environ.get("WORLD_SIZE", "1") or 1))


def _batch(wanted: int, n: int, world: int) -> int:
    """A global batch near ``min(wanted, n)`` that ``world`` divides (the loop refuses others): rounded down to a
    multiple of ``world``, at least ``world``; a last batch of one item is avoided when possible."""
    b = max(world, min(wanted, n) // world * world)
    if n % b == 1 and b - world >= world:
        b -= world
    return b


def _matrix(x, name: str) -> torch.Tensor:
    x = torch.as_tensor(np.array(x) if not isinstance(x, torch.Tensor) else x).to(torch.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or not bool(torch.isfinite(x).all()):
        raise DataError(f"{name} must be a finite (n, k) array, got shape {tuple(x.shape)}")
    return x


@dataclass
class RidgeProbe:
    """Ridge regression ``y = (x - mean) / std @ weight + bias`` fitted in closed form (module doc).

    :meth:`fit` centres each feature and divides all of them by one scale,
    ``std = sqrt(mean_j var(x_j))`` (unbiased variances): the features keep their relative sizes, so a
    near-constant dimension carrying only noise stays negligible instead of being standardised to unit
    variance (per-feature standardisation gives such a dimension the weight of an informative one). The
    ridge penalty then acts on features of unit root-mean-square.

    Attributes:
        weight: ``(F, k)``; bias ``(k,)``; x_mean ``(F,)``: the feature means; x_std ``(F,)``: the divisor of
            each feature, the one global scale repeated by :meth:`fit` (probes saved before that change hold
            per-feature stds; :meth:`predict` applies whichever is stored, so they predict as they were fitted).
        alpha: the penalty chosen by leave-one-out error (or the one given).
        loo_mse: mean leave-one-out squared error at ``alpha`` (per target, averaged).
    """

    weight: torch.Tensor
    bias: torch.Tensor
    x_mean: torch.Tensor
    x_std: torch.Tensor
    alpha: float
    loo_mse: float

    @classmethod
    def fit(cls, features, targets, *, alphas: Sequence[float] = _ALPHAS) -> RidgeProbe:
        """Fit on ``features`` ``(n, F)`` and ``targets`` ``(n, k)`` (or ``(n,)``), ``n >= 3``; the penalty is the
        ``alphas`` value (default ``10^-6 .. 10^6``, half-decade steps) with the smallest exact leave-one-out
        error. Features are centred and divided by one global scale (class doc)."""
        x, y = _matrix(features, "features"), _matrix(targets, "targets")
        if len(x) != len(y) or len(x) < 3:
            raise DataError(f"ridge needs >= 3 rows of features and targets alike, got {len(x)} and {len(y)}")
        mean = x.mean(0)
        std = x.var(0).mean().sqrt().clamp_min(1e-12).expand(x.shape[1]).clone()
        xs = (x - mean) / std
        y_mean = y.mean(0)
        u, s, vh = torch.linalg.svd(xs, full_matrices=False)
        uty = u.T @ (y - y_mean)
        best = None
        for alpha in alphas:
            shrink = s / (s**2 + alpha)
            fitted = u @ ((s * shrink)[:, None] * uty)
            hat = (u**2 @ (s * shrink)) + 1 / len(x)
            loo = ((y - y_mean - fitted) / (1 - hat)[:, None]).pow(2).mean().item()
            if best is None or loo < best[1]:
                best = (float(alpha), loo, vh.T @ (shrink[:, None] * uty))
        alpha, loo, weight = best
        return cls(weight, y_mean, mean, std, alpha, loo)

    def predict(self, features) -> torch.Tensor:
        """Predictions ``(n, k)`` for features ``(n, F)``."""
        x = _matrix(features, "features")
        return (x - self.x_mean) / self.x_std @ self.weight + self.bias

    def state(self) -> dict[str, Any]:
        """Tensors and numbers to save (``torch.load(weights_only=True)`` reads them back)."""
        return {"weight": self.weight, "bias": self.bias, "x_mean": self.x_mean, "x_std": self.x_std,
                "alpha": self.alpha, "loo_mse": self.loo_mse}


class _RegressionTask(Task):
    def loss(self, model, batch):
        x, y = batch
        return (model(x) - y).pow(2).mean()


class MLPProbe(nn.Module):
    """A one-hidden-layer MLP head on standardised features ``(n, F) -> (n, k)``, trained by :meth:`fit`."""

    def __init__(self, features: int, targets: int, *, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.GELU(), nn.Linear(hidden, targets))
        self.register_buffer("x_mean", torch.zeros(features))
        self.register_buffer("x_std", torch.ones(features))
        self.register_buffer("y_mean", torch.zeros(targets))
        self.register_buffer("y_std", torch.ones(targets))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @classmethod
    def fit(cls, features, targets, *, hidden: int = 64, epochs: int = 300, lr: float = 3e-3,
            weight_decay: float = 1e-3, seed: int = 0) -> MLPProbe:
        """Fit on ``features`` ``(n, F)`` and ``targets`` ``(n, k)`` with :func:`sciml.train.fit` (AdamW, cosine
        schedule, MSE on standardised targets), in batches of ``min(n, 64)`` rounded down to a multiple of the
        number of processes (under ``torchrun`` every rank must call it with the same data; the gradients are
        averaged over the ranks, so each holds the same probe)."""
        from ..train import TrainConfig, fit

        x, y = _matrix(features, "features").float(), _matrix(targets, "targets").float()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            probe = cls(x.shape[1], y.shape[1], hidden=hidden)
        probe.x_mean.copy_(x.mean(0))
        probe.x_std.copy_(x.std(0).clamp_min(1e-6) if len(x) > 1 else torch.ones(x.shape[1]))
        probe.y_mean.copy_(y.mean(0))
        probe.y_std.copy_(y.std(0).clamp_min(1e-6) if len(y) > 1 else torch.ones(y.shape[1]))
        xs, ys = (x - probe.x_mean) / probe.x_std, (y - probe.y_mean) / probe.y_std
        config = TrainConfig(epochs=epochs, batch_size=_batch(64, len(x), _world_size()), lr=lr,
                             weight_decay=weight_decay, device="cpu", progress=False, seed=seed, grad_clip=None)
        fit(_RegressionTask(probe), (xs, ys), config=config)
        return probe.eval()

    @torch.no_grad()
    def predict(self, features) -> torch.Tensor:
        """Predictions ``(n, k)`` float64 for features ``(n, F)``."""
        x = _matrix(features, "features").float()
        return (self((x - self.x_mean) / self.x_std) * self.y_std + self.y_mean).double()


def conformal_quantile(residuals, *, level: float = 0.9) -> torch.Tensor:
    """Split-conformal half-width per target from calibration residuals ``|y - y_hat|`` ``(m, k)``: the
    ``ceil((m + 1) level)``-th smallest (``inf`` when that exceeds ``m``), ``(k,)``."""
    r = _matrix(residuals, "residuals").abs()
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1), got {level!r}")
    m = len(r)
    rank = math.ceil((m + 1) * level)
    if rank > m:
        return torch.full((r.shape[1],), math.inf, dtype=torch.float64)
    return torch.sort(r, dim=0).values[rank - 1]


def relative_error(log_prediction, truth) -> float:
    """``mean |exp(log_prediction) - truth| / truth`` over all entries (``truth > 0``)."""
    p, t = _matrix(log_prediction, "log_prediction"), _matrix(truth, "truth")
    return float(((p.exp() - t).abs() / t).mean())


def _budgets(budgets: Sequence[int], available: int) -> tuple[list[int], str | None]:
    kept = [int(b) for b in budgets if b <= available]
    note = None
    if len(kept) < len(budgets):
        note = f"label budgets above {available} (the labelled trajectories available) left out"
        if not kept:
            kept = [available]
    return kept, note


def label_efficiency(train_features, train_coefficients, test_features, test_coefficients, *,
                     budgets: Sequence[int] = LABEL_BUDGETS, probe: str = "linear", seed: int = 0
                     ) -> dict[str, Any]:
    """Relative error on the test set of a probe fitted on the first ``b`` labelled trajectories of a fixed random
    order, for each budget ``b``.

    Args:
        train_features, test_features: ``(n, F)``; coefficients ``(n, k)`` or ``(n,)``, positive (regressed as logs).
        budgets: labelled trajectories; those above ``n`` are left out (said in ``note``).
        probe: ``"linear"`` (:class:`RidgeProbe`) or ``"mlp"`` (:class:`MLPProbe`).

    Returns:
        ``{"budgets": [...], "relative_error": [...], "note": str | None}``, and for the linear probe
        ``"alpha": [...]``, the ridge penalty leave-one-out chose at each budget.
    """
    if probe not in ("linear", "mlp"):
        raise ConfigError(f"probe must be 'linear' or 'mlp', got {probe!r}")
    x, c = _matrix(train_features, "train_features"), _matrix(train_coefficients, "train_coefficients")
    kept, note = _budgets(budgets, len(x))
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(x)))
    errors, alphas = [], []
    for b in kept:
        idx = order[:b]
        head = (RidgeProbe.fit(x[idx], c[idx].log()) if probe == "linear"
                else MLPProbe.fit(x[idx], c[idx].log(), seed=seed))
        errors.append(relative_error(head.predict(test_features), test_coefficients))
        if probe == "linear":
            alphas.append(head.alpha)
    curve = {"budgets": kept, "relative_error": errors, "note": note}
    if probe == "linear":
        curve["alpha"] = alphas
    return curve


class SupervisedRegressor(nn.Module):
    """The encoder of :class:`~sciml.jepa.encoder.JEPAModel` with a linear head on its representation:
    windows ``(batch, time, channel, *space) -> (batch, k)`` standardised log-coefficients."""

    def __init__(self, network: JEPAModel, targets: int) -> None:
        super().__init__()
        self.network = network
        self.head = nn.Linear(network.encoder.features, targets)
        self.register_buffer("y_mean", torch.zeros(targets, dtype=torch.float64))
        self.register_buffer("y_std", torch.ones(targets, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.network.represent(x))

    @torch.no_grad()
    def predict(self, trajectories: torch.Tensor) -> torch.Tensor:
        """Log-coefficients ``(sample, k)`` of whole trajectories: the head on the tiled mean representation
        (:func:`embed`; the head is linear, so this is the mean of the per-window predictions)."""
        h = embed(self.network, trajectories)
        w, b = self.head.weight.double().cpu(), self.head.bias.double().cpu()
        return (h @ w.T + b) * self.y_std.cpu() + self.y_mean.cpu()


class SupervisedTask(Task):
    """Supervised regression from scratch: batch ``(trajectory (b, time, channel, *space), target (b, k))`` with
    standardised log-coefficient targets; one random augmented crop per trajectory (the views of
    :class:`~sciml.jepa.objectives.VICRegTask`, from a generator the task owns and checkpoints); MSE."""

    def __init__(self, model: SupervisedRegressor, *, times: torch.Tensor, size_t: int, size_x: int,
                 augment: bool = True, max_boost: float = 0.5, length: float = 1.0, seed: int = 0) -> None:
        super().__init__(model)
        self.times = torch.as_tensor(times, dtype=torch.float64)
        self.size_t, self.size_x, self.augment, self.max_boost, self.length = size_t, size_x, augment, max_boost, length
        self.generator = torch.Generator().manual_seed(int(seed))

    def loss(self, model, batch):
        x, y = batch
        if self.augment:
            x = augment(x, self.times.to(x.device), generator=self.generator, max_boost=self.max_boost,
                        length=self.length)
        window = crop(x, size_t=self.size_t, size_x=self.size_x, generator=self.generator)
        return (model(window) - y.to(window.dtype)).pow(2).mean()

    def optimizer(self, model, config):
        return adamw(decay_groups(model, config.weight_decay), config)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"])


def supervised_baseline(trajectories: torch.Tensor, coefficients, *, encoder: EncoderConfig, spec: Mapping[str, Any],
                        times, steps: int, batch_size: int = 32, lr: float = 1e-3, seed: int = 0,
                        augment: bool = True, max_boost: float = 0.5, progress: bool = False
                        ) -> tuple[SupervisedRegressor, int]:
    """Train the encoder with a linear head from scratch on labelled trajectories for about ``steps`` steps.

    Args:
        trajectories: ``(n, time, channel, *space)``; coefficients ``(n, k)`` positive (regressed as logs).
        encoder, spec: the network shape and the crop / grid description of the self-supervised model.
        steps: the optimiser steps to match; the run has ``epochs = round(steps / ceil(n / batch_size))``
            (at least 1) epochs.
        batch_size: at most this many trajectories a step, rounded down to a multiple of the number of processes
            (``torchrun``; the loop needs the global batch divisible by it) and lowered so that no last batch
            holds a single trajectory when avoidable.

    Returns:
        ``(regressor, steps_taken)``.
    """
    from ..train import TrainConfig, fit

    c = _matrix(coefficients, "coefficients")
    if len(c) != len(trajectories) or len(c) < 2:
        raise DataError(f"need >= 2 labelled trajectories with one coefficient row each, got {len(trajectories)} "
                        f"and {len(c)}")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ConfigError(f"steps must be an integer >= 1, got {steps!r}")
    batch_size = _batch(batch_size, len(c), _world_size())
    per_epoch = -(-len(c) // batch_size)
    epochs = max(1, round(steps / per_epoch))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = JEPAModel(encoder, spec=dict(spec), scale=float(trajectories.std()))
        model = SupervisedRegressor(network, c.shape[1])
    log_c = c.log()
    model.y_mean.copy_(log_c.mean(0))
    model.y_std.copy_(log_c.std(0).clamp_min(1e-6))
    targets = ((log_c - model.y_mean) / model.y_std).float()
    task = SupervisedTask(model, times=times, size_t=int(spec["size_t"]), size_x=int(spec["size_x"][0]),
                          augment=augment, max_boost=max_boost, length=float(spec["length"][-1]), seed=seed)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, device="cpu", progress=progress, seed=seed)
    fit(task, (trajectories.float(), targets), config=config)
    return model.cpu().eval(), epochs * per_epoch


@dataclass
class CoefficientModel:
    """A pretrained encoder with a ridge probe of log-coefficients and split-conformal half-widths.

    Attributes:
        model: the frozen :class:`~sciml.jepa.encoder.JEPAModel`.
        names: the coefficients, e.g. ``["viscosity"]``.
        probe: :class:`RidgeProbe` on :func:`embed` features, predicting ``log(c)`` ``(n, k)``.
        half_width: ``(k,)`` conformal half-widths of the log-coefficients at ``level``.
        level: nominal coverage of the intervals ``exp(log c_hat +- half_width)``.
        calibration: how many labelled trajectories calibrated the intervals (the rest fitted the probe).
        attrs: the coefficients' coordinate attributes (``long_name``, ``units``).
    """

    model: JEPAModel
    names: list[str]
    probe: RidgeProbe
    half_width: torch.Tensor
    level: float
    calibration: int
    attrs: dict

    def predict(self, features) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(estimate, lower, upper)`` coefficients ``(n, k)`` for features ``(n, F)``."""
        log_c = self.probe.predict(features)
        return log_c.exp(), (log_c - self.half_width).exp(), (log_c + self.half_width).exp()


def fit_probe(model: JEPAModel, data: xr.Dataset | str, *, coefficients: Sequence[str] = ("viscosity",),
              level: float = 0.9, calibration_fraction: float = 0.25, seed: int = 0) -> CoefficientModel:
    """Fit the ridge probe of ``log(coefficients)`` on labelled solutions and calibrate its intervals.

    A random ``calibration_fraction`` of the trajectories (at least 10) is held out to calibrate split-conformal
    intervals (:func:`conformal_quantile`); the probe is fitted on the rest.

    Args:
        model: the pretrained encoder.
        data: a dataset (or a file :func:`sciml.data.open` reads) with the encoder's variable and the coefficient
            coordinates along ``sample``.
    """
    from .discovery import prepare

    if not 0 < calibration_fraction < 1:
        raise ConfigError(f"calibration_fraction must be in (0, 1), got {calibration_fraction!r}")
    ds, trajectories = prepare(model, data)
    missing = [n for n in coefficients if n not in ds.coords or ds[n].dims != ("sample",)]
    if missing or not coefficients:
        raise DataError(f"coefficient coordinates {missing or list(coefficients)} along 'sample' not found; the dataset "
                        f"has {[n for n in ds.coords if ds[n].dims == ('sample',)]}")
    c = torch.from_numpy(np.stack([np.asarray(ds[n].values, dtype=np.float64) for n in coefficients], -1))
    if not bool((c > 0).all()) or not bool(torch.isfinite(c).all()):
        raise DataError(f"coefficients {list(coefficients)} must be positive and finite (they are regressed as logs)")
    n = len(c)
    m = max(10, int(round(calibration_fraction * n)))
    if n - m < 3:
        raise DataError(f"{n} labelled trajectories are too few: need >= {m + 3} (>= 3 to fit, {m} to calibrate)")
    features = embed(model, trajectories)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    calibrate, fit_on = order[:m], order[m:]
    probe = RidgeProbe.fit(features[fit_on], c[fit_on].log())
    residuals = probe.predict(features[calibrate]) - c[calibrate].log()
    return CoefficientModel(model, list(coefficients), probe, conformal_quantile(residuals, level=level), float(level),
                            m, {n_: dict(ds[n_].attrs) for n_ in coefficients})
