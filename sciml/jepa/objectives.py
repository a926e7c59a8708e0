"""Self-supervised objectives on pairs of views, as :class:`~sciml.train.Task` s, and the collapse monitors.

Two views of the physics (crops of one trajectory, or of two trajectories that share their coefficients, each
transformed by a random Lie point symmetry that keeps the coefficients, :mod:`sciml.jepa.symmetries`) go through
one encoder; the losses make their embeddings agree without letting them collapse to a constant:

* **VICReg** (Bardes, Ponce & LeCun 2022, "VICReg: variance-invariance-covariance regularization for
  self-supervised learning", ICLR, arXiv:2105.04906, eq. 1-6), for embeddings ``Z, Z'`` ``(n, d)``:
  ``loss = lambda s(Z, Z') + mu [v(Z) + v(Z')] + nu [c(Z) + c(Z')]`` with ``lambda = mu = 25, nu = 1``, the
  invariance ``s = mean_i |z_i - z'_i|^2 / d`` (the mean squared error), the variance
  ``v(Z) = mean_j max(0, 1 - sqrt(Var(z^j) + eps))`` (unbiased variance, ``eps = 1e-4``) and the covariance
  ``c(Z) = sum_{i != j} C(Z)_ij^2 / d`` of the covariance matrix ``C(Z) = (Z - mean)^T (Z - mean) / (n - 1)``
  (:func:`vicreg_loss`, :class:`VICRegTask`).
* **JEPA** (LeCun 2022, "A path towards autonomous machine intelligence"; Assran et al. 2023, I-JEPA,
  arXiv:2301.08243), here with global embeddings as in BYOL (Grill et al. 2020, arXiv:2006.07733): a predictor
  maps the context view's embedding to the embedding a *target encoder* gives the other view; the target is an
  exponential moving average of the online encoder and projector, and no gradient flows through it (stop-gradient).
  Loss ``|p / |p| - t / |t||^2 = 2 - 2 cos(p, t)``, symmetrised over the two views (:class:`JEPATask`).

Collapse monitors, logged every step on the batch: the per-dimension standard deviation of the embeddings (mean
and minimum over dims) and the effective rank (Roy & Vetterli 2007, "The effective rank: a measure of effective
dimensionality", EUSIPCO) of the embeddings and of the representations, ``erank(Z) = exp(H(p))`` with
``p_k = s_k / sum s`` the normalised singular values of ``Z`` and ``H`` the Shannon entropy: ``d`` for ``d``
equal singular values, 1 for a rank-one matrix (:func:`effective_rank`). :func:`check_collapse` says when a run
has collapsed.

The views are drawn from generators the task owns (one for training, one for validation) and saved in its
state with the EMA target, so a killed and resumed :func:`sciml.train.fit` ends bitwise identical.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..errors import ConfigError, DataError
from ..train.task import Task, adamw, decay_groups
from .encoder import EncoderConfig, JEPAModel
from .symmetries import augment_burgers, augment_vorticity
from .views import crop, partners

if TYPE_CHECKING:
    import xarray as xr

    from ..train import History, TrainConfig

__all__ = ["vicreg_loss", "effective_rank", "embedding_std", "check_collapse", "PretrainConfig", "TrajectoryPairs",
           "VICRegTask", "JEPATask", "pretrain", "VICREG_WEIGHTS"]

#: ``(invariance, variance, covariance)`` weights of Bardes et al. 2022.
VICREG_WEIGHTS = (25.0, 25.0, 1.0)


def _covariance_term(z: torch.Tensor) -> torch.Tensor:
    n, d = z.shape
    centred = z - z.mean(dim=0)
    cov = centred.T @ centred / (n - 1)
    off = cov - torch.diag(torch.diagonal(cov))
    return off.pow(2).sum() / d


def _variance_term(z: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.relu(1 - torch.sqrt(z.var(dim=0) + eps)).mean()


def vicreg_loss(z1: torch.Tensor, z2: torch.Tensor, *, weights: tuple[float, float, float] = VICREG_WEIGHTS,
                eps: float = 1e-4) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """VICReg of two embeddings ``(n, d)`` (row ``i`` of each: the two views of item ``i``), ``n >= 2``.

    Returns:
        ``(loss, {"invariance": s, "variance": v(Z) + v(Z'), "covariance": c(Z) + c(Z')})`` with
        ``loss = weights[0] s + weights[1] (v(Z) + v(Z')) + weights[2] (c(Z) + c(Z'))`` (module doc).
    """
    if z1.shape != z2.shape or z1.ndim != 2 or z1.shape[0] < 2:
        raise ConfigError(f"vicreg_loss takes two (n >= 2, d) embeddings of one shape, got {tuple(z1.shape)} and "
                          f"{tuple(z2.shape)}")
    invariance = (z1 - z2).pow(2).mean()
    variance = _variance_term(z1, eps) + _variance_term(z2, eps)
    covariance = _covariance_term(z1) + _covariance_term(z2)
    lam, mu, nu = weights
    return lam * invariance + mu * variance + nu * covariance, {
        "invariance": invariance, "variance": variance, "covariance": covariance}


def effective_rank(z: torch.Tensor, *, eps: float = 1e-12) -> torch.Tensor:
    """Effective rank ``exp(-sum p_k log p_k)``, ``p = s / sum(s)`` of the singular values of ``z`` ``(n, d)``
    (Roy & Vetterli 2007; not centred, as RankMe, Garrido et al. 2023): in ``[1, min(n, d)]``, a scalar tensor.
    A zero matrix gives 1."""
    s = torch.linalg.svdvals(z.detach().to(torch.float64))
    p = s / s.sum().clamp_min(eps)
    entropy = -(p * torch.log(p.clamp_min(eps))).sum()
    return torch.exp(entropy).to(z.dtype)


def embedding_std(z: torch.Tensor) -> torch.Tensor:
    """Standard deviation of each embedding dimension over the batch: ``(n, d) -> (d,)`` (unbiased)."""
    return z.detach().std(dim=0)


def check_collapse(z: torch.Tensor | np.ndarray, *, min_rank: float = 2.0, min_std: float = 1e-3,
                   what: str = "embeddings") -> dict[str, float]:
    """Collapse monitors of embeddings ``(n, d)``; warns (``UserWarning``, with the numbers) when collapsed.

    Collapsed: effective rank below ``min_rank`` or every dimension's standard deviation below ``min_std`` times
    the mean absolute value plus ``min_std`` (a constant output).

    Returns:
        ``{"effective_rank", "std_mean", "std_min", "dims", "collapsed"}`` (``collapsed`` 0.0 or 1.0).
    """
    z = torch.as_tensor(np.array(z) if not isinstance(z, torch.Tensor) else z).detach().to(torch.float64)
    if z.ndim != 2 or z.shape[0] < 2:
        raise ConfigError(f"check_collapse takes (n >= 2, d) embeddings, got shape {tuple(z.shape)}")
    rank = float(effective_rank(z))
    std = embedding_std(z)
    floor = min_std * (1 + float(z.abs().mean()))
    collapsed = rank < min_rank or bool((std < floor).all())
    out = {"effective_rank": rank, "std_mean": float(std.mean()), "std_min": float(std.min()),
           "dims": int(z.shape[1]), "collapsed": float(collapsed)}
    if collapsed:
        warnings.warn(f"the {what} have collapsed: effective rank {rank:.3g} of {z.shape[1]} dims (below {min_rank:g}), "
                      f"per-dimension std mean {out['std_mean']:.3g}, min {out['std_min']:.3g}; raise the variance "
                      "weight or the EMA decay, or lower lr", UserWarning, stacklevel=2)
    return out


def _monitors(h: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
    std = embedding_std(z)
    return {"embedding_std": std.mean(), "embedding_std_min": std.min(), "embedding_rank": effective_rank(z),
            "representation_rank": effective_rank(h)}


@dataclass(frozen=True, kw_only=True)
class PretrainConfig:
    """Options of :func:`pretrain`.

    Attributes:
        objective: ``"vicreg"`` or ``"jepa"``.
        size_t: frames per view.
        size_x: points per spatial dim of a view (one for all dims).
        pairs: ``"trajectory"`` (two windows of one trajectory) or ``"group"`` (the second of another trajectory
            of the same coefficient group, the dataset's ``group`` coordinate; needs >= 2 per group).
        augment: apply a random coefficient-preserving symmetry to each view's trajectory (Burgers: space shift,
            Galilean boost up to ``max_boost``, reflection; Navier-Stokes: translations, quarter turns,
            reflections).
        max_boost: largest Galilean boost speed (domain lengths per unit time).
        encoder: the network (:class:`~sciml.jepa.encoder.EncoderConfig`; ``space_dims`` and ``channels`` are
            set from the data).
        weights: VICReg's ``(invariance, variance, covariance)`` weights.
        ema_decay: JEPA target's EMA decay per step, in ``[0, 1)``.
        seed: seeds the network's initialisation, the views and the partners.
        variable: the field to train on (default: the dataset's only variable).
    """

    objective: str = "vicreg"
    size_t: int = 16
    size_x: int = 32
    pairs: str = "trajectory"
    augment: bool = True
    max_boost: float = 0.5
    encoder: EncoderConfig = EncoderConfig()
    weights: tuple[float, float, float] = VICREG_WEIGHTS
    ema_decay: float = 0.99
    seed: int = 0
    variable: str | None = None

    def __post_init__(self) -> None:
        if self.objective not in ("vicreg", "jepa"):
            raise ConfigError(f"objective must be 'vicreg' or 'jepa', got {self.objective!r}")
        if self.pairs not in ("trajectory", "group"):
            raise ConfigError(f"pairs must be 'trajectory' or 'group', got {self.pairs!r}")
        for name in ("size_t", "size_x"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if not (isinstance(self.ema_decay, numbers.Real) and 0 <= self.ema_decay < 1):
            raise ConfigError(f"ema_decay must be a number in [0, 1), got {self.ema_decay!r}")
        if not (isinstance(self.max_boost, numbers.Real) and self.max_boost >= 0):
            raise ConfigError(f"max_boost must be a number >= 0, got {self.max_boost!r}")
        if len(self.weights) != 3 or any(not math.isfinite(w) or w < 0 for w in self.weights):
            raise ConfigError(f"weights must be three numbers >= 0, got {self.weights!r}")


class TrajectoryPairs(torch.utils.data.Dataset):
    """Items ``(trajectory, partner)``, each ``(time, channel, *space)``: the partner is the trajectory itself,
    or with ``groups`` ``(sample,)`` another trajectory of its group, redrawn each epoch from
    ``(seed, epoch)`` only (:func:`sciml.jepa.views.partners`), so that a resumed run draws the same."""

    def __init__(self, trajectories: torch.Tensor, *, groups: torch.Tensor | None = None, seed: int = 0) -> None:
        self.trajectories = trajectories
        self.groups = groups
        self.seed = int(seed)
        self.partner = torch.arange(len(trajectories))
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw the partners of epoch ``epoch``."""
        if self.groups is not None:
            generator = torch.Generator().manual_seed(int(np.random.SeedSequence((self.seed, epoch)).generate_state(1)[0]))
            self.partner = partners(self.groups, generator=generator)

    def __len__(self) -> int:
        return len(self.trajectories)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.trajectories[i], self.trajectories[self.partner[i]]


def augment(trajectory: torch.Tensor, times: torch.Tensor, *, generator: torch.Generator, max_boost: float = 0.5,
            length: float = 1.0) -> torch.Tensor:
    """A random coefficient-preserving symmetry per trajectory ``(batch, time, channel, *space)``.

    1-D (Burgers, one channel): :func:`~sciml.jepa.symmetries.augment_burgers` without scaling (the viscosity is
    kept); 2-D: :func:`~sciml.jepa.symmetries.augment_vorticity` (the forcing's amplitude is kept).
    """
    if trajectory.ndim == 4:
        u, _, _ = augment_burgers(trajectory[:, :, 0].to(torch.float64), times, 1.0, generator=generator,
                                  length=length, max_boost=max_boost)
        return u.to(trajectory.dtype)[:, :, None]
    w, _ = augment_vorticity(trajectory, torch.zeros(trajectory.shape[-2:], dtype=trajectory.dtype,
                                                     device=trajectory.device), generator=generator)
    return w


class _ViewTask(Task):
    """Shared parts: drawing the two views of a batch ``(trajectory, partner)`` from a generator of the task."""

    def __init__(self, model: JEPAModel, *, times: torch.Tensor, size_t: int, size_x: int, augment: bool = True,
                 max_boost: float = 0.5, length: float = 1.0, seed: int = 0) -> None:
        super().__init__(model)
        if not isinstance(model, JEPAModel):
            raise ConfigError(f"{type(self).__name__} trains a JEPAModel, got {type(model).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
        self.times = torch.as_tensor(times, dtype=torch.float64)
        self.size_t, self.size_x, self.augment, self.max_boost, self.length = size_t, size_x, augment, max_boost, length
        self.generator = torch.Generator().manual_seed(int(seed))
        self.validation_generator = torch.Generator().manual_seed(int(seed) + 1)

    def views(self, batch, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The two views ``(batch, size_t, channel, *size)`` of a batch ``(trajectory, partner)``."""
        first, second = batch
        if self.augment:
            first = augment(first, self.times.to(first.device), generator=generator, max_boost=self.max_boost,
                            length=self.length)
            second = augment(second, self.times.to(first.device), generator=generator, max_boost=self.max_boost,
                             length=self.length)
        return (crop(first, size_t=self.size_t, size_x=self.size_x, generator=generator),
                crop(second, size_t=self.size_t, size_x=self.size_x, generator=generator))

    def _loss(self, model, batch, generator):
        raise NotImplementedError

    def loss(self, model, batch):
        return self._loss(model, batch, self.generator)

    def validate(self, model, batch) -> Mapping[str, torch.Tensor]:
        with torch.no_grad():
            loss, logs = self._loss(model, batch, self.validation_generator)
        return {"loss": loss.detach(), **{k: v.detach() for k, v in logs.items()}}

    def optimizer(self, model, config):
        return adamw(decay_groups(model, config.weight_decay), config)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "validation_generator": self.validation_generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.validation_generator.set_state(state["validation_generator"])


class VICRegTask(_ViewTask):
    """VICReg (module doc) on pairs of views, through :func:`sciml.train.fit`.

    Data: :class:`TrajectoryPairs` (items ``(trajectory, partner)``, each ``(time, channel, *space)``). Logs
    ``invariance``, ``variance``, ``covariance`` and the collapse monitors ``embedding_std``, ``embedding_std_min``,
    ``embedding_rank``, ``representation_rank``.

    Args:
        model: a :class:`~sciml.jepa.encoder.JEPAModel` (its predictor is not used).
        times: frame times ``(time,)`` of the trajectories (the Galilean boost needs them).
        size_t, size_x: the crop.
        augment, max_boost: symmetries applied to each view (:func:`augment`).
        length: spatial period.
        weights: ``(invariance, variance, covariance)`` weights (25, 25, 1).
        seed: seeds the training views (``seed``) and the validation ones (``seed + 1``).
    """

    def __init__(self, model: JEPAModel, *, times: torch.Tensor, size_t: int, size_x: int, augment: bool = True,
                 max_boost: float = 0.5, length: float = 1.0, weights: tuple[float, float, float] = VICREG_WEIGHTS,
                 seed: int = 0) -> None:
        super().__init__(model, times=times, size_t=size_t, size_x=size_x, augment=augment, max_boost=max_boost,
                         length=length, seed=seed)
        self.weights = tuple(float(w) for w in weights)

    def _loss(self, model, batch, generator):
        a, b = self.views(batch, generator)
        h1, z1 = model(a)
        _, z2 = model(b)
        loss, terms = vicreg_loss(z1, z2, weights=self.weights)
        return loss, {**{k: v.detach() for k, v in terms.items()}, **_monitors(h1, z1)}


class JEPATask(_ViewTask):
    """The JEPA variant (module doc): predictor on the online embedding, EMA target, stop-gradient.

    Same data and options as :class:`VICRegTask`, plus ``ema_decay``; logs ``prediction`` (the loss) and the
    collapse monitors of the online embeddings. The target (``AveragedModel`` of the whole model with
    ``get_ema_multi_avg_fn(ema_decay)``, updated after every step) is in :meth:`state_dict`.

    Attributes:
        target: the EMA target; ``target.module`` is the averaged :class:`~sciml.jepa.encoder.JEPAModel`.
    """

    def __init__(self, model: JEPAModel, *, times: torch.Tensor, size_t: int, size_x: int, augment: bool = True,
                 max_boost: float = 0.5, length: float = 1.0, ema_decay: float = 0.99, seed: int = 0) -> None:
        super().__init__(model, times=times, size_t=size_t, size_x=size_x, augment=augment, max_boost=max_boost,
                         length=length, seed=seed)
        if isinstance(ema_decay, bool) or not isinstance(ema_decay, numbers.Real) or not 0 <= ema_decay < 1:
            raise ConfigError(f"ema_decay must be a number in [0, 1), got {ema_decay!r}")
        self.ema_decay = float(ema_decay)
        self.target = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(self.ema_decay))
        self.target.requires_grad_(False)

    def _loss(self, model, batch, generator):
        a, b = self.views(batch, generator)
        h1, z1 = model(a)
        _, z2 = model(b)
        with torch.no_grad():
            t1, t2 = self.target.module(a)[1], self.target.module(b)[1]
        predictor = self.model.predictor

        def term(z, t):
            p = nn.functional.normalize(predictor(z), dim=-1)
            return (p - nn.functional.normalize(t, dim=-1)).pow(2).sum(dim=-1).mean()

        loss = 0.5 * (term(z1, t2) + term(z2, t1))
        return loss, {"prediction": loss.detach(), **_monitors(h1, z1)}

    def after_step(self, model, step):
        self.target.update_parameters(model)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "target": self.target.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.target.load_state_dict(state["target"])


def _variable(ds: xr.Dataset, variable: str | None) -> str:
    if variable is None:
        names = list(ds.data_vars)
        if len(names) != 1:
            raise DataError(f"the dataset has variables {names}; say which to train on (variable=...)")
        return names[0]
    if variable not in ds.data_vars:
        raise DataError(f"variable {variable!r} not in the dataset, which has {list(ds.data_vars)}")
    return variable


def spec_of(ds: xr.Dataset, variable: str, *, size_t: int, size_x: int) -> dict[str, Any]:
    """What an encoder trained on ``ds[variable]`` expects: spatial dims, points, periods, frame spacing, crop."""
    da = ds[variable]
    space = [d for d in ("y", "x") if d in da.dims]
    if "sample" not in da.dims or "time" not in da.dims or not space:
        raise DataError(f"{variable!r} has dims {tuple(da.dims)}; need (sample, time, x) or (sample, time, y, x)")
    if len(space) == 2 and da.sizes["y"] != da.sizes["x"]:
        raise DataError(f"{variable!r} is on a {da.sizes['y']} x {da.sizes['x']} grid; 2-D needs a square grid")
    points, lengths = [], []
    for dim in space:
        values = np.asarray(ds[dim].values, dtype=np.float64)
        n = values.size
        spacing = (values[-1] - values[0]) / (n - 1) if n > 1 else 1.0
        points.append(int(n))
        lengths.append(float(round(spacing * n, 12)))
    times = np.asarray(ds["time"].values, dtype=np.float64)
    steps = np.diff(times)
    if steps.size == 0 or not np.allclose(steps, steps[0], rtol=1e-6, atol=0):
        raise DataError(f"{variable!r}: frames must be equally spaced in time (got spacings {np.unique(steps)[:4]})")
    return {"variable": variable, "space": space, "points": points, "length": lengths, "time_step": float(steps[0]),
            "size_t": int(size_t), "size_x": [int(size_x)] * len(space),
            "units": str(da.attrs.get("units", "")), "long_name": str(da.attrs.get("long_name", variable))}


def trajectories_of(ds: xr.Dataset, variable: str) -> torch.Tensor:
    """``ds[variable]`` as a float32 tensor ``(sample, time, 1, *space)`` (NaN refused, naming the samples)."""
    da = ds[variable]
    space = [d for d in ("y", "x") if d in da.dims]
    values = np.array(da.transpose("sample", "time", *space).values, dtype=np.float32)
    bad = ~np.isfinite(values)
    if bad.any():
        samples = np.flatnonzero(bad.reshape(len(values), -1).any(axis=1))[:5].tolist()
        raise DataError(f"{variable!r} holds NaN or infinite values (samples {samples}); drop or repair them")
    return torch.from_numpy(values)[:, :, None]


def pretrain(data: xr.Dataset | str, *, config: PretrainConfig = PretrainConfig(), train: TrainConfig | None = None,
             checkpoint_dir=None, resume: bool = False, log_path=None) -> tuple[JEPAModel, History]:
    """Train an encoder self-supervised (VICReg or JEPA) on unlabelled solutions; coefficients are not read.

    Args:
        data: a dataset with ``variable(sample, time, x)`` or ``(sample, time, y, x)`` on a periodic grid, or a
            path :func:`sciml.data.open` reads.
        config: the objective, views and network (:class:`PretrainConfig`).
        train: the loop's options (:class:`sciml.train.TrainConfig`; default 30 epochs, batch 32, lr 1e-3).
        checkpoint_dir, resume, log_path: as :func:`sciml.train.fit` (exact resume).

    Returns:
        ``(model, history)``: the trained :class:`~sciml.jepa.encoder.JEPAModel` (for JEPA, the EMA target's
        weights, which the probes read) and the per-epoch history with the collapse monitors. Warns when the
        final representations of the training windows have collapsed (:func:`check_collapse`).
    """
    from ..train import TrainConfig, fit

    ds = _open(data)
    variable = _variable(ds, config.variable)
    spec = spec_of(ds, variable, size_t=config.size_t, size_x=config.size_x)
    trajectories = trajectories_of(ds, variable)
    frames, points = trajectories.shape[1], min(spec["points"])
    if config.size_t > frames or config.size_x > points:
        raise DataError(f"the crop ({config.size_t} frames x {config.size_x} points) is larger than the data "
                        f"({frames} frames x {points} points)")
    batch = (train.batch_size if train is not None else 32)
    if len(trajectories) % batch == 1:
        raise ConfigError(f"{len(trajectories)} trajectories in batches of {batch} leave a last batch of one, whose "
                          "embedding statistics are undefined; choose another batch_size")
    groups = None
    if config.pairs == "group":
        if "group" not in ds.coords:
            raise DataError("pairs='group' needs the dataset's 'group' coordinate along 'sample' "
                            "(sciml.jepa.burgers_dataset(..., trajectories_per_group=2))")
        groups = torch.from_numpy(np.array(ds["group"].values, dtype=np.int64))
    encoder = replace(config.encoder, space_dims=len(spec["space"]), channels=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = JEPAModel(encoder, spec={**spec, "objective": config.objective}, scale=float(trajectories.std()))
    options = dict(times=torch.tensor(np.asarray(ds["time"].values, dtype=np.float64)), size_t=config.size_t,
                   size_x=config.size_x, augment=config.augment, max_boost=config.max_boost,
                   length=spec["length"][-1], seed=config.seed)
    task = (VICRegTask(model, weights=config.weights, **options) if config.objective == "vicreg"
            else JEPATask(model, ema_decay=config.ema_decay, **options))
    train = train or TrainConfig(epochs=30, batch_size=32, lr=1e-3, device="cpu")
    history = fit(task, TrajectoryPairs(trajectories, groups=groups, seed=config.seed), config=train,
                  checkpoint_dir=checkpoint_dir, resume=resume, log_path=log_path)
    if isinstance(task, JEPATask):
        model.load_state_dict(task.target.module.state_dict())
    model = model.cpu().eval()
    from .probes import embed

    check_collapse(embed(model, trajectories[:256]), what="representations of the training windows")
    return model, history


def _open(data) -> xr.Dataset:
    import xarray as xr

    if isinstance(data, xr.Dataset):
        return data
    if isinstance(data, xr.DataArray):
        return data.to_dataset(name=data.name or "u")
    from ..data import open as open_data

    return open_data(data)
