"""The benchmark problems: the same physical setting, solved three ways.

Each problem fixes a dataset recipe's physical setting (``sciml.datasets``) and provides

* ``inputs(n, resolution, ...)``: the initial conditions / coefficients of samples ``first_sample, ...``
  of a seed, resolution-consistent (the same seed at another resolution is the same continuous field);
* ``solve(inputs, reference=...)``: the numerical solver's answer to one query on the inputs' grid
  (what is timed, per sample); the reference run uses a smaller time step and float64;
* ``training_data(n, resolution, ...)``: the recipe's training set (timed as the data-generation cost);
* ``error(field, reference)``: relative L2 per sample, measured **on the reference grid**: a field
  on a coarser grid is first brought there by the problem's interpolant (band-limited Fourier
  interpolation on periodic boxes, bilinear on the nodes of the Darcy square), so every error is the
  distance between two functions, whatever grid each came from, and the error of a coarse grid
  includes what it cannot represent.

Problems: ``ns2d`` (vorticity ``w(0) -> w(lead_time)``, Li et al. 2021 forcing, nu = 1e-3),
``darcy`` (coefficient ``a -> pressure``), ``burgers`` (``u(0) -> u(lead_time)``, nu = 0.1), ``swe``
(rotating shallow water on the sphere, ``(h, u, v)(0) -> (h, u, v)(lead_time)`` in hours, an SFNO as
the surrogate, errors area-weighted). Their
constructors' keyword parameters (``viscosity``, ``lead_time``, ...) set the physical problem:
``get_problem(name, **parameters)``, ``sciml bench NAME --param KEY=VALUE``.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, ClassVar, Mapping

import torch

from ..errors import ConfigError, SciMLError
from ..grids import Grid
from ..metrics import rel_l2
from ..spectral import spectral_resample
from ..train import TrainConfig

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["Sizes", "Problem", "NS2D", "Darcy", "Burgers", "SWE", "PROBLEMS", "get_problem"]


#: Training of the quick benchmark surrogates (``Sizes.train``); the run sets ``seed``, ``device`` and ``progress``.
QUICK_TRAINING = TrainConfig(epochs=40, batch_size=8, lr=3e-3)
FULL_TRAINING = TrainConfig(epochs=100, batch_size=16, lr=1e-3)


@dataclass(frozen=True, kw_only=True)
class Sizes:
    """How big a benchmark run is. Every field can be overridden in :func:`run_benchmark` by keyword, the
    training and model options by dotted keys (``**{"train.epochs": 8, "model.hidden_channels": 8}``;
    ``--set train.epochs=8`` on the command line).

    Attributes:
        n_train: training samples (sample indices ``0 .. n_train - 1`` of the seed).
        n_test: test samples (indices ``n_train ..``, never trained on); solver and surrogate are
            both timed on this batch, so their per-sample costs are for the same batch size.
        train_resolution: grid of the training data (and the headline surrogate point).
        solver_resolutions: the solver ladder.
        reference_resolution: grid of the reference solution every error is measured against.
        surrogate_resolutions: grids the surrogate is also evaluated on (zero-shot); the training
            resolution is always included.
        model: options of the FNO: ``hidden_channels``, ``n_layers`` and ``n_modes`` (per dim, capped at
            half the training grid); the rest is what the model chooses for the grid.
        train: the training options (:class:`~sciml.train.TrainConfig`): epochs (deterministic: two runs
            with a seed train identically), batch size, learning rate, and an optional wall-clock budget
            ``max_time``, with which errors are no longer reproducible. Its ``seed``, ``device`` and
            ``progress`` are the run's.
        repeats: timing rounds; each calls every solver and surrogate run once, interleaved
            (:func:`sciml.bench.harness.interleaved`).
        warmup: untimed rounds before them (each run was also called once before, for its error,
            memory and first-call time).
    """

    n_train: int
    n_test: int
    train_resolution: int
    solver_resolutions: tuple[int, ...]
    reference_resolution: int
    surrogate_resolutions: tuple[int, ...] = ()
    model: Mapping[str, int] = field(default_factory=lambda: {"hidden_channels": 16, "n_modes": 12, "n_layers": 4})
    train: TrainConfig = QUICK_TRAINING
    repeats: int = 15
    warmup: int = 1

    def __post_init__(self) -> None:
        for name in ("n_train", "n_test", "repeats"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise ConfigError(f"warmup must be an integer >= 0, got {self.warmup!r}")
        unknown = sorted(set(self.model) - set(MODEL_OPTIONS))
        if unknown:
            raise ConfigError(f"unknown model option(s) {unknown}; the benchmark FNO takes {list(MODEL_OPTIONS)}")
        for name, value in self.model.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"model.{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.train, TrainConfig):
            raise ConfigError(f"train must be a sciml.train.TrainConfig, got {type(self.train).__name__}")
        for name in ("train_resolution", "reference_resolution"):
            _check_resolution(name, getattr(self, name))
        for name in ("solver_resolutions", "surrogate_resolutions"):
            values = getattr(self, name)
            if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
                raise ConfigError(f"{name} must be a list of integers, got {values!r}")
            for value in values:
                _check_resolution(name, value)
        object.__setattr__(self, "solver_resolutions", tuple(sorted({int(r) for r in self.solver_resolutions})))
        surrogate = {int(r) for r in self.surrogate_resolutions} | {int(self.train_resolution)}
        object.__setattr__(self, "surrogate_resolutions", tuple(sorted(surrogate)))
        object.__setattr__(self, "model", {**MODEL_OPTIONS, **self.model})
        if not self.solver_resolutions:
            raise ConfigError("solver_resolutions must not be empty")
        every = (*self.solver_resolutions, *self.surrogate_resolutions)
        if any(r < 4 for r in every):
            raise ConfigError(f"resolutions must be >= 4, got {sorted(set(every))}")
        if max(every) > self.reference_resolution:
            raise ConfigError(f"reference_resolution {self.reference_resolution} must be at least every solver and "
                              f"surrogate resolution (largest {max(every)})")

    def with_overrides(self, **overrides) -> Sizes:
        """A copy with fields replaced; ``"train.<option>"`` and ``"model.<option>"`` keys set one option."""
        known = {f.name for f in fields(self)}
        flat, train, model = {}, {}, {}
        for key, value in overrides.items():
            head, dot, tail = key.partition(".")
            if dot and head == "train":
                train[tail] = value
            elif dot and head == "model":
                model[tail] = value
            elif not dot and key in known - {"train", "model"}:
                flat[key] = value
            else:
                raise ConfigError(f"unknown benchmark size option {key!r}; known: {sorted(known - {'train', 'model'})}, "
                                  "train.<TrainConfig field>, model.<hidden_channels|n_modes|n_layers>")
        train_fields = {f.name for f in fields(TrainConfig)} - {"seed", "device", "progress"}
        unknown = sorted(set(train) - train_fields)
        if unknown:
            raise ConfigError(f"unknown training option(s) {['train.' + k for k in unknown]}; known: "
                              f"{sorted('train.' + k for k in train_fields)}")
        return replace(self, **flat, train=replace(self.train, **train), model={**self.model, **model})

    def as_dict(self) -> dict:
        values = asdict(self)
        values["train"] = {k: v for k, v in asdict(self.train).items() if k not in ("seed", "device", "progress")}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


#: The benchmark FNO's options and their defaults.
MODEL_OPTIONS = {"hidden_channels": 16, "n_modes": 12, "n_layers": 4}


def _check_resolution(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must hold integers (grid points per side), got {value!r}")


class Problem:
    """Interface of a benchmark problem (see the module docstring)."""

    name: ClassVar[str]
    ndim: ClassVar[int]
    inputs_vars: ClassVar[tuple[str, ...]]
    outputs_vars: ClassVar[tuple[str, ...]]
    lag: ClassVar[int | None]
    solver_dtype: ClassVar[torch.dtype] = torch.float32
    #: The registered model the harness trains (:func:`sciml.surrogate.fit_surrogate`'s ``model``) and its loss.
    model: ClassVar[str] = "fno"
    loss: ClassVar[str] = "rel_l2"
    quick: ClassVar[Sizes]
    full: ClassVar[Sizes]

    def sizes(self, quick: bool) -> Sizes:
        return self.quick if quick else self.full

    def setting(self) -> dict:
        """The physical setting and the map benchmarked, for the results file."""
        raise NotImplementedError

    def inputs(self, n: int, resolution: int, *, seed: int, first_sample: int, device: torch.device,
               dtype: torch.dtype) -> torch.Tensor:
        raise NotImplementedError

    def solve(self, inputs: torch.Tensor, *, reference: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def training_data(self, n: int, resolution: int, *, seed: int, device: torch.device) -> xr.Dataset:
        raise NotImplementedError

    def surrogate_inputs(self, n: int, resolution: int, *, seed: int, first_sample: int, device: torch.device,
                         dtype: torch.dtype) -> torch.Tensor:
        """The surrogate's input ``(batch, channel, *space)`` for the same samples as :meth:`inputs`: by
        default the inputs with one channel."""
        return self.inputs(n, resolution, seed=seed, first_sample=first_sample, device=device, dtype=dtype)[:, None]

    def surrogate_output(self, prediction: torch.Tensor) -> torch.Tensor:
        """The surrogate's output ``(batch, channel, *space)`` in the layout of :meth:`solve`'s answer (by
        default the one channel dropped), which :meth:`error` scores."""
        return prediction[:, 0]

    def grid(self, resolution: int) -> Grid:
        return Grid.box(*(resolution,) * self.ndim)

    def to_resolution(self, field: torch.Tensor, resolution: int) -> torch.Tensor:
        """Band-limited Fourier interpolation of ``(batch, *space)`` onto ``resolution`` points per side."""
        return spectral_resample(field, (resolution,) * self.ndim)

    def model_options(self, sizes: Sizes) -> dict:
        """The FNO options the benchmark gives; the boundary treatment follows from the training grid."""
        modes = min(sizes.model["n_modes"], sizes.train_resolution // 2)
        return {"hidden_channels": sizes.model["hidden_channels"], "n_layers": sizes.model["n_layers"],
                "n_modes": (modes,) * self.ndim}

    def error(self, field: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Relative L2 per sample of ``field`` ``(batch, *space)`` against ``reference`` on the reference grid."""
        resolution = reference.shape[-1]
        on_reference = self.to_resolution(field.to(device=reference.device, dtype=torch.float64), resolution)
        return rel_l2(on_reference[:, None], reference.to(torch.float64)[:, None], grid=self.grid(resolution)).cpu()


class NS2D(Problem):
    """2-D Navier-Stokes (``sciml.datasets.ns2d``): vorticity ``w(0) -> w(lead_time)``.

    Solver ladder: the recipe's Crank-Nicolson/Heun scheme at each resolution with its own CFL-limited
    step (:func:`~sciml.solvers.navier_stokes.stable_dt`, Courant 0.5 at 1.5x the initial peak speed),
    float32. Reference: float64 at ``reference_resolution`` with the recipe's step (capped at 0.01)
    divided by ``reference_dt_factor``.
    """

    name = "ns2d"
    ndim = 2
    inputs_vars = outputs_vars = ("vorticity",)
    lag = 1
    quick = Sizes(n_train=128, n_test=16, train_resolution=32, solver_resolutions=(8, 16, 32), reference_resolution=64,
                  surrogate_resolutions=(32, 64), train=replace(QUICK_TRAINING, epochs=50))
    full = Sizes(n_train=1000, n_test=64, train_resolution=64, solver_resolutions=(8, 16, 32, 64, 128, 256),
                 reference_resolution=512, surrogate_resolutions=(64, 128, 256), train=FULL_TRAINING,
                 model={"hidden_channels": 32, "n_modes": 16})

    def __init__(self, *, viscosity: float = 1e-3, lead_time: float = 1.0, reference_dt_factor: int = 4) -> None:
        from ..solvers.navier_stokes import NavierStokes2D

        _check_time_parameters(lead_time, reference_dt_factor)
        self.viscosity, self.lead_time, self.reference_dt_factor = viscosity, lead_time, reference_dt_factor
        self.eq = NavierStokes2D(viscosity=viscosity, forcing="li2021")

    def setting(self) -> dict:
        from ..datasets import ns2d

        return {"equation": "2-D incompressible Navier-Stokes, vorticity form, periodic unit square",
                "map": f"vorticity w(0) -> w({self.lead_time:g})", "viscosity": self.viscosity, "forcing": "li2021",
                "initial_condition": {"grf": {k: float(v) for k, v in ns2d.LI2021_VORTICITY_GRF.items()}},
                "solver": "Crank-Nicolson/Heun pseudo-spectral, 2/3 dealiasing, CFL-limited step, float32",
                "reference": f"same scheme, float64, recipe step / {self.reference_dt_factor}",
                "error_interpolant": "band-limited Fourier interpolation to the reference grid",
                "training_data": "sciml.datasets.ns2d.generate at the training resolution (recipe step)"}

    def inputs(self, n, resolution, *, seed, first_sample, device, dtype):
        from ..datasets import ns2d

        return ns2d.initial_condition(n, resolution, seed=seed, first_sample=first_sample, device=device, dtype=dtype)

    def solve(self, inputs, *, reference=False):
        from ..datasets import ns2d
        from ..solvers.navier_stokes import integrate, stable_dt

        dt = ns2d.time_step(self.eq, inputs) / self.reference_dt_factor if reference else stable_dt(self.eq, inputs)
        return integrate(self.eq, inputs, [0.0, self.lead_time], dt=dt)[:, -1]

    def training_data(self, n, resolution, *, seed, device):
        from ..datasets import ns2d

        return ns2d.generate(n, resolution, seed=seed, times=(0.0, self.lead_time), viscosity=self.viscosity,
                             device=device, progress=False)


class Darcy(Problem):
    """2-D Darcy flow (``sciml.datasets.darcy``): coefficient ``a -> pressure``, ``resolution`` = nodes per side.

    Solver ladder and reference: the 5-point finite-volume solver (sparse LU on CPU, batched CG
    elsewhere: ``Darcy2D(method="auto")``), float64. Nodes ``x_i = i / (s - 1)``: a
    coarse solution is compared with the reference after bilinear interpolation onto the reference
    nodes, with trapezoidal quadrature.
    """

    name = "darcy"
    ndim = 2
    inputs_vars = ("a",)
    outputs_vars = ("pressure",)
    lag = None
    solver_dtype = torch.float64
    quick = Sizes(n_train=128, n_test=16, train_resolution=33, solver_resolutions=(9, 17, 33, 65),
                  reference_resolution=257, surrogate_resolutions=(33, 65), train=replace(QUICK_TRAINING, epochs=30))
    full = Sizes(n_train=1000, n_test=64, train_resolution=65, solver_resolutions=(9, 17, 33, 65, 129, 257),
                 reference_resolution=513, surrogate_resolutions=(65, 129, 257), train=FULL_TRAINING,
                 model={"hidden_channels": 32, "n_modes": 16})

    def __init__(self, *, coefficient_kind: str = "threshold") -> None:
        from ..datasets.darcy import COEFFICIENTS

        if coefficient_kind not in COEFFICIENTS:
            raise ConfigError(f"coefficient_kind must be one of {COEFFICIENTS}, got {coefficient_kind!r}")
        self.coefficient_kind = coefficient_kind

    def setting(self) -> dict:
        from ..datasets import darcy

        return {"equation": "-div(a grad p) = 1 on the unit square, p = 0 on the boundary",
                "map": "coefficient a -> pressure p", "coefficient": self.coefficient_kind,
                "coefficient_grf": dict(darcy.GRF),
                "solver": "5-point finite volumes, harmonic-mean faces; sparse LU (CPU) or batched CG (GPU), float64",
                "reference": "same solver at the reference resolution",
                "error_interpolant": "bilinear interpolation to the reference nodes, trapezoidal quadrature",
                "training_data": "sciml.datasets.darcy.generate at the training resolution"}

    def grid(self, resolution):
        return Grid.bounded(resolution, resolution)

    def to_resolution(self, field, resolution):
        if field.shape[-1] == resolution:
            return field
        return torch.nn.functional.interpolate(field[:, None], size=(resolution, resolution), mode="bilinear",
                                               align_corners=True)[:, 0]  # nodes map onto nodes

    def inputs(self, n, resolution, *, seed, first_sample, device, dtype):
        from ..datasets import darcy

        a = darcy.coefficient(n, resolution, seed=seed, first_sample=first_sample, kind=self.coefficient_kind)
        return a.to(device=device, dtype=dtype)

    def solve(self, inputs, *, reference=False):
        from ..solvers.darcy import Darcy2D, solve_pressure

        return solve_pressure(Darcy2D(forcing=1.0), inputs)

    def training_data(self, n, resolution, *, seed, device):
        from ..datasets import darcy

        return darcy.generate(n, resolution, seed=seed, coefficient_kind=self.coefficient_kind, device=device,
                              progress=False)


class Burgers(Problem):
    """1-D viscous Burgers (``sciml.datasets.burgers``): ``u(0) -> u(lead_time)``.

    Solver ladder: ETDRK4 pseudo-spectral at each resolution with its CFL step, float32. Reference:
    float64 at ``reference_resolution`` with the CFL step divided by ``reference_dt_factor``.
    """

    name = "burgers"
    ndim = 1
    inputs_vars = outputs_vars = ("u",)
    lag = 1
    quick = Sizes(n_train=256, n_test=16, train_resolution=64, solver_resolutions=(8, 16, 32, 64),
                  reference_resolution=256, surrogate_resolutions=(64, 128), model={"hidden_channels": 32, "n_modes": 16})
    full = Sizes(n_train=1000, n_test=64, train_resolution=128, solver_resolutions=(8, 16, 32, 64, 128, 256),
                 reference_resolution=1024, surrogate_resolutions=(128, 256, 1024), train=replace(FULL_TRAINING, epochs=200),
                 model={"hidden_channels": 64, "n_modes": 16})

    def __init__(self, *, viscosity: float = 0.1, lead_time: float = 1.0, reference_dt_factor: int = 4) -> None:
        from ..solvers.burgers import Burgers1D

        _check_time_parameters(lead_time, reference_dt_factor)
        self.viscosity, self.lead_time, self.reference_dt_factor = viscosity, lead_time, reference_dt_factor
        self.eq = Burgers1D(viscosity=viscosity)

    def setting(self) -> dict:
        from ..datasets import burgers

        return {"equation": "1-D viscous Burgers, periodic unit interval", "map": f"u(0) -> u({self.lead_time:g})",
                "viscosity": self.viscosity, "initial_condition": {"grf": dict(burgers.LI2021_BURGERS_GRF)},
                "solver": "ETDRK4 pseudo-spectral, 2/3 dealiasing, CFL step, float32",
                "reference": f"same scheme, float64, CFL step / {self.reference_dt_factor}",
                "error_interpolant": "band-limited Fourier interpolation to the reference grid",
                "training_data": "sciml.datasets.burgers.generate solved at the training resolution"}

    def inputs(self, n, resolution, *, seed, first_sample, device, dtype):
        from ..datasets.burgers import LI2021_BURGERS_GRF
        from ..random_fields import gaussian_random_field

        return gaussian_random_field(Grid.box(resolution), n, seed=seed, first_sample=first_sample, dtype=dtype,
                                     device=device, **LI2021_BURGERS_GRF)

    def solve(self, inputs, *, reference=False):
        from ..solvers.burgers import integrate, stable_dt

        dt = stable_dt(self.eq, inputs) / (self.reference_dt_factor if reference else 1)
        return integrate(self.eq, inputs, [0.0, self.lead_time], dt=dt)[:, -1]

    def training_data(self, n, resolution, *, seed, device):
        from ..datasets import burgers

        return burgers.generate(n, resolution, seed=seed, times=(0.0, self.lead_time), viscosity=self.viscosity,
                                solve_resolution=resolution, device=device, dtype=torch.float32, progress=False)


class SWE(Problem):
    """Rotating shallow water on the sphere (``sciml.datasets.swe_sphere``, random balanced flows):
    ``(height, eastward_velocity, northward_velocity)`` at 0 h ``->`` at ``lead_time`` hours.

    ``resolution`` is the number of latitudes of the equiangular ``nlat x 2 nlat`` grid (poles included).
    Inputs: the recipe's random flow (vorticity degrees ``<= 10`` in nonlinear balance, rms speed 20 m/s),
    the same continuous state at every resolution. Solver ladder: the pseudo-spectral solver
    (:mod:`sciml.solvers.shallow_water`, AB3 + hyperdiffusion, float64, the only precision of its
    transforms) at each resolution with the recipe's own step (the longest ``<= 150 s * 64 / nlat``
    dividing an hour: 600 s at 16, 400 s at 24, 300 s at 32). Reference: the same solver at
    ``reference_resolution`` with that step divided by ``reference_dt_factor`` (2 by default: at 64 x 128 the
    recipe's step is already within 2e-5 of a step 4x smaller for a 6 h lead, against 1.6e-3 for the 32 x 64
    grid's truncation). Surrogate: an SFNO
    (registry ``sfno``; ``model.n_modes`` is its ``lmax``, capped by the grid) trained by
    :func:`sciml.surrogate.fit_surrogate` with ``loss="anomaly_rel_l2"`` on ``lead_time`` pairs, ``train_steps``
    consecutive pairs per training trajectory.

    Error: a field on another grid is brought to the reference grid through the solver's spectral
    representation (:func:`~sciml.solvers.shallow_water.to_spectrum`: geopotential, vorticity, divergence;
    zero-padded to the reference truncation; :func:`~sciml.solvers.shallow_water.to_fields`), then the
    area-weighted relative L2 of each variable's departure from rest (height minus the mean depth
    ``H = 10 km``, whose ~10 km would otherwise swamp the ~100 m waves), averaged over the three
    variables::

        error = (1/3) sum_c ||f_c - r_c||_A / ||r_c - H_c||_A,   H = (H, 0, 0),   ||g||_A^2 = sum w_ij g_ij^2

    with ``w`` the grid's cell areas (:meth:`sciml.grids.Grid.latlon` quadrature). Bonev et al. 2023
    (arXiv:2306.03838) for the SFNO, Williamson et al. 1992 for the equations.
    """

    name = "swe"
    ndim = 2
    inputs_vars = outputs_vars = ("height", "eastward_velocity", "northward_velocity")
    lag = 1
    solver_dtype = torch.float64
    model = "sfno"
    loss = "anomaly_rel_l2"
    quick = Sizes(n_train=24, n_test=8, train_resolution=32, solver_resolutions=(8, 12, 16, 24, 32), reference_resolution=64,
                  model={"hidden_channels": 16, "n_modes": 16, "n_layers": 4},
                  train=replace(QUICK_TRAINING, epochs=40, batch_size=8, lr=3e-3), repeats=9)
    full = Sizes(n_train=200, n_test=32, train_resolution=64, solver_resolutions=(8, 12, 16, 24, 32, 48, 64, 96),
                 reference_resolution=128, surrogate_resolutions=(64, 96), train=FULL_TRAINING,
                 model={"hidden_channels": 64, "n_modes": 32, "n_layers": 4})

    #: Consecutive ``lead_time`` pairs per training trajectory (one solve gives this many pairs).
    train_steps: ClassVar[int] = 4

    def __init__(self, *, lead_time: float = 6.0, reference_dt_factor: int = 2) -> None:
        from ..solvers.shallow_water import ShallowWater

        _check_time_parameters(lead_time, reference_dt_factor)
        if lead_time != int(lead_time):
            raise ConfigError(f"lead_time must be a whole number of hours (the recipe's steps divide an hour), got "
                              f"{lead_time!r}")
        self.lead_time, self.reference_dt_factor = float(lead_time), reference_dt_factor
        self.eq = ShallowWater()

    @staticmethod
    def time_step(resolution: int) -> float:
        """The recipe's step in s at ``resolution`` latitudes: the longest ``<= 150 * 64 / resolution`` dividing
        an hour (as :func:`sciml.datasets.swe_sphere.generate`)."""
        return 3600.0 / math.ceil(3600.0 * resolution / (150.0 * 64))

    def setting(self) -> dict:
        from ..datasets import swe_sphere

        return {"equation": "rotating shallow water on the sphere (Earth-like constants), vorticity-divergence form",
                "map": f"(height, eastward_velocity, northward_velocity) at 0 h -> at {self.lead_time:g} h",
                "initial_condition": {"random": dict(swe_sphere.RANDOM_FLOW)},
                "grid": "equiangular nlat x 2 nlat, poles included (resolution = nlat)",
                "resolution": "latitudes (longitudes: twice as many)",
                "solver": "spherical-harmonic pseudo-spectral, AB3 + implicit hyperdiffusion, recipe step, float64",
                "reference": f"same scheme, float64, recipe step / {self.reference_dt_factor}",
                "error_interpolant": "spectral: to_spectrum, zero-padded to the reference truncation, to_fields",
                "error": "area-weighted relative L2 of (h - H, u, v) per variable, mean over the three",
                "surrogate": "SFNO (sciml model 'sfno'), fit_surrogate with loss anomaly_rel_l2",
                "training_data": f"sciml.datasets.swe_sphere.generate (random flows) at the training resolution, "
                                 f"{self.train_steps} consecutive {self.lead_time:g} h pairs per trajectory"}

    def grid(self, resolution):
        return Grid.latlon(resolution, 2 * resolution)

    def inputs(self, n, resolution, *, seed, first_sample, device, dtype):
        """The solver's initial spectra ``(batch, 3, nlat, nlat)`` complex128 (``dtype`` is the solver's, float64)."""
        from ..datasets import swe_sphere

        return swe_sphere.initial_state(n, resolution, seed=seed, first_sample=first_sample, kind="random",
                                        device=device)

    def surrogate_inputs(self, n, resolution, *, seed, first_sample, device, dtype):
        from ..solvers.shallow_water import to_fields

        spectra = self.inputs(n, resolution, seed=seed, first_sample=first_sample, device=device, dtype=dtype)
        return to_fields(self.eq, spectra).to(dtype)  # (batch, 3, lat, lon)

    def surrogate_output(self, prediction):
        return prediction

    def solve(self, inputs, *, reference=False):
        from ..solvers.shallow_water import integrate

        dt = self.time_step(inputs.shape[-1]) / (self.reference_dt_factor if reference else 1)
        return integrate(self.eq, inputs, [0.0, 3600.0 * self.lead_time], dt=dt)[:, -1]  # (batch, 3, lat, lon)

    def training_data(self, n, resolution, *, seed, device):
        from ..datasets import generate

        times = [k * self.lead_time for k in range(self.train_steps + 1)]
        return generate("swe-sphere", n, resolution, seed=seed, times=times, initial_condition="random",
                        device=device, progress=False)

    def model_options(self, sizes):
        """``model.n_modes`` as the SFNO's ``lmax``, capped at the most the training grid resolves exactly
        (``2 lmax - 1 <= nlat`` on the equiangular grid, :func:`sciml.models.sfno.least_points`)."""
        lmax = min(sizes.model["n_modes"], (sizes.train_resolution + 1) // 2)
        return {"hidden_channels": sizes.model["hidden_channels"], "n_layers": sizes.model["n_layers"], "lmax": lmax}

    def to_resolution(self, field, resolution):
        """``(batch, 3, nlat, 2 nlat)`` fields onto ``resolution`` latitudes through the solver's spectrum."""
        from ..solvers.shallow_water import to_fields, to_spectrum

        if field.shape[-2] == resolution:
            return field
        spectrum = to_spectrum(self.eq, field.to(torch.float64))
        keep = min(resolution, spectrum.shape[-1])
        padded = spectrum.new_zeros(*spectrum.shape[:-2], resolution, resolution)
        padded[..., :keep, :keep] = spectrum[..., :keep, :keep]
        return to_fields(self.eq, padded)

    def error(self, field, reference):
        """Per sample, ``(batch,)``: the mean over the variables of the area-weighted relative L2 of
        ``field`` ``(batch, 3, lat, lon)`` against ``reference``, heights as departures from the mean depth."""
        resolution = reference.shape[-2]
        reference = reference.to(torch.float64)
        on_reference = self.to_resolution(field.to(device=reference.device, dtype=torch.float64), resolution)
        rest = reference.new_tensor([self.eq.mean_depth, 0.0, 0.0]).reshape(1, 3, 1, 1)
        grid = self.grid(resolution)
        per_variable = [rel_l2(on_reference[:, c:c + 1] - rest[:, c:c + 1], reference[:, c:c + 1] - rest[:, c:c + 1],
                               grid=grid) for c in range(3)]
        return torch.stack(per_variable).mean(dim=0).cpu()


def _check_time_parameters(lead_time: float, reference_dt_factor: int) -> None:
    if isinstance(lead_time, bool) or not isinstance(lead_time, (int, float)) or not (math.isfinite(lead_time)
                                                                                     and lead_time > 0):
        raise ConfigError(f"lead_time must be a positive number, got {lead_time!r}")
    if isinstance(reference_dt_factor, bool) or not isinstance(reference_dt_factor, int) or reference_dt_factor < 1:
        raise ConfigError(f"reference_dt_factor must be an integer >= 1, got {reference_dt_factor!r}")


PROBLEMS: dict[str, type[Problem]] = {"ns2d": NS2D, "darcy": Darcy, "burgers": Burgers, "swe": SWE}


def parameters(name: str) -> dict[str, object]:
    """The keyword parameters of problem ``name`` and their defaults."""
    if name not in PROBLEMS:
        raise ConfigError(f"unknown benchmark problem {name!r}; available: {', '.join(PROBLEMS)}")
    return {key: p.default for key, p in inspect.signature(PROBLEMS[name]).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _check_type(problem: str, key: str, value: object, default: object) -> None:
    """A parameter's value has its default's kind: a real number (not a bool) for numbers, else the same type."""
    number = isinstance(default, (int, float)) and not isinstance(default, bool)
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) if number else isinstance(value, type(default))
    if not ok:
        kind = "a number" if number else type(default).__name__
        raise ConfigError(f"benchmark problem {problem!r}: {key} must be {kind}, got {value!r}")


def get_problem(problem: str | Problem, **options) -> Problem:
    """A :class:`Problem` by name (``ns2d``, ``darcy``, ``burgers``, ``swe``) with ``options`` for its constructor
    (e.g. ``viscosity``, ``lead_time``), or the instance given (then without options).

    Unknown names, unknown parameters and bad values raise :class:`~sciml.errors.ConfigError`.
    """
    if isinstance(problem, Problem):
        if options:
            raise ConfigError(f"problem options {sorted(options)} apply to a problem given by name, not an instance")
        return problem
    known = parameters(problem)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"benchmark problem {problem!r} has no parameter(s) {unknown}; "
                          f"known: {', '.join(f'{k} (default {v!r})' for k, v in known.items())}")
    for key, value in options.items():
        _check_type(problem, key, value, known[key])
    try:
        return PROBLEMS[problem](**options)
    except SciMLError as err:  # a value out of range, named by the constructor
        raise ConfigError(f"benchmark problem {problem!r}: {err}") from None
