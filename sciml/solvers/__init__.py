"""Reference numerical solvers: equation dataclasses, pure batched step functions, ``solve -> xr.Dataset``."""

from .navier_stokes import NavierStokes2D

__all__ = ["NavierStokes2D"]
