"""PDE-JEPA: coefficient discovery from unlabelled solutions with a joint-embedding encoder.

* data with known coefficients (:mod:`sciml.jepa.data`): Burgers with per-sample viscosity and 2-D Navier-Stokes
  with per-sample viscosity and forcing amplitude, drawn per group of trajectories, the coefficients as
  coordinates along ``sample`` for probes and baselines only;
* views (:mod:`sciml.jepa.views`): space-time crops, pairs from one trajectory or from two trajectories that
  share their coefficients;
* Lie point symmetries (:mod:`sciml.jepa.symmetries`) applied exactly to gridded solutions, with the
  coefficient transformed as the symmetry says, and random augmentations built from them;
* the encoder (:mod:`sciml.jepa.encoder`): a convolutional ResNet over ``(time, space)`` windows with a projector
  and a predictor;
* objectives (:mod:`sciml.jepa.objectives`): VICReg and a JEPA variant with an EMA target as
  :class:`~sciml.train.Task` s trained by :func:`sciml.train.fit`, collapse monitors, :func:`pretrain`;
* probes (:mod:`sciml.jepa.probes`): ridge and MLP heads on frozen features, split-conformal intervals,
  label-efficiency curves, the supervised baseline;
* :func:`discover` (:mod:`sciml.jepa.discovery`): coefficients with intervals for unlabelled solutions from any
  supported file, save / load, figures.

Importing this package loads nothing heavy: each name loads its module on first use (PEP 562), so
``sciml --help`` does not import torch; xarray, matplotlib and the solvers load inside the functions that
generate, read or plot data.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "data": ("burgers_dataset", "navier_stokes_dataset", "SteadyForcing"),
    "symmetries": ("space_shift", "galilean_boost", "burgers_reflection", "burgers_scaling", "vorticity_symmetry",
                   "vorticity_scaling", "augment_burgers", "augment_vorticity"),
    "views": ("crop", "crop_offsets", "CropOffsets", "view_pairs", "partners", "coefficient_groups"),
    "encoder": ("EncoderConfig", "ConvEncoder", "JEPAModel"),
    "objectives": ("vicreg_loss", "effective_rank", "embedding_std", "check_collapse", "PretrainConfig",
                   "TrajectoryPairs", "VICRegTask", "JEPATask", "pretrain"),
    "probes": ("embed", "RidgeProbe", "MLPProbe", "conformal_quantile", "label_efficiency", "SupervisedTask",
               "supervised_baseline", "CoefficientModel", "fit_probe"),
    "discovery": ("discover", "save", "load"),
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _LAZY)
