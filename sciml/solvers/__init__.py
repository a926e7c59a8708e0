"""Reference numerical solvers, one interface for all.

Each module has an equation as a frozen dataclass (its parameters, validated on construction, and a small
cache of the derived operators that dies with it), a batched pure function that advances a state
(``step``; for the steady Darcy problem the solve itself, ``solve_pressure``), ``integrate`` to record a
trajectory at output times, and ``solve -> xr.Dataset`` with CF metadata:

* :mod:`.navier_stokes` (:class:`NavierStokes2D`): 2-D vorticity, pseudo-spectral, CN-Heun or ETDRK4;
* :mod:`.navier_stokes3d` (:class:`NavierStokes3D`): 3-D velocity (optionally Boussinesq buoyancy and rotation),
  pseudo-spectral, ETDRK4, with turbulence statistics and Taylor-Green, ABC and random initial fields;
* :mod:`.burgers` (:class:`Burgers1D`): 1-D viscous Burgers, pseudo-spectral, ETDRK4;
* :mod:`.darcy` (:class:`Darcy2D`): 2-D Darcy flow, finite volumes, sparse LU or batched CG;
* :mod:`.shallow_water` (:class:`ShallowWater`): rotating shallow water on the sphere, spherical
  harmonics, Adams-Bashforth 3.

The spectral steppers take an optional ``closure(state, t) -> tendency`` of the physical field, added to
the explicit part at each stage, and are differentiable with autograd. Initial conditions are inputs: the
dataset recipes (``sciml.datasets``) draw them (the 3-D module also has its classic fields). :class:`SolverDiverged` is raised when a run becomes unstable.
"""

from ._stepping import SolverDiverged
from .burgers import Burgers1D
from .darcy import Darcy2D
from .navier_stokes import NavierStokes2D
from .navier_stokes3d import NavierStokes3D
from .shallow_water import ShallowWater

__all__ = ["NavierStokes2D", "NavierStokes3D", "Burgers1D", "Darcy2D", "ShallowWater", "SolverDiverged"]
