"""Reference numerical solvers: equation dataclasses, pure batched step functions, ``solve -> xr.Dataset``."""

from ._stepping import SolverDiverged
from .burgers import Burgers1D
from .navier_stokes import NavierStokes2D

__all__ = ["NavierStokes2D", "Burgers1D", "SolverDiverged"]
