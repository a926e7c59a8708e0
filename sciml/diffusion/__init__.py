"""Function-space diffusion: generate fields at any resolution.

Built so far: the noise on functions (:mod:`sciml.diffusion.noise`), trace-class Gaussian random fields on the
periodic box and the sphere drawn in torch from one ``torch.Generator``, batched on the device, and the same
function on every grid. Importing this package loads torch and numpy only (torch-harmonics when a sphere is
first sampled).
"""

from __future__ import annotations

from .noise import GaussianRandomField, MaternField, synthesize

__all__ = ["GaussianRandomField", "MaternField", "synthesize"]
