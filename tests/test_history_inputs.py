"""History inputs: time-stepping surrogates and forecasts that take several past steps.

The test problem is the 2-D wave equation u_tt = c^2 Laplacian(u) on the periodic unit box. Each Fourier
mode evolves as cos(omega t + theta) with omega = 2 pi c |k|, so frames dt apart obey the exact two-step
(leapfrog) recursion u(t + dt) = 2 cos(omega dt) u(t) - u(t - dt) per mode, while no map of u(t) alone
can give u(t + dt) (the velocity is missing): a history-2 surrogate can be exact, a history-1 one cannot.
"""

import json

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

from sciml import ConfigError, DataError, Grid
from sciml.data import OperatorPairs, TrajectoryWindows
from sciml.forecast import BredVectors, RolloutTask, fit_forecaster, forecast
from sciml.models import register_model
from sciml.surrogate import NormalizedOperator, Surrogate, fit_surrogate
from sciml.train import TrainConfig, relative_l2_loss

N, DT, C = 16, 0.05, 1.0  # grid points per side, frame spacing (s), wave speed (m s-1) on a 1 m box
MODES = [(1, 0), (0, 1), (1, 1), (2, 1), (1, 2), (2, 2), (3, 0)]


def waves(samples: int, times: int, *, seed: int, dt: float = DT, source: str | None = None) -> xr.Dataset:
    """Exact wave-equation trajectories ``u (sample, time, y, x)``: random amplitude and phases per mode."""
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.arange(N) / N, np.arange(N) / N, indexing="ij")
    t = np.arange(times) * dt
    u = np.zeros((samples, times, N, N))
    for s in range(samples):
        for ky, kx in MODES:
            a, phi, theta = rng.normal() / np.sqrt(1 + ky ** 2 + kx ** 2), rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi)
            omega = 2 * np.pi * C * np.hypot(ky, kx)
            u[s] += a * np.cos(omega * t + theta)[:, None, None] * np.cos(2 * np.pi * (ky * y + kx * x) + phi)[None]
    coords = {"sample": np.arange(samples), "time": xr.DataArray(t, dims="time", attrs={"units": "s"}),
              **{d: xr.DataArray(np.arange(N) / N, dims=d, attrs={"units": "m"}) for d in ("y", "x")}}
    ds = xr.Dataset({"u": (("sample", "time", "y", "x"), u.astype(np.float32), {"units": "m", "long_name": "displacement"})},
                    coords=coords)
    if source is not None:
        ds.encoding["source"] = source
    return ds


class Leapfrog(nn.Module):
    """The exact step of the waves: input ``(batch, 2, y, x)`` = [u(t - dt), u(t)], output ``u(t + dt)``."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = torch.fft.fftfreq(x.shape[-1], 1.0 / x.shape[-1], dtype=torch.float64)
        factor = 2 * torch.cos(2 * torch.pi * C * torch.sqrt(k[:, None] ** 2 + k[None, :] ** 2) * DT)
        spectra = torch.fft.fft2(x.double())
        return torch.fft.ifft2(factor * spectra[:, 1:2] - spectra[:, 0:1]).real.to(x.dtype) * self.scale


def leapfrog_surrogate() -> Surrogate:
    return Surrogate(module=NormalizedOperator(Leapfrog(), 2, 1), inputs=["u"], outputs=["u"], grid=Grid.box(N, N),
                     units={"u": "m"}, model="leapfrog", model_options={}, lead_time=DT, time_units="s",
                     origin={"y": 0.0, "x": 0.0}, history=2)


def rollout_by_hand(module: nn.Module, frames: list[torch.Tensor], steps: int) -> list[torch.Tensor]:
    """The model applied ``steps`` times to the stacked frames (oldest first), each output the newest frame."""
    frames, out = list(frames), []
    with torch.no_grad():
        for _ in range(steps):
            pred = module(torch.cat(frames, dim=1))
            frames = [*frames[1:], pred]
            out.append(pred)
    return out


class SpectralLinear(nn.Module):
    """A learnable linear map per Fourier mode (complex weights ``(out, in)`` per rfft2 mode): it can hold the
    leapfrog step exactly, and the best one-frame map is the best linear one."""

    def __init__(self, in_channels: int, out_channels: int, size: int = N) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(2, out_channels, in_channels, size, size // 2 + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spectra = torch.fft.rfft2(x)
        weight = torch.complex(self.weight[0], self.weight[1])
        return torch.fft.irfft2(torch.einsum("bixy,oixy->boxy", spectra, weight), s=x.shape[-2:])


@pytest.fixture(scope="module", autouse=True)
def _registered_test_model():
    """The test model is registered for this module only: the registry is global, and test_models checks
    that it holds exactly the library's models."""
    from sciml.models import registry

    register_model("spectral_linear_history_test", SpectralLinear, overwrite=True)
    yield
    registry._REGISTRY.pop("spectral_linear_history_test", None)
CONFIG = TrainConfig(epochs=40, batch_size=32, lr=5e-2, device="cpu", progress=False, seed=0)


def one_step_error(surrogate: Surrogate, ds: xr.Dataset) -> float:
    """Relative L2 error of the one-step predictions against the exact frame ``dt`` later."""
    pred = surrogate.predict(ds)
    times = pred["time"].values[:-1]  # the last frame's target is not in ds
    truth = ds["u"].sel(time=times + DT, method="nearest").values
    p = pred["u"].sel(time=times).values
    return float(np.sqrt(((p - truth) ** 2).sum() / (truth ** 2).sum()))


@pytest.fixture(scope="module")
def trained():
    import warnings

    train = waves(6, 24, seed=0)
    models = {}
    for h in (1, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "still falling" at a loss of 1e-4 for h=2, a plateau for h=1
            models[h], _ = fit_surrogate(train, inputs=["u"], outputs=["u"], lag=1, history=h,
                                         model="spectral_linear_history_test", config=CONFIG)
    return models


# --------------------------------------------------------------------------------------------- learning
@pytest.mark.slow
def test_history_two_learns_the_leapfrog_step_that_one_frame_cannot(trained):
    test = waves(2, 24, seed=1)
    e1, e2 = one_step_error(trained[1], test), one_step_error(trained[2], test)
    assert e2 < 2e-3, e2          # exact up to training: measured 1.5e-4
    assert e1 > 0.2, e1           # the velocity is missing from one frame: measured 0.34
    assert e1 > 5 * e2
    # the channels are [u(t - dt), u(t)], oldest first: the learned weights of mode (1, 0) are -1 and 2 cos(omega dt)
    weight = trained[2].module.network.weight.detach()  # (re/im, out, in, ky, kx), on normalised fields of equal scale
    assert weight[0, 0, 0, 1, 0].item() == pytest.approx(-1.0, abs=2e-2)
    assert weight[0, 0, 1, 1, 0].item() == pytest.approx(2 * np.cos(2 * np.pi * C * DT), abs=2e-2)
    assert trained[2].history == 2 and trained[2].input_channels == 2 and trained[1].input_channels == 1
    assert trained[2].provenance["history"] == 2 and trained[2].provenance["n_train_pairs"] == 6 * (24 - 2)


@pytest.mark.slow
def test_saved_history_model_round_trips_and_old_manifests_load_as_one_frame(trained, tmp_path):
    test = waves(1, 8, seed=2)
    trained[2].save(tmp_path / "h2")
    manifest = json.loads((tmp_path / "h2" / "manifest.json").read_text())
    assert manifest["history"] == 2
    loaded = Surrogate.load(tmp_path / "h2")
    assert loaded.history == 2 and loaded.module.input_norm.mean.shape == (2,)
    xr.testing.assert_identical(loaded.predict(test, steps=3).drop_attrs(), trained[2].predict(test, steps=3).drop_attrs())
    # a manifest written before history inputs has no "history": it is a one-frame model
    trained[1].save(tmp_path / "old")
    path = tmp_path / "old" / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["history"]
    path.write_text(json.dumps(manifest))
    old = Surrogate.load(tmp_path / "old")
    assert old.history == 1
    np.testing.assert_array_equal(old.predict(test)["u"].values, trained[1].predict(test)["u"].values)
    for bad in (0, 1.5, "2"):
        manifest["history"] = bad
        path.write_text(json.dumps(manifest))
        with pytest.raises(DataError, match="history"):
            Surrogate.load(tmp_path / "old")


@pytest.mark.slow
def test_trained_history_model_predicts_as_a_hand_rolled_loop_of_its_module(trained):
    test = waves(2, 6, seed=3)
    out = trained[2].predict(test, steps=4)
    assert out["u"].dims == ("sample", "time", "lead_time", "y", "x")
    np.testing.assert_allclose(out["time"].values, test["time"].values[1:])  # the first frame is history only
    u = torch.from_numpy(test["u"].values)
    for t in range(1, 6):
        by_hand = rollout_by_hand(trained[2].module, [u[:, t - 1:t], u[:, t:t + 1]], 4)
        for j in range(4):
            np.testing.assert_allclose(out["u"].values[:, t - 1, j], by_hand[j][:, 0].numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_fit_forecaster_fine_tunes_a_history_model_on_rollouts():
    import warnings

    train = waves(6, 24, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        surrogate, stages = fit_forecaster(train, variables=["u"], history=2, model="spectral_linear_history_test",
                                           pretrain=CONFIG, curriculum=(2,), loss="rel_l2")
    assert sorted(stages) == [1, 2] and surrogate.history == 2
    assert len(stages[2]) == 10 and stages[2][-1]["train_loss"] < 2e-3  # two-step rollouts of the learned leapfrog
    test = waves(1, 12, seed=5)
    out = forecast(surrogate, test.isel(time=[0, 1]), steps=10, progress=False)  # one initial time: t = dt
    truth = test["u"].values[0, 2:12]
    error = np.sqrt(((out["u"].values[0, 0] - truth) ** 2).sum() / (truth ** 2).sum())
    assert error < 1e-2, error  # ten steps of the learned leapfrog


# ------------------------------------------------------------------------------ exact model: predict, forecast
def test_predict_with_the_exact_two_step_map_matches_the_waves_at_the_model_step():
    ds = waves(2, 8, seed=6)
    model = leapfrog_surrogate()
    one = model.predict(ds)
    np.testing.assert_allclose(one["time"].values, ds["time"].values[1:])
    np.testing.assert_allclose(one["valid_time"].values, ds["time"].values[1:] + DT)
    np.testing.assert_allclose(one["u"].values[:, :-1], ds["u"].values[:, 2:], atol=2e-5)
    roll = model.predict(ds.isel(time=[0, 1]), steps=6)
    assert roll["u"].shape == (2, 1, 6, N, N)
    np.testing.assert_allclose(roll["u"].values[:, 0], ds["u"].values[:, 2:8], atol=5e-5)
    # a file sampled twice as finely: the frames dt apart are found by their times
    fine = waves(2, 9, seed=6, dt=DT / 2)
    pred = model.predict(fine)
    np.testing.assert_allclose(pred["time"].values, fine["time"].values[2:])
    np.testing.assert_allclose(pred["u"].values[:, :-2], fine["u"].values[:, 4:], atol=2e-5)
    # (time, y, x) without a sample dim: the same numbers
    np.testing.assert_allclose(model.predict(ds.isel(sample=0))["u"].values, one["u"].values[0], atol=1e-6)


def test_evaluate_scores_a_history_model_against_the_frames_it_predicts(tmp_path):
    from sciml.evaluation import evaluate

    model = leapfrog_surrogate()
    for ds in (waves(2, 10, seed=8), waves(2, 19, seed=8, dt=DT / 2)):  # lag 1 and lag 2 (past frames 2 apart)
        result = evaluate(model, ds, steps=3, device="cpu", out_dir=tmp_path / str(ds.sizes["time"]))
        assert result["rel_l2"]["u"] < 1e-4  # the exact map, scored against the frame one step after each input
        assert result["persistence_rel_l2"]["u"] > 0.05
        assert all(error < 1e-4 for error in result["rel_l2_by_resolution"]["8x8"].values())
        rollout = result["rollout"]
        assert max(rollout["rel_l2"]["u"]) < 1e-4 and min(rollout["persistence_rel_l2"]["u"]) > 0.05
        lag = 1 if ds.sizes["time"] == 10 else 2
        assert rollout["n_initial_frames"] == 2 * (ds.sizes["time"] - 3 * lag - lag)  # the first lag frames are history
    with pytest.raises(DataError, match="needs more than 2 frames"):
        evaluate(model, waves(1, 2, seed=8), device="cpu")


def test_forecast_starts_from_the_times_with_their_history_and_feeds_back_the_last_two_states():
    ds = waves(2, 10, seed=7)
    model = leapfrog_surrogate()
    out = forecast(model, ds.isel(time=[0, 1, 2]), steps=7, progress=False)
    assert out["u"].dims == ("sample", "time", "lead_time", "y", "x")
    np.testing.assert_allclose(out["time"].values, [DT, 2 * DT])  # time 0 serves as history only
    np.testing.assert_allclose(out["valid_time"].values, out["time"].values[:, None] + DT * np.arange(1, 8)[None])
    for i, t in enumerate((1, 2)):
        np.testing.assert_allclose(out["u"].values[:, i], ds["u"].values[:, t + 1:t + 8], atol=1e-4)
    # the same as predict(steps=)
    np.testing.assert_allclose(out["u"].values, model.predict(ds.isel(time=[0, 1, 2]), steps=7)["u"].values, atol=1e-6)


class ConstantPerturbation:
    """Adds ``eps cos(2 pi x)`` to the state (a fixed field, so the result can be checked by hand)."""

    def __call__(self, state, *, grid, generator):
        x = torch.arange(state.shape[-1]) / state.shape[-1]
        return 1e-2 * torch.cos(2 * torch.pi * x).expand_as(state).clone()


def test_an_ensemble_member_perturbs_every_past_frame_by_the_same_field():
    ds = waves(1, 4, seed=8)
    model = leapfrog_surrogate()
    init = ds.isel(time=[0, 1])
    control = forecast(model, init, steps=5, progress=False)["u"].values[:, 0]  # (sample, lead, y, x)
    members = forecast(model, init, steps=5, perturbation=ConstantPerturbation(), progress=False)["u"]
    assert members.dims == ("sample", "time", "lead_time", "member", "y", "x")
    delta = ConstantPerturbation()(torch.zeros(1, 1, N, N), grid=None, generator=None)
    # a linear model: the member minus the control is the rollout of the perturbation from (delta, delta)
    expected = rollout_by_hand(model.module, [delta, delta], 5)
    for j in range(5):
        np.testing.assert_allclose(members.values[:, 0, j, 0] - control[:, j], expected[j][:, 0].numpy(), atol=1e-5)


# ------------------------------------------------------------------------------------------------ loaders
def test_operator_pairs_stack_the_past_state_oldest_first_and_the_other_inputs_at_t():
    ds = waves(2, 9, seed=9)
    ds["f"] = ds["u"] * 0 + xr.DataArray(np.arange(9.0, dtype=np.float32), dims="time")  # a forcing along time
    pairs = OperatorPairs(ds, inputs=["u", "f"], outputs=["u"], lag=2, history=3)
    assert pairs.history_variables == ["u"] and len(pairs) == 2 * (9 - 3 * 2)
    u = ds["u"].values
    for index in (0, 4, 5):
        sample, j = divmod(index, 3)
        t = j + 4  # the first (3 - 1) * 2 frames serve as history only
        x, y = pairs[index]
        assert x.shape == (4, N, N) and y.shape == (1, N, N)
        np.testing.assert_array_equal(x[0].numpy(), u[sample, t - 4])
        np.testing.assert_array_equal(x[1].numpy(), u[sample, t - 2])
        np.testing.assert_array_equal(x[2].numpy(), u[sample, t])
        np.testing.assert_array_equal(x[3].numpy(), np.full((N, N), float(t), dtype=np.float32))
        np.testing.assert_array_equal(y[0].numpy(), u[sample, t + 2])
    # batched reads give the same items
    for a, b in zip(pairs.__getitems__([5, 0, 4]), [pairs[5], pairs[0], pairs[4]]):
        torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    # history=1 is the plain pair
    plain, one = OperatorPairs(ds, inputs=["u"], outputs=["u"], lag=2), OperatorPairs(ds, inputs=["u"], outputs=["u"], lag=2, history=1)
    assert len(plain) == len(one) == 2 * 7
    torch.testing.assert_close(plain[3][0], one[3][0], rtol=0, atol=0)


def test_rollout_task_with_history_is_zero_for_the_exact_map_and_the_mean_over_leads_otherwise():
    ds = waves(2, 8, seed=10)
    windows = TrajectoryWindows(ds, variables=["u"], history=2, horizon=3)
    batch = windows.__getitems__(list(range(len(windows))))
    past, future = torch.stack([b[0] for b in batch]), torch.stack([b[1] for b in batch])
    exact = NormalizedOperator(Leapfrog(), 2, 1)
    task = RolloutTask(exact, grid=Grid.box(N, N), steps=3, loss="rel_l2", history=2)
    assert task.loss(exact, (past, future)).item() < 1e-5
    with torch.no_grad():
        exact.network.scale.fill_(1.1)
    value = task.loss(exact, (past, future)).item()
    frames, expected = [past[:, 0], past[:, 1]], []
    for j, pred in enumerate(rollout_by_hand(exact, frames, 3)):
        expected.append(relative_l2_loss(pred, future[:, j], grid=Grid.box(N, N), per_channel=True).item())
    assert value == pytest.approx(np.mean(expected), rel=1e-5) and value > 0.05
    with pytest.raises(DataError, match="history=2"):
        task.loss(exact, (past[:, 1:], future))


# ------------------------------------------------------------------------------------------------- errors
def test_bad_history_settings_and_inputs_give_one_line_errors():
    ds = waves(1, 6, seed=11, source="waves.nc")
    model = leapfrog_surrogate()
    for call, error, text in [
        (lambda: model.predict(ds.isel(time=[3])), DataError, r"waves.nc: .*history=2.*lacks time\(s\) 0.1\b"),
        (lambda: model.predict(ds.isel(time=3)), DataError, r"waves.nc: .*'time' dim"),
        (lambda: model.predict(ds.isel(time=[0, 2, 4])), DataError, r"waves.nc: .*lacks time\(s\) 0.15"),
        (lambda: forecast(model, ds.isel(time=[5]), steps=2, progress=False), DataError, r"waves.nc: .*lacks time\(s\) 0.2\b"),
        (lambda: forecast(model, ds.isel(time=[0, 1]), steps=2, perturbation=BredVectors(), progress=False),
         ConfigError, "history=1"),
        (lambda: fit_surrogate(ds, inputs=["u"], outputs=["u"], history=2), ConfigError, "needs lag="),
        (lambda: fit_surrogate(ds, inputs=["u"], outputs=["u"], lag=1, history=0), ConfigError, "history must be"),
        (lambda: fit_surrogate(ds, inputs=["u"], outputs=["u"], lag=2, history=3), DataError, "waves.nc: history=3 with lag 2"),
        (lambda: OperatorPairs(ds.assign(v=ds["u"]), inputs=["u"], outputs=["v"], lag=1, history=2), ConfigError, "share none"),
        (lambda: model.predict_tensor(torch.zeros(1, 1, N, N)), DataError, r"\(batch, 2, \*space\)"),
    ]:
        with pytest.raises(error, match=text) as info:
            call()
        assert "\n" not in str(info.value)
    one_frame = Surrogate(module=NormalizedOperator(Leapfrog(), 1, 1), inputs=["u"], outputs=["u"], grid=Grid.box(N, N),
                          units={"u": "m"}, model="leapfrog", model_options={}, lead_time=DT, time_units="s")
    with pytest.raises(ConfigError, match="history"):
        forecast([model, one_frame], ds, steps=1, progress=False)


def test_past_frames_are_found_by_time_value_for_float_datetime_and_cftime_coordinates():
    import cftime
    import pandas as pd

    from sciml.surrogate import _history_index

    hours = [0, 1, 2, 4, 5, 6, 7]  # hour 3 is missing
    coords = {
        "float": (xr.DataArray(np.array(hours, dtype=float), dims="time", attrs={"units": "hours"}), 1.0, "hours"),
        "datetime64": (xr.DataArray(pd.Timestamp("2000-01-01") + pd.to_timedelta(hours, "h"), dims="time"),
                       pd.Timedelta(hours=1), None),
        "cftime": (xr.DataArray([cftime.DatetimeNoLeap(2000, 1, 1, h) for h in hours], dims="time"), pd.Timedelta(hours=1), None),
    }
    for kind, (time, lead, units) in coords.items():
        keep, past = _history_index(time, lead, 3, source=kind, units=units)
        assert keep.tolist() == [2, 5, 6], kind  # hours 2, 6, 7: each with the frames 1 and 2 hours before
        assert past.tolist() == [[0, 1], [3, 4], [4, 5]], kind
        with pytest.raises(DataError, match=f"{kind}: .*lacks time"):
            _history_index(time.isel(time=[0, 2, 4]), lead, 2, source=kind, units=units)
