"""Neural-ODE turbulence models: the decay of turbulence statistics learned from DNS (and learned closures).

``predict_statistics(model, initial, times)`` integrates a neural ODE ``d(state)/dt = f_theta(state, params)``
on the positive statistics of decaying turbulence (``log K``, ``log eps`` and, stratified, ``log K_P``),
conditioned on the Reynolds and (inverse) Froude numbers, from a DNS statistics dataset (the
``turbulence3d`` and ``turbulence2d`` recipes) or given initial values, with the calibrated k-epsilon and
power-law baselines beside it; ``fit_statistics_model`` trains one by trajectory fitting through
:func:`sciml.train.fit` (Portwood et al. 2019, "Turbulence forecasting via Neural ODE", arXiv:1911.05180), and
``fit_statistics_ensemble`` a deep ensemble of them, whose prediction carries a spread.

``evaluate_closures(reference, closures, dt=...)`` runs a coarse 2-D Navier-Stokes solver with learned or
Smagorinsky closures against filtered DNS (:mod:`sciml.node.closure`); ``train_closure`` trains one
a-posteriori, unrolling the differentiable solver through :func:`sciml.train.fit` (Melchers et al. 2023).

Importing this package loads nothing heavy: each name loads its module on first use (PEP 562), and
xarray, torchdiffeq, scipy and matplotlib load inside the functions that need them.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "statistics": ("StatisticsConfig", "StatisticsODE", "StatisticsTask", "StatisticsModel", "StatisticsEnsemble",
                   "KEpsilonBaseline", "PowerLawBaseline", "fit_statistics_model", "fit_statistics_ensemble",
                   "predict_statistics", "decay_errors", "interval_coverage", "load_statistics_model",
                   "trajectories_from_dataset", "Trajectories"),
    "figures": ("plot_decay",),
    "closure": ("CoarseSolver", "spectral_filter", "filtered_dns", "check_reference", "ClosureCNN", "Smagorinsky",
                "ClosureTask", "UnrollCurriculum", "ClosureWindows", "trajectory_windows", "unrolled_loss", "tune_smagorinsky", "train_closure",
                "evaluate_closures", "plot_closure_evaluation", "save_closure", "load_closure", "velocity_rms"),
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _LAZY)
