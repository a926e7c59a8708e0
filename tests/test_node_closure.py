"""Learned closures for the coarse 2-D Navier-Stokes solver (sciml.node.closure): filter, Smagorinsky,
gradients through the unrolled solver, a-posteriori training, evaluation, save/load, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sciml.errors import ConfigError, DataError, SolverError
from sciml.node.closure import (ClosureCNN, ClosureTask, CoarseSolver, Smagorinsky, evaluate_closures, filtered_dns,
                                load_closure, plot_closure_evaluation, save_closure, spectral_filter,
                                trajectory_windows, tune_smagorinsky, unrolled_loss)
from sciml.solvers.navier_stokes import NavierStokes2D, courant_number, velocity

L = 2 * math.pi


def _grid(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(n, dtype=torch.float64) * (L / n)
    return x[None, :].expand(n, n), x[:, None].expand(n, n)  # (y, x)


def _random_vorticity(batch: int, n: int, seed: int, kmax: int) -> torch.Tensor:
    """Smooth random vorticity ``(batch, n, n)`` float64 on modes ``|k_x|, |k_y| <= kmax``, zero mean."""
    g = torch.Generator().manual_seed(seed)
    spectrum = torch.zeros(batch, n, n, dtype=torch.complex128)
    idx = torch.cat([torch.arange(0, kmax + 1), torch.arange(n - kmax, n)])
    spectrum[:, idx[:, None], idx[None, :]] = torch.randn(batch, len(idx), len(idx), 2, generator=g,
                                                          dtype=torch.float64).view(torch.complex128)[..., 0]
    spectrum[:, 0, 0] = 0
    w = torch.fft.ifft2(spectrum).real
    return w / w.std(dim=(-1, -2), keepdim=True)


def _one_line(error: pytest.ExceptionInfo) -> None:
    assert "\n" not in str(error.value) and len(str(error.value)) < 300


# ------------------------------------------------------------------------------------------------------ filter

def test_sharp_filter_keeps_resolved_modes_and_drops_the_rest_exactly():
    x, y = _grid(64)
    fine = torch.cos(x) + 0.5 * torch.sin(3 * y) + 0.3 * torch.cos(2 * x + 5 * y) + torch.cos(20 * x) + torch.sin(7 * y)
    coarse = spectral_filter(fine, 16, kind="sharp", length=L)  # cutoff (16 - 1) // 3 = 5: k = 7 and 20 go
    xc, yc = _grid(16)
    expected = torch.cos(xc) + 0.5 * torch.sin(3 * yc) + 0.3 * torch.cos(2 * xc + 5 * yc)
    assert coarse.shape == (16, 16)
    assert (coarse - expected).abs().max() < 1e-12


def test_gaussian_filter_damps_each_mode_by_its_transfer_function():
    x, y = _grid(64)
    coarse = spectral_filter(torch.cos(3 * x)[None] + torch.sin(2 * y)[None], 16, kind="gaussian", length=L)
    xc, yc = _grid(16)
    width = 2 * L / 16
    expected = math.exp(-9 * width**2 / 24) * torch.cos(3 * xc) + math.exp(-4 * width**2 / 24) * torch.sin(2 * yc)
    assert (coarse[0] - expected).abs().max() < 1e-12
    assert math.exp(-9 * width**2 / 24) < 0.8  # the filter is not the identity at k = 3


def test_filter_refuses_a_coarse_grid_that_does_not_divide_the_fine_one():
    with pytest.raises(ConfigError, match="must divide") as error:
        spectral_filter(torch.zeros(64, 64), 24)
    _one_line(error)
    with pytest.raises(ConfigError, match="must divide"):
        spectral_filter(torch.zeros(32, 32), 64)
    with pytest.raises(ConfigError, match="filter kind"):
        spectral_filter(torch.zeros(32, 32), 16, kind="box")
    with pytest.raises(DataError, match="square grid"):
        spectral_filter(torch.zeros(32, 16), 16)


# ------------------------------------------------------------------------------------------------- Smagorinsky

def test_smagorinsky_removes_energy_at_the_rate_nu_t_strain_squared():
    w = _random_vorticity(3, 32, seed=0, kmax=8)
    model = Smagorinsky(0.2, length=L)
    tendency, nu_t, strain = model.parts(w)
    # dE/dt = <psi dw/dt> for E = <|u|^2> / 2 with -Laplacian psi = w; it must equal -<nu_t |S|^2> <= 0
    k = torch.fft.fftfreq(32, 1 / 32, dtype=torch.float64)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    psi = torch.fft.ifft2(torch.fft.fft2(w) / torch.where(k2 > 0, k2, 1.0) * (k2 > 0)).real
    rate = (psi * tendency).mean(dim=(-1, -2))
    expected = -(nu_t * strain**2).mean(dim=(-1, -2))
    assert bool((rate < 0).all())
    assert torch.allclose(rate, expected, rtol=1e-10, atol=0)
    # |S| = sqrt(2 S_ij S_ij) from the velocity's spectral derivatives, independently of the model's stream function
    uv = velocity(NavierStokes2D(viscosity=0.0, forcing="none", length=L), w)

    def d(f, axis):
        kk = k[None, :] if axis == "x" else k[:, None]
        return torch.fft.ifft2(1j * kk * torch.fft.fft2(f)).real

    s11, s22 = d(uv[:, 0], "x"), d(uv[:, 1], "y")
    s12 = 0.5 * (d(uv[:, 0], "y") + d(uv[:, 1], "x"))
    assert (s11 + s22).abs().max() < 1e-12  # solenoidal
    direct = (2 * (s11**2 + s22**2 + 2 * s12**2)).sqrt()
    assert (strain - direct).abs().max() < 1e-10 * direct.max()
    assert torch.allclose(nu_t, (0.2 * L / 32) ** 2 * direct, rtol=1e-6, atol=0)  # C_s: a float32 buffer


def test_smagorinsky_scales_with_the_coefficient_squared_amplitude_squared_and_grid_spacing_squared():
    w = _random_vorticity(2, 32, seed=1, kmax=6)
    base = Smagorinsky(0.1, length=L)(w)
    assert torch.allclose(Smagorinsky(0.2, length=L)(w), 4 * base, rtol=1e-12, atol=1e-14)
    assert torch.allclose(Smagorinsky(0.1, length=L)(2 * w), 4 * base, rtol=1e-12, atol=1e-14)
    # the same field on a grid twice as fine has Delta / 2: a quarter of the tendency
    spectrum = torch.fft.fft2(w)
    big = torch.zeros(2, 64, 64, dtype=spectrum.dtype)
    idx = torch.cat([torch.arange(0, 15), torch.arange(-14, 0)])
    big[:, idx[:, None], idx[None, :]] = spectrum[:, idx[:, None], idx[None, :]] * 4
    w64 = torch.fft.ifft2(big).real
    on_fine = Smagorinsky(0.1, length=L)(w64)[:, ::2, ::2]
    ratio = (on_fine * base).sum() / (base * base).sum()
    assert abs(float(ratio) - 0.25) < 0.03  # |S| differs only by the products' aliasing on the coarse grid


def test_smagorinsky_makes_an_inviscid_coarse_run_lose_energy_monotonically():
    eq = NavierStokes2D(viscosity=0.0, forcing="none", length=L)
    w0 = _random_vorticity(2, 32, seed=2, kmax=8)
    solver = CoarseSolver(equation=eq, n=32, dt=0.01, steps_per_frame=5)

    def energy(run):
        return 0.5 * velocity(eq, run.flatten(0, 1)).pow(2).mean(dim=(1, 2, 3)).view(run.shape[:2])

    plain = energy(solver.rollout(w0, 6))
    damped = energy(solver.rollout(w0, 6, Smagorinsky(0.3, length=L)))
    assert (plain / plain[:, :1] - 1).abs().max() < 2e-3  # inviscid, dealiased: energy conserved to the scheme
    assert bool((damped.diff(dim=1) < 0).all())
    assert bool((damped[:, -1] < 0.99 * plain[:, -1]).all())


# ------------------------------------------------------------------------------------------- gradients, training

def test_gradient_through_the_unrolled_solver_matches_finite_differences():
    torch.manual_seed(0)
    eq = NavierStokes2D(viscosity=0.02, forcing="kolmogorov", length=L, forcing_wavenumber=2)
    solver = CoarseSolver(equation=eq, n=16, dt=0.02, steps_per_frame=3)
    windows = _random_vorticity(4, 16, seed=3, kmax=4).view(2, 2, 16, 16) * 0.5
    windows = torch.cat([windows, windows[:, :1]], dim=1)  # (2, 3, 16, 16): any target works for a gradient
    model = ClosureCNN(channels=4, layers=3).double()
    nn.init.normal_(model.net[-1].weight, std=0.3)
    loss = unrolled_loss(solver, model, windows)
    params = list(model.parameters())
    grads = torch.autograd.grad(loss, params)
    direction = [torch.randn_like(p) for p in params]
    analytic = sum(float((g * d).sum()) for g, d in zip(grads, direction))
    eps = 1e-6

    def shifted(sign):
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.add_(sign * eps * d)
            value = float(unrolled_loss(solver, model, windows))
            for p, d in zip(params, direction):
                p.sub_(sign * eps * d)
        return value

    numeric = (shifted(1) - shifted(-1)) / (2 * eps)
    assert abs(analytic) > 1e-4
    assert abs(analytic - numeric) < 1e-6 * max(1.0, abs(numeric))


class LinearDamping(nn.Module):
    """``c(w) = -beta w`` with a trainable ``beta``."""

    def __init__(self) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.zeros(()))

    def forward(self, w, t=0.0):
        return -self.beta * w


def test_a_posteriori_training_recovers_a_known_closure():
    from sciml.train import TrainConfig, fit, seed_everything

    class SGDClosureTask(ClosureTask):  # one parameter, a quadratic loss: plain gradient descent converges fast
        def optimizer(self, model, config):
            return torch.optim.SGD(model.parameters(), lr=config.lr)

    eq = NavierStokes2D(viscosity=0.01, forcing="kolmogorov", length=L, forcing_wavenumber=2)
    solver = CoarseSolver(equation=eq, n=16, dt=0.05, steps_per_frame=2)
    beta = 0.4
    w0 = _random_vorticity(6, 16, seed=4, kmax=4).float()
    with torch.no_grad():
        truth = solver.rollout(w0, 10, lambda w, t: -beta * w)  # (6, 11, 16, 16): data made with c = -0.4 w
    windows = trajectory_windows(truth, 4, stride=6)
    assert windows.shape == (6 * 2, 5, 16, 16)
    assert torch.equal(windows[1], truth[0, 6:11])
    seed_everything(0)
    model = LinearDamping()
    history = fit(SGDClosureTask(model, solver), (windows,),
                  config=TrainConfig(epochs=8, batch_size=12, lr=5.0, schedule="constant", warmup_fraction=0.0,
                                     weight_decay=0.0, device="cpu", progress=False))
    with torch.no_grad():
        after = float(unrolled_loss(solver, model, windows))
    assert history[0]["train_loss"] > 5e-3  # no model: about 1 % relative squared error
    assert after < 1e-5 * history[0]["train_loss"]
    assert abs(float(model.beta.detach()) - beta) < 1e-3 * beta  # recovered to 0.1 %


def test_tune_smagorinsky_finds_the_coefficient_that_made_the_data():
    import xarray as xr

    eq = NavierStokes2D(viscosity=0.01, forcing="kolmogorov", length=L, forcing_wavenumber=2)
    solver = CoarseSolver(equation=eq, n=16, dt=0.05, steps_per_frame=2)
    with torch.no_grad():
        truth = solver.rollout(_random_vorticity(3, 16, seed=5, kmax=5).float() * 2, 10, Smagorinsky(0.2, length=L))
    ds = xr.Dataset({"vorticity": (("sample", "time", "y", "x"), truth.numpy())},
                    coords={"time": [0.1 * i for i in range(11)]}, attrs=eq.attributes())
    best, losses = tune_smagorinsky(ds, dt=0.05, frames=5, stride=1, coefficients=[0.0, 0.1, 0.2, 0.3])
    assert best == 0.2
    assert losses[0.2] < 1e-8 < losses[0.1]


# ------------------------------------------------------------------------------------------------- evaluation

def test_evaluation_scores_a_self_consistent_reference_as_perfect_and_a_wrong_model_as_worse():
    import xarray as xr

    eq = NavierStokes2D(viscosity=0.01, forcing="kolmogorov", length=L, forcing_wavenumber=2)
    solver = CoarseSolver(equation=eq, n=16, dt=0.05, steps_per_frame=2)
    with torch.no_grad():
        truth = solver.rollout(_random_vorticity(2, 16, seed=6, kmax=5).float() * 3, 20)
    ds = xr.Dataset({"vorticity": (("sample", "time", "y", "x"), truth.numpy())},
                    coords={"time": [0.1 * i for i in range(21)], "sample": [0, 1]},
                    attrs={**eq.attributes(), "filter_cutoff": 5})
    ev = evaluate_closures(ds, {"no model": None, "strong Smagorinsky": Smagorinsky(0.6, length=L)}, dt=0.05,
                           progress=False)
    assert ev["correlation"].dims == ("model", "sample", "time")
    assert float(ev["correlation"].sel(model="no model").min()) > 1 - 1e-6
    assert float(ev["decorrelation_time"].sel(model="no model")) == pytest.approx(2.0)
    assert float(ev["spectrum_error"].sel(model="no model")) < 1e-6
    assert float(ev["spectrum_error"].sel(model="strong Smagorinsky")) > 0.01
    assert float(ev["mean_correlation"].sel(model="strong Smagorinsky").isel(time=-1)) < 1 - 1e-4
    # the energy spectrum sums to the mean kinetic energy
    late = truth[:, 10:].double()
    energy = 0.5 * velocity(eq, late.flatten(0, 1)).pow(2).sum(dim=1).mean()
    assert float(ev["reference_spectrum"].sum()) == pytest.approx(float(energy), rel=1e-9)
    fig = plot_closure_evaluation(ev)
    labels = [ax.get_xlabel() for ax in fig.axes] + [ax.get_ylabel() for ax in fig.axes]
    assert all(labels) and any("correlation" in s for s in labels) and any("E(k)" in s for s in labels)
    assert all(ax.get_legend() is not None for ax in fig.axes)


def test_filtered_dns_writes_the_filter_and_the_cost_and_lives_in_the_coarse_space():
    ds = filtered_dns(2, fine=32, coarse=16, times=[0.1 * i for i in range(4)], spinup=0.2, seed=0, progress=False,
                      viscosity=0.02)
    assert ds["vorticity"].shape == (2, 4, 16, 16)
    assert ds.attrs["filter"] == "sharp" and ds.attrs["fine_resolution"] == 32 and ds.attrs["filter_cutoff"] == 5
    assert ds.attrs["dns_seconds_per_time_unit"] > 0
    w = torch.as_tensor(ds["vorticity"].values)
    spectrum = torch.fft.fft2(w).abs()
    assert float(spectrum[..., 6:11, :].max()) < 1e-4 * float(spectrum.max())  # modes beyond the cutoff are empty
    with pytest.raises(ConfigError, match="must divide") as error:
        filtered_dns(1, fine=64, coarse=24, progress=False)
    _one_line(error)


# ------------------------------------------------------------------------------------------------- bad input

def test_a_closure_returning_the_wrong_shape_or_nan_is_named_in_one_line():
    import xarray as xr

    eq = NavierStokes2D(viscosity=0.01, forcing="kolmogorov", length=L, forcing_wavenumber=2)
    solver = CoarseSolver(equation=eq, n=16, dt=0.05, steps_per_frame=2)
    w0 = _random_vorticity(2, 16, seed=7, kmax=4).float()
    with pytest.raises(SolverError, match="must return the tendency") as error:
        solver.rollout(w0, 1, lambda w, t: w[..., :8])
    _one_line(error)
    with pytest.raises(DataError, match=r"\(batch, 16, 16\)"):
        solver.rollout(w0[..., :8, :8], 1)
    truth = torch.stack([w0, w0], dim=1)
    ds = xr.Dataset({"vorticity": (("sample", "time", "y", "x"), truth.numpy())}, coords={"time": [0.0, 0.1]},
                    attrs=eq.attributes())
    with pytest.raises(SolverError, match="'nan' became non-finite") as error:
        evaluate_closures(ds, {"nan": lambda w, t: torch.full_like(w, float("nan"))}, dt=0.05, progress=False)
    _one_line(error)
    with pytest.raises(ConfigError, match="must divide the frame interval"):
        evaluate_closures(ds, {"none": None}, dt=0.03, progress=False)
    # a time step the explicit advection cannot take on this flow: named with its Courant number and a dt that works
    fast = ds.assign(vorticity=ds["vorticity"] * (29.5 / courant_number(eq, w0, 0.05)))  # Courant 29.5 at dt 0.05
    with pytest.raises(ConfigError, match=r"Courant number 29\.5 .* use dt = 0\.1/118 = 0\.0008475") as error:
        evaluate_closures(fast, {"none": None}, dt=0.05, progress=False)
    _one_line(error)
    evaluate_closures(fast, {"none": None}, dt=0.1 / 118, progress=False)  # accepted, and runs
    with pytest.raises(ConfigError, match="steps_per_frame"):
        CoarseSolver(equation=eq, n=16, dt=0.05, steps_per_frame=0)


# ------------------------------------------------------------------------------------------------- save / load

def test_save_and_load_round_trip_and_refuse_tampered_weights(tmp_path):
    torch.manual_seed(1)
    model = ClosureCNN(channels=5, layers=3, vorticity_scale=2.0, tendency_scale=0.5)
    nn.init.normal_(model.net[-1].weight)
    w = torch.randn(2, 16, 16)
    save_closure(model, tmp_path / "cnn", metadata={"trained_on": "test"})
    loaded = load_closure(tmp_path / "cnn")
    assert isinstance(loaded, ClosureCNN) and loaded.options == model.options
    assert torch.equal(loaded(w), model(w))
    save_closure(Smagorinsky(0.123, length=L), tmp_path / "smag")
    smag = load_closure(tmp_path / "smag")
    assert float(smag.coefficient) == pytest.approx(0.123) and smag.length == L
    with pytest.raises(DataError, match="exists"):
        save_closure(model, tmp_path / "cnn")
    state = torch.load(tmp_path / "cnn" / "weights.pt", weights_only=True)
    state["net.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, tmp_path / "cnn" / "weights.pt")
    with pytest.raises(DataError, match="NaN") as error:
        load_closure(tmp_path / "cnn")
    _one_line(error)
    with pytest.raises(DataError, match="not a saved closure"):
        load_closure(tmp_path / "missing")
