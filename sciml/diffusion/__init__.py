"""Function-space diffusion: generate fields at any resolution.

Built so far:

* the noise on functions (:mod:`sciml.diffusion.noise`), trace-class Gaussian random fields on the periodic box and
  the sphere drawn in torch from one ``torch.Generator``, batched on the device, and the same function on every grid;
* denoisers and velocity fields (:mod:`sciml.diffusion.model`): a noise-conditioned FNO (FiLM) with EDM
  preconditioning written for the noise's pointwise variance, and exact Gaussian references;
* objectives (:mod:`sciml.diffusion.objectives`): EDM and VP denoising score matching and functional flow matching
  behind one interface, trained as a :class:`DiffusionTask` by :func:`sciml.train.fit` with an EMA of the weights;
* samplers (:mod:`sciml.diffusion.samplers`): :func:`sample` on any grid of the domain with a fixed number of network
  evaluations (EDM Heun, reverse-SDE Euler-Maruyama, probability-flow / flow-matching ODE through torchdiffeq).

Importing this package loads torch and numpy only (the models, objectives and samplers on first use, PEP 562;
neuraloperator when a network is built, torchdiffeq when an ODE is integrated, torch-harmonics when a sphere is
first sampled).
"""

from __future__ import annotations

import importlib

from .noise import GaussianRandomField, MaternField, synthesize

_LAZY = {
    "model": ("FieldNetConfig", "NoiseConditionedFNO", "edm_scalings", "FieldModel", "Denoiser", "EDMDenoiser",
              "GaussianDenoiser", "VelocityField", "NeuralVelocityField", "GaussianVelocityField"),
    "objectives": ("Objective", "EDMLoss", "VPLoss", "FlowMatchingLoss", "DiffusionTask"),
    "samplers": ("sample", "evaluations", "edm_schedule"),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}

__all__ = [
    "GaussianRandomField", "MaternField", "synthesize",
    "FieldNetConfig", "NoiseConditionedFNO", "edm_scalings", "FieldModel", "Denoiser", "EDMDenoiser",
    "GaussianDenoiser", "VelocityField", "NeuralVelocityField", "GaussianVelocityField",
    "Objective", "EDMLoss", "VPLoss", "FlowMatchingLoss", "DiffusionTask",
    "sample", "evaluations", "edm_schedule",
]


def __getattr__(name: str):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
