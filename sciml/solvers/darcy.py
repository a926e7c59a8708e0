"""2-D Darcy flow ``-div(a grad p) = f`` on the unit square with ``p = 0`` on the boundary.

The same shape as the time-dependent solvers: an equation dataclass (:class:`Darcy2D`: the source ``f``
and the linear solver's options), a batched pure function (:func:`solve_pressure`, coefficient ``a`` to
pressure ``p``) and ``solve -> xr.Dataset``. The problem is steady, so the "step" is the solve: there is
no ``integrate``.

Discretisation: vertex-centred finite volumes on ``s x s`` nodes ``x_i = i / (s - 1)`` (boundary nodes
included), the 5-point stencil with harmonic-mean face coefficients

    a_{i+1/2, j} = 2 a_{i,j} a_{i+1,j} / (a_{i,j} + a_{i+1,j}),

which is exact for layered media and second order for smooth ``a`` (e.g. Eymard, Gallouet & Herbin,
"Finite volume methods", 2000). The system is symmetric positive definite. Two solvers:

* ``"direct"``: scipy sparse LU per sample (CPU);
* ``"cg"``: batched, matrix-free Jacobi-preconditioned conjugate gradients in torch (any device).

Both form the faces and solve in float64 whatever the dtype of ``a`` (float32 or float64), so a float32
coefficient neither overflows the faces (``2 a a'`` reaches 1e77) nor caps what ``rtol`` CG can reach;
the pressure is rounded to the dtype of ``a`` at the end.

Coefficients in the style of Li et al. (2021) (a Gaussian random field thresholded to 12 / 3) and
log-normal ones live in the ``darcy`` dataset recipe (``sciml.datasets.darcy``).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import SolverError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["Darcy2D", "solve_pressure", "apply_operator", "solve"]

METHODS = ("auto", "direct", "cg")


@dataclass(frozen=True)
class Darcy2D:
    """``-div(a grad p) = f`` on the unit square, ``p = 0`` on the boundary, and how to solve it.

    Attributes:
        forcing: the constant source ``f`` (a finite number).
        method: ``"direct"`` (scipy sparse LU per sample, CPU), ``"cg"`` (batched Jacobi-preconditioned
            conjugate gradients in torch, any device), or ``"auto"`` (direct on CPU, CG elsewhere).
        rtol: relative residual CG stops at (float64), ``0 < rtol < 1``; samples with zero forcing get ``p = 0``.
        max_iter: CG iteration cap, an integer >= 1 (``None``: ``20 s`` for ``s`` nodes per side).
    """

    forcing: float = 1.0
    method: str = "auto"
    rtol: float = 1e-10
    max_iter: int | None = None

    def __post_init__(self) -> None:
        if (isinstance(self.forcing, bool) or not isinstance(self.forcing, numbers.Real)
                or not math.isfinite(self.forcing)):
            raise SolverError(f"forcing must be a finite number, got {self.forcing!r}")
        object.__setattr__(self, "forcing", float(self.forcing))
        if self.method not in METHODS:
            raise SolverError(f"method must be 'auto', 'direct' or 'cg', got {self.method!r}")
        _check_cg_options(self.rtol, self.max_iter)

    def attributes(self) -> dict:
        """The equation and its discretisation as NetCDF attributes."""
        return {"equation": "darcy_2d", "forcing": self.forcing, "boundary_condition": "dirichlet_zero",
                "discretisation": "5-point finite volumes, harmonic-mean faces"}

    def method_for(self, device: torch.device) -> str:
        """The linear solver used on ``device``: ``method``, with ``"auto"`` resolved."""
        if self.method == "auto":
            return "direct" if device.type == "cpu" else "cg"
        return self.method


def _check(a: torch.Tensor, f: torch.Tensor | float) -> torch.Tensor:
    """Validate ``a`` ``(batch, s, s)`` and ``f``; return ``f`` as float64 ``(batch, s, s)`` on ``a.device``."""
    if not isinstance(a, torch.Tensor):
        raise SolverError(f"coefficient a must be a torch.Tensor, got {type(a).__name__}")
    if a.dtype not in (torch.float32, torch.float64):
        raise SolverError(f"coefficient a must be float32 or float64, got {a.dtype}; convert it first, e.g. a.double()")
    if a.ndim != 3 or a.shape[-1] != a.shape[-2] or a.shape[-1] < 3:
        raise SolverError(f"coefficient a must be (batch, s, s) with s >= 3 nodes per side, got {tuple(a.shape)}")
    if not bool(torch.isfinite(a).all()):
        raise SolverError("coefficient a contains NaN or Inf")
    smallest = a.amin(dim=(1, 2))
    if bool((smallest <= 0).any()):
        i = int(torch.argmin(smallest))
        raise SolverError(f"coefficient a must be positive everywhere; sample {i} has min a = {float(smallest[i]):.3g}")
    f = f if isinstance(f, torch.Tensor) else torch.as_tensor(np.asarray(f))  # np.asarray keeps 0.1 in float64
    if f.is_complex() or f.dtype == torch.bool:
        raise SolverError(f"forcing f must be real, got {f.dtype}")
    f = f.to(device=a.device, dtype=torch.float64)
    if f.ndim not in (0, 2, 3) or (f.ndim > 0 and f.shape[-2:] != a.shape[-2:]) \
            or (f.ndim == 3 and f.shape[0] not in (1, a.shape[0])):
        raise SolverError(f"forcing f must be a scalar, (s, s) or (batch, s, s) matching coefficient a "
                          f"{tuple(a.shape)}, got f {tuple(f.shape)}")
    if not bool(torch.isfinite(f).all()):
        raise SolverError("forcing f contains NaN or Inf")
    return f.expand(a.shape)


def _check_cg_options(rtol: float, max_iter: int | None) -> None:
    if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real) or not 0 < rtol < 1:
        raise SolverError(f"rtol must be a number with 0 < rtol < 1, got {rtol!r}")
    if max_iter is not None and (isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral)
                                 or max_iter < 1):
        raise SolverError(f"max_iter must be an integer >= 1 (or None for 20 s), got {max_iter!r}")


def _range_error(a: torch.Tensor, dtype: torch.dtype) -> SolverError:
    return SolverError(f"coefficient a spans [{float(a.min()):.3g}, {float(a.max()):.3g}]: the harmonic-mean faces "
                       f"or the pressure (~ f / a) overflow or underflow {dtype} and would be NaN or Inf; rescale a "
                       "and f (p scales as f / a)")


def _faces(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Harmonic-mean face coefficients: x-faces ``(batch, s, s-1)``, y-faces ``(batch, s-1, s)``."""
    ax = 2 * a[..., :, 1:] * a[..., :, :-1] / (a[..., :, 1:] + a[..., :, :-1])
    ay = 2 * a[..., 1:, :] * a[..., :-1, :] / (a[..., 1:, :] + a[..., :-1, :])
    return ax, ay


def apply_operator(a: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``-div(a grad p)`` at the interior nodes for ``p`` with zero boundary; ``(batch, s, s) -> (batch, s-2, s-2)``."""
    h = 1.0 / (a.shape[-1] - 1)
    ax, ay = _faces(a)
    flux_x = ax * (p[..., :, 1:] - p[..., :, :-1])  # (batch, s, s-1)
    flux_y = ay * (p[..., 1:, :] - p[..., :-1, :])  # (batch, s-1, s)
    div = (flux_x[..., 1:-1, 1:] - flux_x[..., 1:-1, :-1]) + (flux_y[..., 1:, 1:-1] - flux_y[..., :-1, 1:-1])
    return -div / h**2


def _diagonal(a: torch.Tensor) -> torch.Tensor:
    """Diagonal of the operator at the interior nodes, ``(batch, s, s) -> (batch, s-2, s-2)``.

    Raises :class:`SolverError` where it is not finite and positive (faces overflowing or underflowing).
    """
    h = 1.0 / (a.shape[-1] - 1)
    ax, ay = _faces(a)
    diag = (ax[..., 1:-1, 1:] + ax[..., 1:-1, :-1] + ay[..., 1:, 1:-1] + ay[..., :-1, 1:-1]) / h**2
    if not bool((torch.isfinite(diag) & (diag > 0)).all()):
        raise _range_error(a, a.dtype)
    return diag


def _pad(interior: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.pad(interior, (1, 1, 1, 1))


def _solve_cg(a: torch.Tensor, f: torch.Tensor, rtol: float, max_iter: int) -> torch.Tensor:
    """``(batch, s, s)`` float64 ``a`` and ``f`` -> pressure ``(batch, s, s)``; stops when every sample has
    ``|r| <= rtol |b|`` (a sample with zero right-hand side ``b`` starts converged at ``p = 0``)."""
    b = f[..., 1:-1, 1:-1]
    inv_diag = 1.0 / _diagonal(a)
    x = torch.zeros_like(b)
    r = b.clone()
    z = inv_diag * r
    d = z.clone()
    rz = (r * z).sum(dim=(1, 2))
    b_norm = b.flatten(1).norm(dim=1)
    target = rtol * b_norm
    for _ in range(max_iter):
        if bool((r.flatten(1).norm(dim=1) <= target).all()):
            return _pad(x)
        ad = apply_operator(a, _pad(d))
        dad = (d * ad).sum(dim=(1, 2))
        # d = 0 (so rz = 0) exactly where a sample's residual is already 0: step 0 there, not 0 / 0.
        alpha = rz / torch.where(dad > 0, dad, 1.0)
        x = x + alpha[:, None, None] * d
        r = r - alpha[:, None, None] * ad
        z = inv_diag * r
        rz_new = (r * z).sum(dim=(1, 2))
        d = z + (rz_new / torch.where(rz > 0, rz, 1.0))[:, None, None] * d
        rz = rz_new
    residual = r.flatten(1).norm(dim=1) / torch.where(b_norm > 0, b_norm, 1.0)
    if not bool(torch.isfinite(residual).all()):
        raise _range_error(a, a.dtype)
    raise SolverError(f"conjugate gradients did not reach rtol={rtol:g} in max_iter={max_iter} iterations "
                      f"(relative residual {float(residual.max()):.2e}); raise max_iter or use method='direct'")


def _solve_direct(a: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """``(batch, s, s)`` float64 ``a`` and ``f`` -> pressure ``(batch, s, s)`` float64 on the CPU."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    s = a.shape[-1]
    m = s - 2
    h2 = (1.0 / (s - 1)) ** 2
    diag = _diagonal(a).detach().cpu().numpy()
    ax, ay = (t.detach().cpu().numpy() for t in _faces(a))
    rhs = f[..., 1:-1, 1:-1].detach().cpu().numpy()
    index = np.arange(m * m).reshape(m, m)
    out = np.zeros(a.shape, dtype=np.float64)
    for k in range(a.shape[0]):
        east = -ax[k, 1:-1, 1:-1] / h2  # coupling (i, j) - (i, j+1) between interior nodes, (m, m-1)
        north = -ay[k, 1:-1, 1:-1] / h2  # coupling (i, j) - (i+1, j), (m-1, m)
        rows = np.concatenate([index.ravel(), index[:, :-1].ravel(), index[:, 1:].ravel(),
                               index[:-1, :].ravel(), index[1:, :].ravel()])
        cols = np.concatenate([index.ravel(), index[:, 1:].ravel(), index[:, :-1].ravel(),
                               index[1:, :].ravel(), index[:-1, :].ravel()])
        vals = np.concatenate([diag[k].ravel(), east.ravel(), east.ravel(), north.ravel(), north.ravel()])
        matrix = sp.csc_matrix((vals, (rows, cols)), shape=(m * m, m * m))
        out[k, 1:-1, 1:-1] = spsolve(matrix, rhs[k].ravel()).reshape(m, m)
    return torch.from_numpy(out)


def solve_pressure(eq: Darcy2D, a: torch.Tensor, *, f: torch.Tensor | None = None) -> torch.Tensor:
    """Solve ``-div(a grad p) = f``, ``p = 0`` on the boundary, for a batch of coefficients.

    Both methods work in float64 whatever the dtype of ``a``; the pressure is then rounded to that dtype
    (for float32, about 1e-7 relative to the float64 solution).

    Args:
        eq: the equation and solver options.
        a: positive coefficient at the nodes, ``(batch, s, s)`` including boundary nodes; float32 or float64.
        f: nodal source ``(s, s)``, ``(batch, s, s)`` or ``(1, s, s)`` in place of the constant ``eq.forcing``.

    Returns:
        Pressure ``(batch, s, s)`` with zero boundary, same dtype and device as ``a``.

    Raises:
        SolverError: on a bad argument, CG not reaching ``eq.rtol``, or a pressure that is not finite (a
            coefficient range that overflows or underflows the faces or the dtype of ``a``).
    """
    if not isinstance(eq, Darcy2D):
        raise SolverError(f"eq must be a Darcy2D, got {type(eq).__name__}; call solve_pressure(Darcy2D(...), a)")
    f = _check(a, eq.forcing if f is None else f)
    method = eq.method_for(a.device)
    if method == "direct":
        p = _solve_direct(a.double(), f)
    else:
        p = _solve_cg(a.double(), f, eq.rtol, 20 * a.shape[-1] if eq.max_iter is None else int(eq.max_iter))
    p = p.to(dtype=a.dtype, device=a.device)
    if not bool(torch.isfinite(p).all()):
        raise _range_error(a, a.dtype)
    return p


def solve(eq: Darcy2D, a: torch.Tensor, *, attrs: dict | None = None) -> xr.Dataset:
    """:func:`solve_pressure` wrapped as ``a(sample, y, x)`` and ``pressure(sample, y, x)`` on the nodes, with
    the equation's attributes, the linear solver used, and ``attrs``."""
    from ..data.cf import trajectory_dataset

    p = solve_pressure(eq, a)
    nodes = torch.linspace(0.0, 1.0, a.shape[-1], dtype=torch.float64)
    return trajectory_dataset({"a": a, "pressure": p}, times=None, coords={"y": nodes, "x": nodes},
                              attrs={**eq.attributes(), "solver": eq.method_for(a.device), **(attrs or {})},
                              periodic=False)
