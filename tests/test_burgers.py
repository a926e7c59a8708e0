"""Burgers ETDRK4: exact Cole-Hopf solutions, measured fourth order, per-sample viscosity, invariants."""

import math

import numpy as np
import pytest
import torch

from sciml import SolverError
from sciml.solvers.burgers import Burgers1D, cole_hopf, integrate, solve

NU = 0.05


def grid(n):
    return torch.arange(n, dtype=torch.float64) / n


def exact(n, t, nu=NU, amplitudes=(0.6, 0.2)):
    return cole_hopf(grid(n), t, viscosity=nu, amplitudes=amplitudes)


@pytest.mark.parametrize("n", [128, 129, 96])  # odd (rfft length alone is ambiguous) and 3 | n (2/3 boundary)
def test_cole_hopf_solution_is_reproduced_to_1e_10(n):
    t = 0.2
    u = integrate(Burgers1D(viscosity=NU), exact(n, 0.0)[None], [t], dt=1e-3)[0, 0]
    assert float((u - exact(n, t)).abs().max() / exact(n, t).abs().max()) < 1e-10


def test_etdrk4_converges_at_fourth_order():
    n, t, amplitudes = 128, 0.2, (0.9,)  # a steep front: time error well above round-off
    eq = Burgers1D(viscosity=NU)
    u0 = exact(n, 0.0, amplitudes=amplitudes)[None]
    # Courant numbers up to 1.7 here: stable for ETDRK4 with this viscosity, above the default guard of 1.
    errors = [float((integrate(eq, u0, [t], dt=dt, max_courant=2.0)[0, 0] - exact(n, t, amplitudes=amplitudes)).abs().max())
              for dt in (0.01, 0.005, 0.0025)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 4.0) < 0.2), (errors, orders)


def test_per_sample_viscosity_matches_separate_solves():
    n = 64
    nus = (0.02, 0.05, 0.1)
    u0 = torch.stack([exact(n, 0.0, nu=nu) for nu in nus])
    batch = integrate(Burgers1D(viscosity=nus), u0, [0.1], dt=1e-3)
    for i, nu in enumerate(nus):
        alone = integrate(Burgers1D(viscosity=nu), u0[i:i + 1], [0.1], dt=1e-3)
        torch.testing.assert_close(batch[i:i + 1], alone, atol=1e-13, rtol=0)
        assert float((batch[i, 0] - exact(n, 0.1, nu=nu)).abs().max()) < 1e-8


def test_energy_decays_monotonically_and_mean_is_conserved():
    n = 256
    x = grid(n)
    u0 = (torch.sin(2 * math.pi * x) + 0.5 * torch.cos(6 * math.pi * x) + 0.3)[None]
    traj = integrate(Burgers1D(viscosity=0.01), u0, [0.05 * i for i in range(11)], dt=2e-4)[0]
    energy = (traj**2).mean(dim=-1)
    assert torch.all(energy[1:] < energy[:-1])
    torch.testing.assert_close(traj.mean(dim=-1), u0.mean(dim=-1).expand(11), atol=1e-12, rtol=0)


def test_float32_agrees_with_float64_and_solve_records_viscosity():
    u0 = exact(64, 0.0)[None].repeat(2, 1)
    eq = Burgers1D(viscosity=(0.05, 0.05))
    high = integrate(eq, u0, [0.1], dt=1e-3)
    low = integrate(eq, u0.float(), [0.1], dt=1e-3)
    assert float((low.double() - high).abs().max()) < 1e-5
    ds = solve(eq, u0, [0.0, 0.1], dt=1e-3, progress=False)
    assert ds["u"].dims == ("sample", "time", "x") and ds["viscosity"].values.tolist() == [0.05, 0.05]


def test_bad_input_names_the_parameter():
    with pytest.raises(SolverError, match="viscosity must be finite and > 0"):
        Burgers1D(viscosity=-0.1)
    with pytest.raises(SolverError, match="viscosity has 2 values for a batch of 3"):
        integrate(Burgers1D(viscosity=(0.1, 0.2)), torch.zeros(3, 16), [0.1])
    u0 = exact(64, 0.0)[None]
    with pytest.raises(SolverError, match=r"dt=0\.5 violates the CFL bound"):
        integrate(Burgers1D(viscosity=NU), u0, [1.0], dt=0.5)
    with pytest.raises(SolverError, match=r"u0 must be float32 or float64, got torch.int64"):
        integrate(Burgers1D(viscosity=NU), torch.zeros(1, 16, dtype=torch.int64), [0.1])


def test_an_under_resolved_viscosity_is_refused_and_the_frames_before_are_kept():
    # Li et al. initial conditions on 256 points: nu = 1e-2 resolves the fronts (max|u| dx / nu ~ 0.9),
    # nu = 1e-4 does not, and Gibbs oscillations then raise the total variation, which Burgers cannot do.
    from sciml import Grid, gaussian_random_field
    from sciml.datasets.burgers import LI2021_BURGERS_GRF
    from sciml.solvers._stepping import SolverDiverged
    from sciml.solvers.burgers import total_variation

    u0 = gaussian_random_field(Grid.box(256), 2, seed=0, **LI2021_BURGERS_GRF)
    resolved = integrate(Burgers1D(viscosity=1e-2), u0, [0.0, 0.5, 1.0])
    assert float((total_variation(resolved[:, -1]) / total_variation(u0)).max()) <= 1.0
    with pytest.raises(SolverDiverged, match=r"viscosity is too small for 256 points: the total variation grew") as err:
        integrate(Burgers1D(viscosity=1e-4), u0, [0.0, 0.05, 0.5, 1.0])
    assert err.value.frames is not None and err.value.frames.shape[1] >= 1
