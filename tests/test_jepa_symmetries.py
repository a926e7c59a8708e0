"""PDE-JEPA data, views and Lie point symmetries.

Every symmetry is checked the exact way: solve, transform the trajectory, re-solve from the transformed initial
condition with the transformed coefficients, and compare the two trajectories. Where the scheme commutes with
the transformation (grid permutations, shifts of fields band-limited below the 2/3-rule cutoff, time scalings
with the step scaled alike) they agree to round-off; the Galilean boost moves advection by ``c`` into the explicit
part of ETDRK4, so there they agree to the scheme's time error. Each check has a wrong variant (an untransformed
coefficient or forcing, a missing sign) that must fail by orders of magnitude.
"""

import functools

import numpy as np
import pytest
import torch

from sciml import ConfigError, DataError
from sciml.datasets import generate
from sciml.datasets.burgers import LI2021_BURGERS_GRF
from sciml.datasets.ns2d import initial_condition
from sciml.grids import Grid
from sciml.jepa import (SteadyForcing, augment_burgers, augment_vorticity, burgers_dataset, burgers_reflection,
                        burgers_scaling, coefficient_groups, crop, crop_offsets, galilean_boost, navier_stokes_dataset,
                        partners, space_shift, view_pairs, vorticity_scaling, vorticity_symmetry)
from sciml.random_fields import gaussian_random_field
from sciml.solvers.burgers import Burgers1D, integrate as integrate_burgers
from sciml.solvers.navier_stokes import NavierStokes2D, integrate as integrate_ns


@pytest.fixture(autouse=True)
def _one_thread(_numerics):
    # These solves are many tiny FFTs, which two threads only slow down: on a 2-core machine shared with other
    # workers, OpenMP hand-offs made a 32 x 32 Navier-Stokes solve 12-40x slower than on one thread. The checks
    # are tolerances, not bit patterns, so the reduction order does not matter here.
    torch.set_num_threads(1)


def relative(a, b):
    return float((a - b).abs().max() / b.abs().max())


def band_limited(field, n):
    """Zero the modes the 2/3 rule drops: the state then stays band-limited, and shifts commute with the scheme."""
    spectrum = torch.fft.rfftn(field, dim=tuple(range(-field.ndim + 1, 0)))
    cutoff = (n - 1) // 3
    spectrum[..., cutoff + 1:] = 0
    if field.ndim == 3:
        spectrum[..., cutoff + 1:n - cutoff, :] = 0
    return torch.fft.irfftn(spectrum, s=field.shape[1:], dim=tuple(range(-field.ndim + 1, 0)))


# Burgers: 128 points, two samples, frames every 0.05 up to 0.25, steps of 1e-3 (max|u| dx / nu <= 0.4).
N_B, NU, B_TIMES, B_DT = 128, (0.02, 0.03), [k / 20 for k in range(6)], 1e-3


def solve_burgers(u0, viscosity=NU, times=B_TIMES, dt=B_DT):
    return integrate_burgers(Burgers1D(viscosity=tuple(viscosity)), u0, times, dt=dt)


@functools.lru_cache(maxsize=1)
def burgers_solution():
    u0 = gaussian_random_field(Grid.box(N_B), 2, seed=3, dtype=torch.float64, **LI2021_BURGERS_GRF)
    return solve_burgers(band_limited(u0, N_B))


def test_space_shift_maps_a_burgers_solution_to_the_solution_from_the_shifted_start():
    u = burgers_solution()
    for offset in (5 / N_B, 5.3 / N_B):  # whole cells and spectral interpolation
        v = space_shift(u, offset)
        assert relative(v, solve_burgers(v[:, 0])) < 1e-13  # measured 2e-15
    wrong = space_shift(u, -5.3 / N_B)  # frames shifted the other way from the same start
    assert relative(wrong, solve_burgers(space_shift(u[:, 0], 5.3 / N_B))) > 0.3  # measured 1.04


def test_galilean_boost_is_a_burgers_symmetry_to_the_schemes_accuracy():
    u, c = burgers_solution(), 0.7
    times = torch.tensor(B_TIMES, dtype=torch.float64)
    v = galilean_boost(u, times, velocity=c)
    assert relative(v, solve_burgers(v[:, 0])) < 1e-7  # measured 2.5e-9: ETDRK4's error for advection by c
    unshifted = u + c
    assert relative(unshifted, solve_burgers(unshifted[:, 0])) > 0.3  # measured 0.75
    against = space_shift(u, c * times) - c
    assert relative(against, solve_burgers(against[:, 0])) > 0.3  # measured 0.82


def test_reflection_with_the_sign_change_is_a_burgers_symmetry():
    u = burgers_solution()
    v = burgers_reflection(u)
    assert relative(v, solve_burgers(v[:, 0])) < 1e-13  # measured 5e-16
    mirrored = u.flip(-1).roll(1, dims=-1)  # x -> -x without u -> -u
    assert relative(mirrored, solve_burgers(mirrored[:, 0])) > 0.3  # measured 0.59
    assert torch.equal(burgers_reflection(burgers_reflection(u)), u)


def test_time_scaling_multiplies_the_burgers_viscosity():
    u, b = burgers_solution(), 1.7
    v, times, viscosity = burgers_scaling(u, torch.tensor(B_TIMES, dtype=torch.float64), NU, factor=b)
    assert viscosity.tolist() == pytest.approx([b * nu for nu in NU], rel=1e-15)
    assert relative(v, solve_burgers(v[:, 0], viscosity.tolist(), times.tolist(), B_DT / b)) < 1e-12  # measured 3e-15
    # (times and viscosities in float64: a float32 copy of either alone gives 1e-8)
    untransformed = solve_burgers(v[:, 0], NU, times.tolist(), B_DT / b)
    assert relative(v, untransformed) > 0.05  # measured 0.17
    with pytest.raises(ConfigError, match="scaling factor"):
        burgers_scaling(u, B_TIMES, NU, factor=0.0)


def test_a_crop_is_a_time_and_space_shift_of_the_solution():
    u = burgers_solution()
    offsets = crop_offsets(2, len(B_TIMES), (N_B,), size_t=4, size_x=48, generator=torch.Generator().manual_seed(1))
    windows = crop(u[:, :, None], size_t=4, size_x=48, offsets=offsets)[:, :, 0]
    for i in range(2):
        t0, x0 = int(offsets.time[i]), int(offsets.space[i, 0])
        later = [t - B_TIMES[t0] for t in B_TIMES[t0:t0 + 4]]
        resolved = integrate_burgers(Burgers1D(viscosity=NU[i]), u[i:i + 1, t0].roll(-x0, dims=-1), later, dt=B_DT)
        assert relative(windows[i], resolved[0, :, :48]) < 1e-13


def test_random_burgers_augmentations_are_reproducible_solutions():
    u = burgers_solution()
    times = torch.tensor(B_TIMES, dtype=torch.float64)
    options = {"max_boost": 0.5, "scale_range": (0.5, 2.0)}
    v, new_times, viscosity = augment_burgers(u, times, NU, generator=torch.Generator().manual_seed(7), **options)
    again = augment_burgers(u, times, NU, generator=torch.Generator().manual_seed(7), **options)
    assert torch.equal(v, again[0]) and torch.equal(new_times, again[1]) and torch.equal(viscosity, again[2])
    assert not torch.equal(v, augment_burgers(u, times, NU, generator=torch.Generator().manual_seed(8), **options)[0])
    for i in range(2):
        b = float(viscosity[i] / NU[i])
        assert 0.5 <= b <= 2.0 and new_times[i].tolist() == pytest.approx([t / b for t in B_TIMES], rel=1e-14)
        resolved = solve_burgers(v[i:i + 1, 0], [float(viscosity[i])], new_times[i].tolist(), B_DT / b)
        assert relative(v[i], resolved[0]) < 1e-7  # measured 1e-9 and 8e-11: the boost's time error, as above
        kept = solve_burgers(v[i:i + 1, 0], [NU[i]], new_times[i].tolist(), B_DT / b)
        assert relative(v[i], kept[0]) > 0.02  # the viscosity not scaled: measured 0.07 and 0.09


# Navier-Stokes: 32 x 32, two samples, nu = 0.02, forcing amplitude 0.2, 100 steps of 5e-3.
N_W, NU_W, W_TIMES, W_DT = 32, 2e-2, [0.0, 0.25, 0.5], 5e-3


def li2021(amplitude=0.2, n=N_W):
    return NavierStokes2D(viscosity=0.0).forcing_field(n) * (amplitude / 0.1)


def solve_ns(w0, forcing, viscosity=NU_W, times=W_TIMES, dt=W_DT):
    return integrate_ns(NavierStokes2D(viscosity=viscosity, forcing="none"), w0, times, dt=dt,
                        closure=SteadyForcing(forcing))


@functools.lru_cache(maxsize=1)
def ns_solution():
    return solve_ns(band_limited(initial_condition(2, N_W, seed=1, dtype=torch.float64), N_W), li2021())


ELEMENTS = [{"quarter_turns": 1, "shift": (3, 5)}, {"reflect": True}, {"reflect": True, "quarter_turns": 1},
            {"quarter_turns": 2, "shift": (1, 2)}, {"quarter_turns": 3, "reflect": True, "shift": (16, 0)}]


@pytest.mark.parametrize("element", ELEMENTS)
def test_grid_symmetries_map_vorticity_solutions_to_solutions_with_the_forcing_transformed(element):
    w = ns_solution()
    v, forcing = vorticity_symmetry(w, **element), vorticity_symmetry(li2021(), **element)
    assert relative(v, solve_ns(v[:, 0], forcing)) < 1e-13  # measured 2e-16 to 8e-16


def test_a_rotated_flow_with_the_unrotated_forcing_is_no_solution_unless_the_element_keeps_the_forcing():
    v = vorticity_symmetry(ns_solution(), quarter_turns=1)
    assert relative(v, solve_ns(v[:, 0], li2021())) > 0.05  # measured 0.27
    kept = vorticity_symmetry(ns_solution(), quarter_turns=3, reflect=True, shift=(N_W // 2, 0))  # see the table
    assert relative(kept, solve_ns(kept[:, 0], li2021())) < 1e-13  # measured 3e-16


def test_a_reflected_vorticity_must_change_sign():
    v = -vorticity_symmetry(ns_solution(), reflect=True)  # w(-x, y): mirrored as if it were a scalar
    assert relative(v, solve_ns(v[:, 0], -vorticity_symmetry(li2021(), reflect=True))) > 0.01  # measured 0.05


def test_the_li2021_forcing_is_kept_by_exactly_the_tabulated_elements():
    n = 8
    forcing = li2021(0.1, n)
    kept = {}
    for turns in range(4):
        for reflect in (False, True):
            for sx in range(n):
                for sy in range(n):
                    moved = vorticity_symmetry(forcing, quarter_turns=turns, reflect=reflect, shift=(sx, sy))
                    if float((moved - forcing).abs().max()) < 1e-12:
                        kept.setdefault((turns, reflect), set()).add((sx + sy) % n)
    # identity: s_x + s_y = 0; half turn: n/4; reflection across y = x (3 turns): n/2; across y = -x (1 turn): 3n/4
    assert kept == {(0, False): {0}, (2, False): {n // 4}, (3, True): {n // 2}, (1, True): {3 * n // 4}}
    point = torch.zeros(n, n)
    point[0, 1] = 1.0  # (x, y) = (1, 0)
    assert vorticity_symmetry(point, quarter_turns=3, reflect=True)[1, 0] == -1.0  # the swap (x, y) -> (y, x)


def test_time_scaling_multiplies_viscosity_by_b_and_forcing_by_b_squared():
    w, b = ns_solution(), 1.5
    v, times, viscosity, forcing = vorticity_scaling(w, torch.tensor(W_TIMES, dtype=torch.float64), NU_W, li2021(),
                                                     factor=b)
    assert float(viscosity) == pytest.approx(b * NU_W, rel=1e-15)
    assert relative(forcing, li2021(0.2 * b * b)) < 1e-14
    assert relative(v, solve_ns(v[:, 0], forcing, float(viscosity), times.tolist(), W_DT / b)) < 1e-12  # 8e-16
    assert relative(v, solve_ns(v[:, 0], forcing, NU_W, times.tolist(), W_DT / b)) > 0.05  # nu kept: 0.094
    assert relative(v, solve_ns(v[:, 0], li2021(), float(viscosity), times.tolist(), W_DT / b)) > 0.05  # f kept: 0.075


def test_random_grid_augmentations_are_reproducible_solutions_with_their_forcings():
    w = ns_solution()
    v, forcing = augment_vorticity(w, li2021(), generator=torch.Generator().manual_seed(3))
    again = augment_vorticity(w, li2021(), generator=torch.Generator().manual_seed(3))
    assert torch.equal(v, again[0]) and torch.equal(forcing, again[1]) and forcing.shape == (2, N_W, N_W)
    assert relative(v, solve_ns(v[:, 0], forcing)) < 1e-13
    still, same = augment_vorticity(w, li2021(), generator=torch.Generator().manual_seed(3), rotate=False,
                                    reflect=False, translate=False)
    assert torch.equal(still, w) and torch.equal(same, li2021().expand(2, N_W, N_W))


def test_per_sample_grid_elements_are_the_elements_applied_one_by_one():
    w = ns_solution()
    turns, mirror, shift = torch.tensor([1, 2]), torch.tensor([True, False]), torch.tensor([[3, 1], [0, 5]])
    batched = vorticity_symmetry(w, quarter_turns=turns, reflect=mirror, shift=shift)
    for i in range(2):
        one = vorticity_symmetry(w[i], quarter_turns=int(turns[i]), reflect=bool(mirror[i]), shift=tuple(shift[i].tolist()))
        assert torch.equal(batched[i], one)
    assert torch.equal(vorticity_symmetry(w, quarter_turns=4, shift=(N_W, -N_W)), w)


def test_a_steady_forcing_of_amplitude_0_1_is_the_li2021_forcing():
    w0 = initial_condition(2, N_W, seed=1, dtype=torch.float64)
    builtin = integrate_ns(NavierStokes2D(viscosity=NU_W), w0, W_TIMES[:2], dt=W_DT)
    assert relative(solve_ns(w0, li2021(0.1), times=W_TIMES[:2]), builtin) < 1e-14  # measured 3e-16


# Data with known coefficients.

def test_burgers_groups_share_a_viscosity_and_one_per_group_is_the_recipe():
    options = {"viscosity_range": (0.01, 0.1), "times": (0.0, 0.05), "solve_resolution": 256, "progress": False}
    ds = burgers_dataset(3, 32, seed=2, **options)
    recipe = generate("burgers", 3, 32, seed=2, **options)
    np.testing.assert_array_equal(ds["u"].values, recipe["u"].values)
    np.testing.assert_array_equal(ds["viscosity"].values, recipe["viscosity"].values)
    grouped = burgers_dataset(2, 32, seed=2, trajectories_per_group=2, **options)
    nu = grouped["viscosity"].values
    assert grouped["u"].shape == (4, 2, 32) and grouped["group"].values.tolist() == [0, 0, 1, 1]
    assert nu[0] == nu[1] == ds["viscosity"].values[0] and nu[2] == nu[3] == ds["viscosity"].values[1]
    labels = coefficient_groups(grouped, ["viscosity"])
    assert labels[0] == labels[1] != labels[2] == labels[3]
    np.testing.assert_array_equal(grouped["u"].values[1, 0], ds["u"].values[1, 0])  # sample 1's initial condition


def test_an_unresolved_burgers_viscosity_range_is_refused_before_solving():
    with pytest.raises(ConfigError, match=r"not resolved on 64 points.*nu >= max\|u0\| dx / 2"):
        burgers_dataset(2, 32, seed=0, viscosity_range=(1e-3, 1e-2), solve_resolution=64, progress=False)


def test_another_burgers_solver_step_changes_the_step_not_the_solution():
    options = {"viscosity_range": (0.02, 0.05), "times": (0.0, 0.1), "solve_resolution": 128, "progress": False}
    default = burgers_dataset(2, 32, seed=1, **options)
    half = burgers_dataset(2, 32, seed=1, courant=0.25, **options)
    assert half.attrs["dt"] == pytest.approx(default.attrs["dt"] / 2, rel=1e-12)
    difference = np.abs(half["u"].values - default["u"].values).max()
    assert 0 < difference < 1e-6 * np.abs(default["u"].values).max()  # ETDRK4: converged to far below the data's scale
    for bad in (0.0, 1.5, True):
        with pytest.raises(ConfigError, match="courant"):
            burgers_dataset(1, 32, seed=1, courant=bad, **options)


def test_navier_stokes_groups_share_viscosity_and_forcing_and_amplitude_0_1_is_the_recipe():
    options = {"times": (0.0, 0.1), "solve_resolution": 32, "progress": False}
    ds = navier_stokes_dataset(1, 16, seed=4, trajectories_per_group=2, viscosity_range=(1e-2, 1e-2),
                               forcing_range=(0.1, 0.1), **options)
    recipe = generate("ns2d", 2, 16, seed=4, viscosity=1e-2, **options)
    assert relative(torch.from_numpy(ds["vorticity"].values), torch.from_numpy(recipe["vorticity"].values)) < 1e-5
    grouped = navier_stokes_dataset(2, 16, seed=4, trajectories_per_group=2, forcing_range=(0.05, 0.2), **options)
    assert grouped["vorticity"].shape == (4, 2, 16, 16)
    nu, amplitude = grouped["viscosity"].values, grouped["forcing_amplitude"].values
    assert nu[0] == nu[1] != nu[2] == nu[3] and amplitude[0] == amplitude[1] != amplitude[2] == amplitude[3]
    assert np.all((1e-3 <= nu) & (nu <= 1e-2)) and np.all((0.05 <= amplitude) & (amplitude <= 0.2))
    labels = coefficient_groups(grouped, ["viscosity", "forcing_amplitude"])
    assert labels[0] == labels[1] != labels[2] == labels[3]


# Views.

def test_crops_have_their_shapes_wrap_around_and_repeat_from_a_seed():
    data = torch.arange(3 * 10 * 2 * 6 * 8, dtype=torch.float64).reshape(3, 10, 2, 6, 8)
    windows = crop(data, size_t=4, size_x=(5, 3), generator=torch.Generator().manual_seed(0))
    assert windows.shape == (3, 4, 2, 5, 3)
    assert torch.equal(windows, crop(data, size_t=4, size_x=(5, 3), generator=torch.Generator().manual_seed(0)))
    offsets = crop_offsets(3, 10, (6, 8), size_t=4, size_x=(5, 3), generator=torch.Generator().manual_seed(0))
    for i in range(3):
        t0, (y0, x0) = int(offsets.time[i]), offsets.space[i].tolist()
        rows, cols = [(y0 + j) % 6 for j in range(5)], [(x0 + j) % 8 for j in range(3)]
        assert torch.equal(windows[i], data[i, t0:t0 + 4][:, :, rows][..., cols])
    assert not torch.equal(windows, crop(data, size_t=4, size_x=(5, 3), generator=torch.Generator().manual_seed(1)))
    bounded = crop_offsets(200, 10, (6, 8), size_t=10, size_x=(5, 3), generator=torch.Generator(), periodic=False)
    assert int(bounded.time.max()) == 0 and int(bounded.space[:, 0].max()) <= 1 and int(bounded.space[:, 1].max()) <= 5
    with pytest.raises(ConfigError, match="size_t=11"):
        crop(data, size_t=11, size_x=3, generator=torch.Generator())


def test_a_dataset_crop_keeps_increasing_coordinates_across_the_period():
    ds = burgers_dataset(1, 16, seed=0, viscosity_range=(0.05, 0.1), times=(0.0, 0.01, 0.02), solve_resolution=64,
                         progress=False)
    for seed in range(20):
        window = crop(ds, size_t=2, size_x=12, generator=torch.Generator().manual_seed(seed))
        x = window["x"].values
        assert window["u"].shape == (1, 2, 12) and np.allclose(np.diff(x), 1 / 16)
        assert np.allclose(window["u"].values, ds["u"].sel(time=window["time"]).values[..., np.round(x * 16).astype(int) % 16])
        assert window["viscosity"].values[0] == ds["viscosity"].values[0]


def test_pairs_come_from_one_trajectory_or_from_two_that_share_coefficients():
    groups = torch.tensor([0, 0, 1, 1, 1, 2, 2, 1])
    generator = torch.Generator().manual_seed(0)
    seen = {i: set() for i in range(len(groups))}
    for _ in range(200):
        partner = partners(groups, generator=generator)
        assert torch.equal(groups[partner], groups) and not bool((partner == torch.arange(len(groups))).any())
        for i, j in enumerate(partner.tolist()):
            seen[i].add(j)
    assert seen[2] == {3, 4, 7} and seen[0] == {1}  # every other member of the group is drawn
    trajectories = torch.arange(8, dtype=torch.float64)[:, None, None, None].expand(8, 5, 1, 16)  # value = sample
    first, second = view_pairs(trajectories, size_t=3, size_x=8, generator=generator, partner=partner)
    assert first.shape == second.shape == (8, 3, 1, 8)
    assert torch.equal(first[:, 0, 0, 0], torch.arange(8.0)) and torch.equal(second[:, 0, 0, 0], partner.double())
    same = view_pairs(trajectories, size_t=3, size_x=8, generator=generator)
    assert torch.equal(same[1][:, 0, 0, 0], torch.arange(8.0))
    with pytest.raises(DataError, match=r"groups \[3\] have a single sample"):
        partners(torch.tensor([0, 0, 3]), generator=generator)
