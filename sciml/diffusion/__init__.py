"""Function-space diffusion: generate fields at any resolution.

Built so far:

* the noise on functions (:mod:`sciml.diffusion.noise`), trace-class Gaussian random fields on the periodic box and
  the sphere drawn in torch from one ``torch.Generator``, batched on the device, and the same function on every grid;
* denoisers and velocity fields (:mod:`sciml.diffusion.model`): a noise-conditioned FNO (FiLM) with EDM
  preconditioning written for the noise's pointwise variance, and exact Gaussian references;
* objectives (:mod:`sciml.diffusion.objectives`): EDM and VP denoising score matching and functional flow matching
  behind one interface, trained as a :class:`DiffusionTask` by :func:`sciml.train.fit` with an EMA of the weights;
* samplers (:mod:`sciml.diffusion.samplers`): :func:`sample_tensor` on any grid of the domain with a fixed number of
  network evaluations (EDM Heun, reverse-SDE Euler-Maruyama, probability-flow / flow-matching ODE through torchdiffeq);
* conditional generation (:mod:`sciml.diffusion.conditional`): super-resolution from a coarse field's low modes and
  inpainting from sparse point values, zero-shot, by data-consistency guidance of an unconditional denoiser, and
  super-resolution by a denoiser trained with the coarse field as an input channel
  (:class:`CoarseConditionedDenoiser`);
* xarray in and out (:mod:`sciml.diffusion.api`): the verbs :func:`sample` (the xarray form of
  :func:`sample_tensor`; :func:`generate` is its deprecated former name) and :func:`super_resolve`, keeping
  coordinates and attributes;
* metrics of generated fields (:mod:`sciml.diffusion.metrics`): spectra per band, W1 of point values, moments and
  two-point correlation, MMD, and the ensemble scores of super-resolution.

Importing this package loads nothing heavy (the noise, models, objectives, samplers, conditional samplers, xarray
verbs and metrics on first use, PEP 562, so ``sciml --help`` does not import torch; xarray when a dataset is made or an ensemble scored;
neuraloperator when a network is built, torchdiffeq when an ODE is integrated, torch-harmonics when a sphere is
first sampled).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "noise": ("GaussianRandomField", "MaternField", "SpectrumMatchedField", "synthesize"),
    "model": ("FieldNetConfig", "NoiseConditionedFNO", "edm_scalings", "FieldModel", "Denoiser", "EDMDenoiser",
              "GaussianDenoiser", "ConditionedDenoiser", "CoarseConditionedDenoiser", "VelocityField", "NeuralVelocityField",
              "GaussianVelocityField"),
    "objectives": ("Objective", "EDMLoss", "VPLoss", "FlowMatchingLoss", "DiffusionTask"),
    "samplers": ("sample_tensor", "evaluations", "edm_schedule"),
    "conditional": ("LowModes", "PointValues", "conditional_sample", "noise_covariance"),
    "api": ("sample", "super_resolve", "generate"),
    "metrics": ("isotropic_spectrum", "spectrum_error", "wasserstein_1d", "moment_errors", "two_point_correlation",
                "mmd", "ensemble_scores"),
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _LAZY)
