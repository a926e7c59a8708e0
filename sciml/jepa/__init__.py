"""PDE-JEPA: coefficient discovery from unlabelled solutions with a joint-embedding encoder.

Built so far:

* data with known coefficients (:mod:`sciml.jepa.data`): Burgers with per-sample viscosity and 2-D Navier-Stokes
  with per-sample viscosity and forcing amplitude, drawn per group of trajectories, the coefficients as
  coordinates along ``sample`` for probes and baselines only;
* views (:mod:`sciml.jepa.views`): space-time crops, pairs from one trajectory or from two trajectories that
  share their coefficients;
* Lie point symmetries (:mod:`sciml.jepa.symmetries`) applied exactly to gridded solutions, with the
  coefficient transformed as the symmetry says, and random augmentations built from them.

Importing this package loads torch and numpy only (xarray and the solvers when a dataset is generated).
"""

from __future__ import annotations

from .data import SteadyForcing, burgers_dataset, navier_stokes_dataset
from .symmetries import (augment_burgers, augment_vorticity, burgers_reflection, burgers_scaling, galilean_boost,
                         space_shift, vorticity_scaling, vorticity_symmetry)
from .views import CropOffsets, coefficient_groups, crop, crop_offsets, partners, view_pairs

__all__ = [
    "burgers_dataset", "navier_stokes_dataset", "SteadyForcing",
    "space_shift", "galilean_boost", "burgers_reflection", "burgers_scaling", "vorticity_symmetry",
    "vorticity_scaling", "augment_burgers", "augment_vorticity",
    "crop", "crop_offsets", "CropOffsets", "view_pairs", "partners", "coefficient_groups",
]
