"""A learned closure for a coarse 2-D Navier-Stokes solver, trained a-posteriori through the solver.

A coarse pseudo-spectral solver (:mod:`sciml.solvers.navier_stokes`, e.g. 32x32) cannot represent the
scales below its grid; their effect on the resolved vorticity is a closure term ``c(w)`` added to the
right-hand side through the solver's seam ``closure(w, t) -> tendency``:

    d_t w + u . grad w = nu Laplacian w - alpha w + f + c(w).

Three closures are compared against spectrally filtered fine DNS (e.g. 128x128 or 256x256):

* **no model**: ``c = 0``;
* **Smagorinsky** (1963): eddy viscosity ``nu_t = (C_s Delta)^2 |S|`` with ``Delta = L / n`` the coarse
  grid spacing and ``|S| = sqrt(2 S_ij S_ij)`` the resolved strain rate; the momentum stress
  ``2 nu_t S_ij`` enters as its curl, ``c = (d_xx - d_yy)(2 nu_t S_12) - 2 d_xy (2 nu_t S_11)``, which
  dissipates kinetic energy exactly: ``dE/dt = -<nu_t |S|^2>``. ``C_s`` is tuned by a 1-D search on the
  same a-posteriori loss as the learned model (:func:`tune_smagorinsky`);
* **learned**: a small periodic CNN (:class:`ClosureCNN`) trained *a-posteriori* (trajectory fitting):
  the differentiable coarse solver with the CNN in its seam is unrolled for ``K`` output frames from a
  filtered DNS state and the loss is the mean squared vorticity error against the filtered DNS frames,
  back-propagated through every solver step (:class:`ClosureTask`, trained by :func:`sciml.train.fit`).
  Melchers et al. (2023, "Comparison of neural closure models for discretised PDEs") found this
  trajectory fitting more accurate and stable than fitting the instantaneous subgrid term.

**Filter** (:func:`spectral_filter`): the fine field's Fourier modes are multiplied by a transfer
function and those with integer ``|k_x|`` or ``|k_y| > (n - 1) // 3`` are dropped, ``n`` the coarse grid
(the modes the coarse solver's 2/3 dealiasing keeps); the remaining modes, rescaled by ``(n / N)^2``, are
the spectrum of the coarse field, which is then exactly the filtered fine field sampled at every
``N / n``-th point. ``kind="sharp"``: transfer 1 (a sharp spectral cutoff); ``kind="gaussian"``:
``exp(-|k|^2 Delta_f^2 / 24)`` with filter width ``Delta_f = 2 L / n`` (Pope 2000, Table 13.2), then the
same cutoff.

The evaluation (:func:`evaluate_closures`) runs each closure from filtered initial states and scores the
vorticity correlation with the filtered DNS against time (the metric of Kochkov et al. 2021, "Machine
learning-accelerated computational fluid dynamics", PNAS) and the time-averaged energy spectrum.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import torch
from torch import nn

from ..errors import ConfigError, DataError, SolverError
from ..solvers.navier_stokes import NavierStokes2D, courant_number, integrate, step
from ..train import Task

if TYPE_CHECKING:
    import xarray as xr

    from ..train import History, TrainConfig

__all__ = ["CoarseSolver", "spectral_filter", "filtered_dns", "check_reference", "ClosureCNN", "Smagorinsky",
           "ClosureTask", "UnrollCurriculum", "ClosureWindows", "trajectory_windows", "unrolled_loss",
           "tune_smagorinsky", "train_closure", "evaluate_closures", "plot_closure_evaluation", "save_closure",
           "load_closure", "velocity_rms"]

FILTERS = ("sharp", "gaussian")
#: The largest Courant number dt (|u| + |v|) / dx of the reference that the coarse solver is run at (that of
#: :func:`sciml.solvers.navier_stokes.integrate`); the explicit advection is unstable above about this.
MAX_COURANT = 1.0
FORMAT_VERSION = 1


# ----------------------------------------------------------------------------------------------------- filter

def _check_field(w: torch.Tensor, name: str) -> None:
    if not isinstance(w, torch.Tensor) or w.ndim < 2 or w.shape[-1] != w.shape[-2]:
        shape = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
        raise DataError(f"{name} must be a tensor (..., n, n) on a square grid, got {shape}")
    if w.dtype not in (torch.float32, torch.float64):
        raise DataError(f"{name} must be float32 or float64, got {w.dtype}")


def spectral_filter(w: torch.Tensor, n: int, *, kind: str = "sharp", length: float = 1.0) -> torch.Tensor:
    """Filter a fine periodic field and sample it on the coarse ``n x n`` grid; ``(..., N, N) -> (..., n, n)``.

    The modes are multiplied by the transfer function (``"sharp"``: 1; ``"gaussian"``:
    ``exp(-|k|^2 Delta_f^2 / 24)``, ``Delta_f = 2 length / n``, ``k`` in radians per length) and every mode
    with integer ``|k_x|`` or ``|k_y| > (n - 1) // 3`` is dropped (the coarse solver's 2/3 rule), so the
    result lies in the space the coarse solver evolves. ``N`` must be a multiple of ``n``.
    """
    _check_field(w, "the fine field")
    big = w.shape[-1]
    if isinstance(n, bool) or not isinstance(n, int) or n < 4:
        raise ConfigError(f"the coarse grid n must be an integer >= 4, got {n!r}")
    if n > big or big % n:
        raise ConfigError(f"the coarse grid {n} must divide the fine grid {big} (fine = integer multiple of coarse)")
    if kind not in FILTERS:
        raise ConfigError(f"filter kind must be one of {FILTERS}, got {kind!r}")
    cutoff = (n - 1) // 3
    spectrum = torch.fft.fft2(w)  # (..., N, N), integer wavenumbers fftfreq(N, 1/N)
    modes = torch.cat([torch.arange(0, cutoff + 1), torch.arange(big - cutoff, big)])
    kept = spectrum[..., modes[:, None], modes[None, :]]  # (..., 2c+1, 2c+1)
    integer = torch.cat([torch.arange(0, cutoff + 1), torch.arange(-cutoff, 0)]).to(w.dtype)
    if kind == "gaussian":
        k = 2 * math.pi / length * integer
        width = 2 * length / n
        kept = kept * torch.exp(-(k[:, None] ** 2 + k[None, :] ** 2) * width**2 / 24)
    coarse = torch.zeros(*w.shape[:-2], n, n, dtype=spectrum.dtype, device=w.device)
    small = torch.cat([torch.arange(0, cutoff + 1), torch.arange(n - cutoff, n)])
    coarse[..., small[:, None], small[None, :]] = kept * (n / big) ** 2
    return torch.fft.ifft2(coarse).real.contiguous()


# ------------------------------------------------------------------------------------------------ coarse solver

@dataclass(frozen=True, kw_only=True)
class CoarseSolver:
    """The coarse solver a closure is trained and run in.

    Attributes:
        equation: the 2-D Navier-Stokes equation (same parameters as the DNS).
        n: coarse grid points per side.
        dt: coarse time step (simulation time units).
        steps_per_frame: steps between two recorded frames (the frame interval is ``dt * steps_per_frame``).
        scheme: ``"cn-heun"`` or ``"etdrk4"`` (:func:`sciml.solvers.navier_stokes.step`).
        hold_closure: ``False`` (or 0): the solver's seam calls the closure at every stage. ``True`` (or
            1): evaluate it once per step, at the step's start state ``w_n``, and hold that tendency over
            the step's stages. An integer ``m > 1``: evaluate it at the start of every ``m``-th step and
            hold it over ``m`` steps (a multirate scheme: the closure is a slow, small part of the
            tendency). The closure term is then first-order in time (an error ``O(m dt |dc/dt|)``) and
            costs one evaluation per ``m`` steps instead of two per step (CN-Heun) or four (ETDRK4):
            what makes a CNN closure cheap. Train and run a closure with the same setting.
    """

    equation: NavierStokes2D
    n: int
    dt: float
    steps_per_frame: int = 1
    scheme: str = "cn-heun"
    hold_closure: bool | int = False

    def __post_init__(self) -> None:
        if not isinstance(self.equation, NavierStokes2D):
            raise ConfigError(f"equation must be a NavierStokes2D, got {type(self.equation).__name__}")
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 4:
            raise ConfigError(f"n must be an integer >= 4, got {self.n!r}")
        if not (isinstance(self.dt, (int, float)) and math.isfinite(self.dt) and self.dt > 0):
            raise ConfigError(f"dt must be a positive number, got {self.dt!r}")
        if isinstance(self.steps_per_frame, bool) or not isinstance(self.steps_per_frame, int) or self.steps_per_frame < 1:
            raise ConfigError(f"steps_per_frame must be an integer >= 1, got {self.steps_per_frame!r}")
        if not isinstance(self.hold_closure, int) or self.hold_closure < 0:
            raise ConfigError(f"hold_closure must be True, False or a step count >= 1, got {self.hold_closure!r}")

    @property
    def frame_interval(self) -> float:
        """Simulated time between two frames, ``dt * steps_per_frame``."""
        return self.dt * self.steps_per_frame

    def rollout(self, w0: torch.Tensor, frames: int, closure: Callable | None = None) -> torch.Tensor:
        """Run ``frames`` frame intervals from ``w0`` ``(batch, n, n)``; returns ``(batch, frames + 1, n, n)``
        with ``w0`` first. Differentiable with autograd (through ``w0`` and the closure's parameters)."""
        if w0.ndim != 3 or tuple(w0.shape[-2:]) != (self.n, self.n):
            raise DataError(f"the initial vorticity must be (batch, {self.n}, {self.n}), got {tuple(w0.shape)}")
        w_hat, t, out, count = torch.fft.rfft2(w0), 0.0, [w0], 0
        every = int(self.hold_closure)
        for _ in range(frames):
            for _ in range(self.steps_per_frame):
                seam = closure
                if closure is not None and every:
                    if count % every == 0:  # (batch, n, n), once every `every` steps
                        held = closure(torch.fft.irfft2(w_hat, s=(self.n, self.n)), t)
                    seam = lambda _w, _t, held=held: held
                w_hat = step(self.equation, w_hat, self.dt, t=t, scheme=self.scheme, closure=seam)
                t += self.dt
                count += 1
            out.append(torch.fft.irfft2(w_hat, s=(self.n, self.n)))
        return torch.stack(out, dim=1)


# --------------------------------------------------------------------------------------------------- DNS data

def _equation_attrs(ds) -> NavierStokes2D:
    try:
        attrs = ds.attrs
        return NavierStokes2D(viscosity=float(attrs["viscosity"]), forcing=str(attrs["forcing"]),
                              length=float(attrs["domain_length"]), drag=float(attrs.get("drag", 0.0)),
                              forcing_wavenumber=int(attrs.get("forcing_wavenumber", 4)))
    except KeyError as err:
        raise DataError(f"the dataset lacks the equation attribute {err}; use the output of filtered_dns") from None


def _initial_vorticity(count: int, n: int, *, seed: int, length: float, rms_velocity: float,
                       peak: float) -> torch.Tensor:
    """Random vorticity ``(count, n, n)`` float64 with spectrum ``|k| exp(-(|k| / peak)^2)`` (integer k), scaled
    to an rms velocity ``rms_velocity``; resolution-independent given the seed up to the grid's modes."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(count, 2, 64, 64, generator=g, dtype=torch.float64)  # modes |k| < 32, any n >= 64 alike
    k = torch.fft.fftfreq(64, 1 / 64, dtype=torch.float64)
    kk = (k[:, None] ** 2 + k[None, :] ** 2).sqrt()
    amplitude = kk * torch.exp(-(kk / peak) ** 2)
    spectrum64 = torch.complex(noise[:, 0], noise[:, 1]) * amplitude
    spectrum = torch.zeros(count, n, n, dtype=torch.complex128)
    m = min(n, 64) // 2
    idx = torch.cat([torch.arange(0, m), torch.arange(-m + 1, 0)])
    spectrum[:, idx[:, None], idx[None, :]] = spectrum64[:, idx[:, None], idx[None, :]]
    w = torch.fft.ifft2(spectrum).real
    kw = 2 * math.pi / length * torch.fft.fftfreq(n, 1 / n, dtype=torch.float64)
    k2 = kw[:, None] ** 2 + kw[None, :] ** 2
    energy = (torch.fft.fft2(w).abs() ** 2 / torch.where(k2 > 0, k2, 1.0)).sum((-1, -2)) / n**4  # mean |u|^2
    return w * (rms_velocity / energy.sqrt())[:, None, None]


def filtered_dns(
    n_samples: int,
    *,
    fine: int = 128,
    coarse: int = 32,
    times: Sequence[float] = tuple(0.2 * i for i in range(51)),
    spinup: float = 10.0,
    seed: int = 0,
    viscosity: float = 5e-3,
    drag: float = 0.1,
    forcing_wavenumber: int = 4,
    length: float = 2 * math.pi,
    filter: str = "sharp",
    courant: float = 0.5,
    max_dt: float = 0.05,
    progress: bool = True,
) -> xr.Dataset:
    """Fine DNS of forced 2-D turbulence, filtered and sampled on the coarse grid.

    Kolmogorov flow (forcing ``-k_f cos(k_f y)``, ``k_f = 2 pi forcing_wavenumber / length``, linear drag,
    cf. Kochkov et al. 2021) on ``[0, length)^2``: random initial vorticity (rms velocity 0.5, spectrum
    peaked at ``|k| ~ 4``) is run for ``spinup`` time units on the ``fine`` grid (adaptive CFL steps,
    ``courant``, at most ``max_dt``; CN-Heun), then recorded at ``times`` (measured from the end of the
    spin-up) and filtered to ``coarse`` with :func:`spectral_filter` (``filter``).

    Returns:
        ``vorticity(sample, time, y, x)`` on the coarse grid (1/time units), the equation's parameters
        as attributes, the filter, the fine resolution, and ``dns_seconds_per_time_unit``: the DNS's
        wall-clock seconds per unit of simulated time for the whole batch of ``dns_samples`` runs
        (recording part only).
    """
    from ..data.cf import trajectory_dataset

    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ConfigError(f"n_samples must be an integer >= 1, got {n_samples!r}")
    if isinstance(fine, bool) or not isinstance(fine, int) or isinstance(coarse, bool) or not isinstance(coarse, int) \
            or coarse < 4 or coarse > fine or fine % coarse:
        raise ConfigError(f"the coarse grid {coarse} must divide the fine grid {fine} (fine = integer multiple of coarse)")
    if filter not in FILTERS:
        raise ConfigError(f"filter must be one of {FILTERS}, got {filter!r}")
    eq = NavierStokes2D(viscosity=viscosity, forcing="kolmogorov", length=length, drag=drag,
                        forcing_wavenumber=forcing_wavenumber)
    w0 = _initial_vorticity(n_samples, fine, seed=seed, length=length, rms_velocity=0.5, peak=6.0).float()
    if spinup > 0:
        chunks = max(1, math.ceil(spinup / 0.5))
        w0 = integrate(eq, w0, [spinup * (i + 1) / chunks for i in range(chunks)], dt=max_dt, adaptive=True,
                       courant=courant, progress=progress)[:, -1]
    start = time.perf_counter()
    trajectory = integrate(eq, w0, list(times), dt=max_dt, adaptive=True, courant=courant, progress=progress)
    seconds = time.perf_counter() - start
    filtered = spectral_filter(trajectory, coarse, kind=filter, length=length)
    coord = torch.arange(coarse, dtype=torch.float64) * (length / coarse)
    attrs = {**eq.attributes(), "scheme": "cn-heun", "fine_resolution": fine, "coarse_resolution": coarse,
             "filter": filter, "filter_cutoff": (coarse - 1) // 3, "spinup": spinup, "seed": seed,
             "dns_samples": n_samples,
             "dns_seconds_per_time_unit": seconds / max(float(times[-1]) - float(times[0]), 1e-12),
             "description": "filtered DNS: fine-grid Kolmogorov flow, spectrally filtered to the coarse grid"}
    return trajectory_dataset({"vorticity": filtered}, times=list(times), coords={"y": coord, "x": coord}, attrs=attrs)


def trajectory_windows(vorticity: torch.Tensor, frames: int, *, stride: int = 1) -> torch.Tensor:
    """All windows of ``frames + 1`` consecutive frames: ``(sample, time, n, n) -> (window, frames + 1, n, n)``."""
    if vorticity.ndim != 4:
        raise DataError(f"trajectories must be (sample, time, n, n), got {tuple(vorticity.shape)}")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1 or frames + 1 > vorticity.shape[1]:
        raise ConfigError(f"frames must be an integer in [1, {vorticity.shape[1] - 1}] (the trajectories have "
                          f"{vorticity.shape[1]} times), got {frames!r}")
    windows = vorticity.unfold(1, frames + 1, stride)  # (sample, window, n, n, frames + 1)
    return windows.permute(0, 1, 4, 2, 3).reshape(-1, frames + 1, *vorticity.shape[-2:]).contiguous()


@dataclass(frozen=True, kw_only=True)
class UnrollCurriculum:
    """An unroll-length curriculum for a-posteriori training: ``frames[i]`` frames for ``epochs[i]`` epochs.

    Short unrolls first, where the gradient through the solver is well conditioned, then longer ones,
    where the loss sees the closure's effect on the slow error growth (as in List et al. 2022 and Frezat
    et al. 2022 for a-posteriori learning; Kochkov et al. 2021 unroll 32 steps). Epochs past the last
    stage keep its length. E.g. ``UnrollCurriculum(frames=(1, 4, 8), epochs=(2, 3, 5))``: epochs 0-1 unroll
    1 frame, 2-4 unroll 4, 5 and later unroll 8.

    Attributes:
        frames: unrolled frames per stage, each >= 1, non-decreasing.
        epochs: epochs per stage, each >= 1, as many as ``frames``.
    """

    frames: tuple[int, ...]
    epochs: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("frames", "epochs"):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or not value or any(
                    isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
                raise ConfigError(f"UnrollCurriculum.{name} must be a non-empty sequence of integers >= 1, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        if len(self.frames) != len(self.epochs):
            raise ConfigError(f"UnrollCurriculum needs one epoch count per stage: {len(self.frames)} frame counts, "
                              f"{len(self.epochs)} epoch counts")
        if any(b < a for a, b in itertools.pairwise(self.frames)):
            raise ConfigError(f"UnrollCurriculum.frames must not decrease, got {self.frames}")

    @property
    def total_epochs(self) -> int:
        """The epochs of all stages together."""
        return sum(self.epochs)

    @property
    def max_frames(self) -> int:
        """The longest unroll (the last stage's)."""
        return self.frames[-1]

    def frames_at(self, epoch: int) -> int:
        """Unrolled frames in epoch ``epoch`` (0-based, as :func:`sciml.train.fit` counts)."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ConfigError(f"epoch must be an integer >= 0, got {epoch!r}")
        end = 0
        for frames, epochs in zip(self.frames, self.epochs):
            end += epochs
            if epoch < end:
                return frames
        return self.frames[-1]


class ClosureWindows(torch.utils.data.Dataset):
    """Windows of filtered DNS drawn afresh every epoch, for :func:`sciml.train.fit`: item ``i`` is
    ``(window,)``, ``(K + 1, n, n)``, ``K`` the epoch's unroll length.

    At ``set_epoch(e)`` (the loop calls it) ``K = frames.frames_at(e)`` (or the fixed ``frames``) and
    ``windows_per_epoch`` pairs (trajectory, start frame) are drawn uniformly, the start in
    ``[0, time - K - 1]``, from a generator seeded by ``(seed, e)`` only: the same windows for the same
    epoch on any machine, after a resume too. Random start times let a long trajectory supply many
    distinct windows without storing them.

    Args:
        trajectories: filtered DNS vorticity ``(sample, time, n, n)``.
        frames: a fixed unroll length or an :class:`UnrollCurriculum`.
        windows_per_epoch: items per epoch.
        seed: the draw's seed.
    """

    def __init__(self, trajectories: torch.Tensor, *, frames: int | UnrollCurriculum, windows_per_epoch: int,
                 seed: int = 0) -> None:
        if not isinstance(trajectories, torch.Tensor) or trajectories.ndim != 4:
            shape = tuple(trajectories.shape) if isinstance(trajectories, torch.Tensor) else type(trajectories).__name__
            raise DataError(f"trajectories must be (sample, time, n, n), got {shape}")
        longest = frames.max_frames if isinstance(frames, UnrollCurriculum) else frames
        if isinstance(longest, bool) or not isinstance(longest, int) or longest < 1 \
                or longest + 1 > trajectories.shape[1]:
            raise ConfigError(f"the unroll (longest {longest!r} frames) must be an integer in [1, "
                              f"{trajectories.shape[1] - 1}]: the trajectories have {trajectories.shape[1]} times")
        if isinstance(windows_per_epoch, bool) or not isinstance(windows_per_epoch, int) or windows_per_epoch < 1:
            raise ConfigError(f"windows_per_epoch must be an integer >= 1, got {windows_per_epoch!r}")
        self.trajectories = trajectories
        self.frames = frames
        self.windows_per_epoch = windows_per_epoch
        self.seed = int(seed)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Choose epoch ``epoch``'s unroll length and windows."""
        self.unroll = self.frames.frames_at(epoch) if isinstance(self.frames, UnrollCurriculum) else self.frames
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(epoch))
        samples, times = self.trajectories.shape[:2]
        self.sample = torch.randint(samples, (self.windows_per_epoch,), generator=g)
        self.start = torch.randint(times - self.unroll, (self.windows_per_epoch,), generator=g)

    def __len__(self) -> int:
        return self.windows_per_epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor]:
        s, t0 = int(self.sample[index]), int(self.start[index])
        return (self.trajectories[s, t0:t0 + self.unroll + 1],)


# --------------------------------------------------------------------------------------------------- closures

class ClosureCNN(nn.Module):
    """A periodic CNN closure ``c(w)``: ``(batch, y, x) -> (batch, y, x)``, vorticity per time^2.

    ``layers`` circularly padded convolutions (GELU between) on the input channels ``w / vorticity_scale``
    and, with ``velocity=True``, the velocity ``(u, v) / velocity_scale`` (``u = d_y psi``, ``v = -d_x psi``,
    ``-Laplacian psi = w``, spectral on the box of side ``length``: a non-local input a small stencil
    cannot build from ``w``; Kochkov et al. 2021 feed velocities); output times ``tendency_scale``,
    spatial mean removed (the closure conserves circulation). The last layer starts at zero, so an
    untrained model is "no model" or, with ``smagorinsky = C_s > 0``, a hybrid that starts as the
    Smagorinsky model of coefficient ``C_s`` and learns a correction to it. Call it as ``model(w, t)``
    (the solver's seam; ``t`` is unused: the closure is autonomous). Parameters: ``(c_in k^2 + 1) C +
    (layers - 2)(C^2 k^2 + C) + C k^2 + 1`` for ``C = channels``, ``k = kernel``, ``c_in`` 1 or 3.
    """

    def __init__(self, *, channels: int = 16, layers: int = 4, kernel: int = 3, vorticity_scale: float = 1.0,
                 tendency_scale: float = 1.0, smagorinsky: float = 0.0, length: float = 1.0,
                 velocity: bool = False, velocity_scale: float = 1.0) -> None:
        super().__init__()
        if layers < 2 or channels < 1 or kernel < 1 or kernel % 2 == 0:
            raise ConfigError(f"ClosureCNN needs layers >= 2, channels >= 1 and an odd kernel; got {layers=}, "
                              f"{channels=}, {kernel=}")
        if not isinstance(velocity, bool):
            raise ConfigError(f"velocity must be True or False, got {velocity!r}")
        self.options = {"channels": channels, "layers": layers, "kernel": kernel, "smagorinsky": float(smagorinsky),
                        "length": float(length)}
        if velocity:  # only then, so that manifests written before the option still match
            self.options["velocity"] = True
        self.velocity = velocity
        self.length = float(length)
        self.base = Smagorinsky(smagorinsky, length=length) if smagorinsky > 0 else None
        sizes = [3 if velocity else 1, *([channels] * (layers - 1)), 1]
        convs = [nn.Conv2d(a, b, kernel, padding=kernel // 2, padding_mode="circular") for a, b in zip(sizes, sizes[1:])]
        nn.init.zeros_(convs[-1].weight)
        nn.init.zeros_(convs[-1].bias)
        parts: list[nn.Module] = []
        for conv in convs[:-1]:
            parts += [conv, nn.GELU()]
        self.net = nn.Sequential(*parts, convs[-1])
        self.register_buffer("vorticity_scale", torch.tensor(float(vorticity_scale)))
        self.register_buffer("tendency_scale", torch.tensor(float(tendency_scale)))
        if velocity:
            self.register_buffer("velocity_scale", torch.tensor(float(velocity_scale)))

    def _inputs(self, w: torch.Tensor) -> torch.Tensor:
        """The input channels ``(batch, 1 or 3, y, x)``."""
        scaled = (w / self.vorticity_scale.to(w.dtype))[:, None]
        if not self.velocity:
            return scaled
        n = w.shape[-1]
        kx, ky = _spectral_derivatives(n, self.length, w.dtype, w.device)
        k2 = kx**2 + ky**2
        psi_hat = torch.fft.rfft2(w) / torch.where(k2 > 0, k2, torch.ones_like(k2)) * (k2 > 0)
        grad = torch.stack(torch.broadcast_tensors(1j * ky, -1j * kx))[:, None] * psi_hat  # (2, batch, k_y, k_x): u, v
        uv = torch.fft.irfft2(grad, s=(n, n)).transpose(0, 1) / self.velocity_scale.to(w.dtype)  # (batch, 2, y, x)
        return torch.cat([scaled, uv], dim=1)

    def forward(self, w: torch.Tensor, t: float = 0.0) -> torch.Tensor:
        """The tendency ``(batch, y, x)`` of the vorticity ``w`` ``(batch, y, x)``."""
        out = self.net(self._inputs(w))[:, 0] * self.tendency_scale.to(w.dtype)
        out = out - out.mean(dim=(-1, -2), keepdim=True)
        return out if self.base is None else out + self.base(w)


def _spectral_derivatives(n: int, length: float, dtype: torch.dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(kx, ky)`` of ``rfft2`` layout ``(1, n // 2 + 1)`` and ``(n, 1)`` in radians per length, Nyquist zeroed."""
    from ..spectral import wavenumbers

    kx = wavenumbers(n, length, real=True, dtype=dtype, device=device)[None, :].clone()
    ky = wavenumbers(n, length, dtype=dtype, device=device)[:, None].clone()
    if n % 2 == 0:
        kx[:, n // 2] = 0
        ky[n // 2, :] = 0
    return kx, ky


class Smagorinsky(nn.Module):
    """Smagorinsky (1963) eddy viscosity on the coarse vorticity: ``(batch, y, x) -> (batch, y, x)``.

    ``nu_t = (C_s Delta)^2 |S|`` with ``Delta = length / n`` the grid spacing, ``S_ij`` the strain rate of
    the velocity ``u = (d_y psi, -d_x psi)``, ``-Laplacian psi = w``, and ``|S| = sqrt(2 S_ij S_ij) =
    2 sqrt(S_11^2 + S_12^2)``. The vorticity tendency is the curl of ``d_j (2 nu_t S_ij)``:

        c = (d_xx - d_yy)(2 nu_t S_12) - 2 d_xy (2 nu_t S_11),

    derivatives spectral. It removes kinetic energy at the rate ``-<nu_t |S|^2> <= 0`` (exactly, up to
    round-off, on the grid) and scales as ``C_s^2`` and as the square of the vorticity's amplitude.

    Attributes:
        coefficient: ``C_s`` (a buffer; :func:`tune_smagorinsky` chooses it).
    """

    def __init__(self, coefficient: float = 0.17, *, length: float = 1.0) -> None:
        super().__init__()
        if not (math.isfinite(coefficient) and coefficient >= 0):
            raise ConfigError(f"the Smagorinsky coefficient must be finite and >= 0, got {coefficient}")
        self.length = float(length)
        self.register_buffer("coefficient", torch.tensor(float(coefficient)))

    def _multipliers(self, n: int, dtype: torch.dtype, device) -> torch.Tensor:
        """``(4, k_y, k_x)``: the spectral maps ``w_hat -> (S_11, S_12)`` and ``(A, B) -> c``, cached per grid."""
        key = (n, dtype, device)
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            kx, ky = _spectral_derivatives(n, self.length, dtype, device)
            k2 = kx**2 + ky**2
            inverse = torch.where(k2 > 0, 1 / torch.where(k2 > 0, k2, torch.ones_like(k2)), torch.zeros_like(k2))
            # u = d_y psi, v = -d_x psi, psi_hat = w_hat / |k|^2: S_11 = d_xy psi, S_12 = (d_yy - d_xx) psi / 2;
            # c = (d_xx - d_yy) B - 2 d_xy A with A = 2 nu_t S_11, B = 2 nu_t S_12
            cache[key] = torch.stack(torch.broadcast_tensors(-kx * ky * inverse, 0.5 * (kx**2 - ky**2) * inverse,
                                                             2 * kx * ky, ky**2 - kx**2))
        return cache[key]

    def parts(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(tendency, nu_t, |S|)``, each ``(batch, y, x)``."""
        n = w.shape[-1]
        maps = self._multipliers(n, w.dtype, w.device)
        strain_rate = torch.fft.irfft2(maps[:2, None] * torch.fft.rfft2(w), s=(n, n))  # (2, batch, y, x): S_11, S_12
        strain = 2 * torch.sqrt(strain_rate.pow(2).sum(0) + torch.finfo(w.dtype).tiny)
        nu_t = (self.coefficient.to(w.dtype) * self.length / n) ** 2 * strain
        stress_hat = torch.fft.rfft2(2 * nu_t * strain_rate)  # (2, batch, k_y, k_x): A, B
        tendency = torch.fft.irfft2(maps[2] * stress_hat[0] + maps[3] * stress_hat[1], s=(n, n))
        return tendency, nu_t, strain

    def forward(self, w: torch.Tensor, t: float = 0.0) -> torch.Tensor:
        """The tendency ``(batch, y, x)`` of the vorticity ``w`` ``(batch, y, x)``."""
        return self.parts(w)[0]


# --------------------------------------------------------------------------------------------------- training

def unrolled_loss(solver: CoarseSolver, closure: Callable | None, windows: torch.Tensor) -> torch.Tensor:
    """A-posteriori loss: mean over windows and frames ``1..K`` of ``|w_k - w_k^ref|^2 / <|w_k^ref|^2>``,
    ``w_k`` the coarse run with ``closure`` from ``windows[:, 0]``; ``windows`` is ``(batch, K + 1, n, n)``."""
    return _frame_errors(solver, closure, windows).mean()


def _frame_errors(solver: CoarseSolver, closure: Callable | None, windows: torch.Tensor) -> torch.Tensor:
    """``|w_k - w_k^ref|^2 / <|w_k^ref|^2>`` per window and frame ``k = 1..K``: ``(batch, K)``."""
    if windows.ndim != 4 or windows.shape[1] < 2:
        raise DataError(f"windows must be (batch, K + 1, n, n) with K >= 1, got {tuple(windows.shape)}")
    predicted = solver.rollout(windows[:, 0], windows.shape[1] - 1, closure)
    error = (predicted[:, 1:] - windows[:, 1:]).pow(2).mean(dim=(-1, -2))
    return error / windows[:, 1:].pow(2).mean(dim=(-1, -2))


class ClosureTask(Task):
    """A-posteriori (trajectory-fitting) training of a closure through the unrolled coarse solver.

    A batch is ``(windows,)``, ``(batch, K + 1, n, n)`` filtered DNS frames ``solver.frame_interval`` apart;
    the loss is :func:`unrolled_loss` of ``model`` (called as the solver's ``closure(w, t)``), back-
    propagated through all ``K * steps_per_frame`` solver steps. Logs ``final_error``: the relative
    squared error at the last frame, and ``unroll``: ``K`` (with :class:`ClosureWindows` and an
    :class:`UnrollCurriculum`, the history's ``train_unroll`` is the epoch's stage). Melchers et al. (2023).
    """

    def __init__(self, model: nn.Module, solver: CoarseSolver) -> None:
        super().__init__(model)
        self.solver = solver

    def loss(self, model: nn.Module, batch: Any):
        """``(unrolled loss, {"final_error": ...})`` on ``batch = (windows,)``."""
        error = _frame_errors(self.solver, model, batch[0])  # (batch, K)
        return error.mean(), {"final_error": error[:, -1].mean(), "unroll": float(error.shape[1])}


def check_reference(data) -> NavierStokes2D:
    """Check a filtered-DNS dataset for the coarse solver; return its equation. One-line errors for: no
    ``vorticity`` over ``(sample, time, y, x)``, non-finite values, missing equation attributes, a grid that is
    not square or not periodic (``x``/``y`` coordinates, when present, must be ``i * length / n``: the end
    point left out), and a resolution the 2/3-dealiased coarse solver cannot take (too few points, or a
    forcing it does not resolve)."""
    import numpy as np

    if "vorticity" not in data:
        raise DataError(f"the dataset has no 'vorticity' variable (it has {sorted(map(str, data.data_vars))}); "
                        "use the output of filtered_dns / `sciml node closure-data`")
    dims = tuple(data["vorticity"].dims)
    if set(dims) != {"sample", "time", "y", "x"}:
        raise DataError(f"vorticity must be over (sample, time, y, x), got {dims}")
    equation = _equation_attrs(data)
    ny, nx = int(data.sizes["y"]), int(data.sizes["x"])
    if nx != ny:
        raise DataError(f"the coarse solver needs a square grid, got y x = {ny} x {nx}")
    for axis in ("x", "y"):
        if axis in data.coords:
            coord = np.asarray(data[axis].values, dtype=np.float64)
            expected = np.arange(nx) * (equation.length / nx)
            if coord.shape != expected.shape or not np.allclose(coord - coord[0], expected, rtol=0,
                                                                atol=1e-6 * equation.length):
                raise DataError(f"{axis} runs {coord[0]:.6g}..{coord[-1]:.6g} in {len(coord)} points: not a periodic "
                                f"grid of spacing domain_length / n = {equation.length / nx:.6g} on "
                                f"[0, {equation.length:.6g}) (leave out the end point)")
    if nx < 4:
        raise DataError(f"the {nx}x{nx} grid is too coarse: the 2/3-dealiased solver needs n >= 4 points per side")
    step(equation, torch.zeros(1, nx, nx // 2 + 1, dtype=torch.complex64), 1.0)  # the solver's own resolution check
    values = data["vorticity"].values
    if not np.isfinite(values).all():
        raise DataError(f"vorticity holds {int((~np.isfinite(values)).sum())} NaN/Inf values; drop or repair those frames")
    return equation


def _solver_for(data, dt: float, scheme: str = "cn-heun", *, hold_closure: bool | int = False) -> CoarseSolver:
    equation = check_reference(data)
    times = data["time"].values
    if len(times) < 2:
        raise DataError("the filtered DNS needs at least two times")
    interval = float(times[1] - times[0])
    if not all(abs(float(b - a) - interval) <= 1e-6 * interval for a, b in zip(times, times[1:])):
        raise DataError("the filtered DNS must have equally spaced times")
    steps = round(interval / dt)
    if steps < 1 or abs(steps * dt - interval) > 1e-6 * interval:
        raise ConfigError(f"dt={dt} must divide the frame interval {interval:.6g} of the data")
    n = int(data.sizes["x"])
    courant = courant_number(equation, _vorticity(data).reshape(-1, n, n), dt)
    if courant > MAX_COURANT:
        steps = math.ceil(interval * courant / (0.5 * dt) * (1 - 1e-9))  # Courant 0.5, as filtered_dns runs
        raise ConfigError(f"dt={dt} gives a Courant number {courant:.3g} (dt (|u| + |v|) / dx, the largest over the "
                          f"reference's frames) on the {n}x{n} grid, above the coarse solver's {MAX_COURANT:g}: use "
                          f"dt = {interval:.6g}/{steps} = {interval / steps:.4g} (Courant 0.5; a divisor of the frame "
                          f"interval)")
    return CoarseSolver(equation=equation, n=int(data.sizes["x"]), dt=dt, steps_per_frame=steps, scheme=scheme,
                        hold_closure=hold_closure)


def _vorticity(data) -> torch.Tensor:
    if "vorticity" not in data:
        raise DataError(f"the dataset has no 'vorticity' variable (it has {sorted(data.data_vars)})")
    return torch.as_tensor(data["vorticity"].transpose("sample", "time", "y", "x").values, dtype=torch.float32)


def tune_smagorinsky(data: xr.Dataset, *, dt: float, frames: int = 5,
                     coefficients: Sequence[float] = tuple(0.025 * i for i in range(13)),
                     stride: int = 5, hold_closure: bool | int = False) -> tuple[float, dict[float, float]]:
    """Choose ``C_s`` by a 1-D search: :func:`unrolled_loss` over the windows of ``data`` (filtered DNS,
    ``frames + 1`` frames, every ``stride``-th start) for each of ``coefficients``; returns ``(best C_s,
    {C_s: loss})``. A run that goes unstable scores ``inf``. ``hold_closure``: see :class:`CoarseSolver`."""
    solver = _solver_for(data, dt, hold_closure=hold_closure)
    windows = trajectory_windows(_vorticity(data), frames, stride=stride)
    losses = {}
    with torch.no_grad():
        for c in coefficients:
            value = float(unrolled_loss(solver, Smagorinsky(float(c), length=solver.equation.length), windows))
            losses[float(c)] = value if math.isfinite(value) else math.inf
    return min(losses, key=losses.get), losses


def velocity_rms(vorticity: torch.Tensor, length: float) -> float:
    """The rms of one velocity component of periodic 2-D vorticity fields ``(..., n, n)`` on a box of side
    ``length``: ``sqrt(sum_k |w_k|^2 / |k|^2 / 2)`` averaged over the fields (``u = d_y psi``, ``v = -d_x psi``,
    ``-Laplacian psi = w``; isotropy splits the energy evenly), the ``velocity_scale`` of :class:`ClosureCNN`."""
    n = vorticity.shape[-1]
    k = 2 * math.pi / length * torch.fft.fftfreq(n, 1 / n, dtype=torch.float64)
    k2 = k[:, None] ** 2 + k[None, :] ** 2  # (y, x)
    power = torch.fft.fft2(vorticity.double()).abs() ** 2 / torch.where(k2 > 0, k2, 1.0)  # (..., y, x)
    return float(power.sum((-1, -2)).mean().sqrt() / n**2 / math.sqrt(2))


def train_closure(data: xr.Dataset, *, dt: float, frames: int | UnrollCurriculum = 5, stride: int = 1,
                  model: nn.Module | None = None, smagorinsky: float = 0.0, config: TrainConfig | None = None,
                  val_data: xr.Dataset | None = None, checkpoint_dir: str | os.PathLike | None = None,
                  resume: bool = False, windows_per_epoch: int | None = None,
                  hold_closure: bool | int = False) -> tuple[nn.Module, History]:
    """Train a closure a-posteriori on filtered DNS ``data`` (:func:`filtered_dns`) with :func:`sciml.train.fit`.

    Windows of ``frames + 1`` frames are unrolled through the coarse solver with step ``dt`` (which must
    divide the data's frame interval; ``hold_closure``: see :class:`CoarseSolver`). With an integer
    ``frames`` and no ``windows_per_epoch`` the windows are fixed, every ``stride``-th start; with an
    :class:`UnrollCurriculum` or ``windows_per_epoch`` they are :class:`ClosureWindows`, drawn at random
    start times every epoch (``windows_per_epoch`` of them, default the number of fixed windows at the
    longest unroll), with the curriculum's unroll length. The loss is :func:`unrolled_loss` (per frame,
    normalised by the reference's mean square at that frame). ``model`` defaults to a
    :class:`ClosureCNN` scaled by the data's vorticity rms and ``rms / frame interval`` (a hybrid on top of
    the Smagorinsky model of coefficient ``smagorinsky`` when that is > 0). Validation windows use the
    longest unroll. Returns the trained model (on the CPU, in eval mode) and the history.
    """
    from ..train import TrainConfig, fit

    solver = _solver_for(data, dt, hold_closure=hold_closure)
    vorticity = _vorticity(data)
    longest = frames.max_frames if isinstance(frames, UnrollCurriculum) else frames
    if isinstance(frames, UnrollCurriculum) or windows_per_epoch is not None:
        count = windows_per_epoch or len(trajectory_windows(vorticity, longest, stride=stride))
        train_set = ClosureWindows(vorticity, frames=frames, windows_per_epoch=count,
                                   seed=(config.seed if config is not None else 0))
    else:
        train_set = (trajectory_windows(vorticity, frames, stride=stride),)
    if model is None:
        rms = float(vorticity.pow(2).mean().sqrt())
        model = ClosureCNN(vorticity_scale=rms, tendency_scale=0.1 * rms / solver.frame_interval,
                           smagorinsky=smagorinsky, length=solver.equation.length)
    val = None if val_data is None else (trajectory_windows(_vorticity(val_data), longest, stride=stride),)
    history = fit(ClosureTask(model, solver), train_set,
                  config=config or TrainConfig(epochs=5, batch_size=8, lr=2e-3),
                  val_data=val, checkpoint_dir=checkpoint_dir, resume=resume)
    return model.cpu().eval(), history


# ------------------------------------------------------------------------------------------------- evaluation

def _energy_spectrum(w: torch.Tensor, length: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Shell-summed kinetic energy spectrum ``E(k)`` of vorticity ``(..., n, n)``: ``(..., n // 2 + 1)`` over
    integer shells ``k = round(|k|)`` (in units of ``2 pi / length``), with ``sum_k E(k) = <|u|^2> / 2``."""
    n = w.shape[-1]
    k = torch.fft.fftfreq(n, 1 / n, dtype=torch.float64)
    mag = (k[:, None] ** 2 + k[None, :] ** 2).sqrt()
    k2 = (2 * math.pi / length) ** 2 * mag**2
    power = torch.fft.fft2(w.double()).abs() ** 2 / n**4 / torch.where(k2 > 0, k2, 1.0) * 0.5
    power = torch.where(k2 > 0, power, 0.0)
    shells = mag.round().long().clamp(max=n // 2).flatten()
    flat = power.reshape(*power.shape[:-2], -1)
    out = torch.zeros(*power.shape[:-2], n // 2 + 1, dtype=torch.float64)
    out.index_add_(-1, shells, flat)
    return torch.arange(n // 2 + 1, dtype=torch.float64), out


def _correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation over the grid, ``(..., n, n) x (..., n, n) -> (...)``."""
    a = a - a.mean(dim=(-1, -2), keepdim=True)
    b = b - b.mean(dim=(-1, -2), keepdim=True)
    return (a * b).sum(dim=(-1, -2)) / (a.pow(2).sum(dim=(-1, -2)) * b.pow(2).sum(dim=(-1, -2))).sqrt()


def evaluate_closures(reference: xr.Dataset, closures: Mapping[str, Callable | None], *, dt: float,
                      threshold: float = 0.95, spectrum_from: float | None = None,
                      progress: bool = True, hold_closure: bool | int = False) -> xr.Dataset:
    """Run the coarse solver with each closure from the filtered DNS's first frame and score it.

    Args:
        reference: filtered DNS (:func:`filtered_dns`): ``vorticity(sample, time, y, x)`` with equally
            spaced times and the equation's attributes; held-out initial conditions for a fair test.
        closures: name -> ``closure(w, t)`` (``None``: no model), e.g. ``{"no model": None,
            "Smagorinsky": Smagorinsky(c), "learned": model}``.
        dt: the coarse time step; it must divide the frame interval.
        threshold: the correlation level whose first crossing defines ``decorrelation_time``.
        spectrum_from: average the energy spectra over frames with ``time >= spectrum_from`` (default:
            the second half of the run).
        hold_closure: evaluate each closure once per solver step, or once every ``m`` steps (:class:`CoarseSolver`).

    Returns:
        ``correlation(model, sample, time)``: Pearson correlation of the coarse vorticity with the
        filtered DNS; ``mean_correlation(model, time)``; ``decorrelation_time(model)``: first time the
        sample-mean correlation drops below ``threshold`` (the run's length if never);
        ``energy_spectrum(model, wavenumber)`` and ``reference_spectrum(wavenumber)``: kinetic energy
        spectra ``E(k)`` (length^3 / time^2) averaged over samples and the late frames;
        ``spectrum_error(model)``: mean over ``1 <= k <= (n - 1) // 3`` of ``|log10(E / E_ref)|``;
        ``seconds_per_time_unit(model)``: wall-clock cost of the coarse runs per unit simulated time.
    Raises:
        SolverError: a closure returned the wrong shape or the run became non-finite (named).
    """
    import numpy as np
    import xarray as xr
    from tqdm.auto import tqdm

    solver = _solver_for(reference, dt, hold_closure=hold_closure)
    truth = _vorticity(reference)
    times = reference["time"].values.astype(float)
    length = solver.equation.length
    start = times[len(times) // 2] if spectrum_from is None else float(spectrum_from)
    late = torch.as_tensor(times >= start - 1e-9)
    wavenumber, ref_spec = _energy_spectrum(truth[:, late], length)
    ref_spec = ref_spec.mean(dim=(0, 1))
    cutoff = (solver.n - 1) // 3
    names, correlations, spectra, costs, errors = list(closures), [], [], [], []
    for name in tqdm(names, desc="closure runs", disable=not progress, leave=False):
        closure = closures[name]
        if closure is not None and not callable(closure):
            raise ConfigError(f"closure {name!r} must be callable closure(w, t) or None, got {type(closure).__name__}")
        if isinstance(closure, nn.Module):
            closure = closure.to(torch.float32).eval()
        clock = time.perf_counter()
        with torch.no_grad():
            run = solver.rollout(truth[:, 0], len(times) - 1, closure)
        costs.append((time.perf_counter() - clock) / (times[-1] - times[0]))
        if not bool(torch.isfinite(run).all()):
            bad = int((~torch.isfinite(run)).flatten(2).any(-1).any(0).nonzero()[0])
            raise SolverError(f"the coarse run with closure {name!r} became non-finite by t={times[bad]:.4g}; "
                              f"the closure returns NaN/Inf or destabilises the solver (dt={dt})")
        correlations.append(_correlation(run, truth))
        spec = _energy_spectrum(run[:, late], length)[1].mean(dim=(0, 1))
        spectra.append(spec)
        errors.append(float((spec[1:cutoff + 1] / ref_spec[1:cutoff + 1]).log10().abs().mean()))
    corr = torch.stack(correlations).numpy()  # (model, sample, time)
    mean = corr.mean(axis=1)
    decorrelation = []
    for curve in mean:
        below = np.nonzero(curve < threshold)[0]
        decorrelation.append(float(times[below[0]] - times[0]) if len(below) else float(times[-1] - times[0]))
    coords = {"model": names, "sample": reference["sample"].values, "time": times, "wavenumber": wavenumber.numpy()}
    ds = xr.Dataset(
        {"correlation": (("model", "sample", "time"), corr,
                         {"long_name": "vorticity correlation with filtered DNS", "units": "1"}),
         "mean_correlation": (("model", "time"), mean, {"long_name": "sample-mean vorticity correlation", "units": "1"}),
         "decorrelation_time": (("model",), np.array(decorrelation),
                                {"long_name": f"time until the mean correlation drops below {threshold}",
                                 "units": "simulation time units"}),
         "energy_spectrum": (("model", "wavenumber"), torch.stack(spectra).numpy(),
                             {"long_name": "kinetic energy spectrum", "units": "length^3 time^-2"}),
         "reference_spectrum": (("wavenumber",), ref_spec.numpy(),
                                {"long_name": "kinetic energy spectrum of the filtered DNS", "units": "length^3 time^-2"}),
         "spectrum_error": (("model",), np.array(errors),
                            {"long_name": f"mean |log10(E / E_ref)| over 1 <= k <= {cutoff}", "units": "1"}),
         "seconds_per_time_unit": (("model",), np.array(costs),
                                   {"long_name": "wall-clock seconds per unit simulated time (whole batch)",
                                    "units": "s"})},
        coords=coords,
        attrs={"threshold": threshold, "spectrum_from": float(start), "dt": dt, "coarse_resolution": solver.n,
               "hold_closure": int(hold_closure),  # 0: every stage; m: once every m steps
               **{k: v for k, v in reference.attrs.items() if isinstance(v, (int, float, str))}})
    ds["wavenumber"].attrs.update(long_name="wavenumber |k|", units="2 pi / length")
    ds["time"].attrs.update(long_name="time", units="simulation time units")
    return ds


def plot_closure_evaluation(evaluation: xr.Dataset, *, title: str = "Coarse 2-D Navier-Stokes with closures"):
    """Two panels from :func:`evaluate_closures`: mean vorticity correlation against time per model (with
    the threshold), and the late-time energy spectra with the filtered DNS's. Returns a matplotlib Figure."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2))
    left, right = fig.subplots(1, 2)
    times = evaluation["time"].values
    for name in evaluation["model"].values:
        curve = evaluation["mean_correlation"].sel(model=name).values
        left.plot(times, curve, label=f"{name} (>{evaluation.attrs['threshold']} for "
                                      f"{float(evaluation['decorrelation_time'].sel(model=name)):.3g})")
    left.axhline(evaluation.attrs["threshold"], color="0.5", ls="--", lw=1)
    left.set_xlabel("time (simulation time units)")
    left.set_ylabel("vorticity correlation with filtered DNS (1)")
    left.set_title("correlation against time (mean over samples)")
    left.legend(fontsize=8)
    k = evaluation["wavenumber"].values
    reference = evaluation["reference_spectrum"].values
    sel = (k >= 1) & (reference > 1e-10 * reference.max())  # the shells the filtered DNS fills
    right.loglog(k[sel], evaluation["reference_spectrum"].values[sel], "k-", lw=2, label="filtered DNS")
    for name in evaluation["model"].values:
        right.loglog(k[sel], evaluation["energy_spectrum"].sel(model=name).values[sel], label=str(name))
    cutoff = evaluation.attrs.get("filter_cutoff")
    if cutoff:
        right.axvline(cutoff, color="0.5", ls=":", lw=1)
    right.set_xlabel("wavenumber |k| (2π / length)")
    right.set_ylabel("energy spectrum E(k) (length³ time⁻²)")
    right.set_title(f"energy spectra, t ≥ {evaluation.attrs['spectrum_from']:.3g}")
    right.legend(fontsize=8)
    fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------------------------- save / load

def save_closure(model: nn.Module, directory: str | os.PathLike, *, overwrite: bool = False,
                 metadata: Mapping[str, Any] | None = None) -> Path:
    """Write a :class:`ClosureCNN` or :class:`Smagorinsky` as ``manifest.json`` (kind, options, ``metadata``)
    plus ``weights.pt`` (tensors only), atomically."""
    from .._atomic import write_model_directory
    from .._version import __version__

    if isinstance(model, ClosureCNN):
        kind, options = "cnn", dict(model.options)
    elif isinstance(model, Smagorinsky):
        kind, options = "smagorinsky", {"length": model.length}
    else:
        raise ConfigError(f"save_closure saves a ClosureCNN or Smagorinsky, got {type(model).__name__}")
    manifest = {"format": "sciml-closure", "format_version": FORMAT_VERSION, "sciml_version": __version__,
                "kind": kind, "options": options, "metadata": dict(metadata or {})}
    return write_model_directory(directory, manifest, model, overwrite=overwrite)


def load_closure(directory: str | os.PathLike) -> nn.Module:
    """Read a closure written by :func:`save_closure` (weights with ``torch.load(weights_only=True)``, checked
    against the manifest: the same tensor names and shapes, all finite); returned on the CPU in eval mode."""
    directory = Path(directory)
    manifest_path, weights_path = directory / "manifest.json", directory / "weights.pt"
    if not manifest_path.is_file() or not weights_path.is_file():
        raise DataError(f"{directory}: not a saved closure (needs manifest.json and weights.pt)")
    try:
        manifest = json.loads(manifest_path.read_text())
        kind, options = manifest["kind"], manifest["options"]
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{manifest_path}: unreadable closure manifest ({err})") from None
    if manifest.get("format") != "sciml-closure" or manifest.get("format_version") != FORMAT_VERSION:
        raise DataError(f"{manifest_path}: not a sciml closure manifest of format version {FORMAT_VERSION}")
    try:
        model = ClosureCNN(**options) if kind == "cnn" else Smagorinsky(length=options["length"]) \
            if kind == "smagorinsky" else None
    except (TypeError, KeyError) as err:
        raise DataError(f"{manifest_path}: bad options for closure kind {kind!r} ({err})") from None
    if model is None:
        raise DataError(f"{manifest_path}: unknown closure kind {kind!r}; expected 'cnn' or 'smagorinsky'")
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file
        raise DataError(f"{weights_path}: unreadable weights ({type(err).__name__}: {err})"[:300]) from None
    expected = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected):
        raise DataError(f"{weights_path}: tensors do not match the {kind} closure of the manifest")
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor) or tensor.shape != expected[name].shape:
            raise DataError(f"{weights_path}: tensor {name!r} has the wrong shape for the manifest's closure")
        if not bool(torch.isfinite(tensor).all()):
            raise DataError(f"{weights_path}: tensor {name!r} holds NaN/Inf")
    model.load_state_dict(state)
    return model.eval()
