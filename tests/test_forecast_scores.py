"""Skill scores (sciml.forecast.scores): hand-worked cases, exact identities and calibrated-ensemble statistics."""

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from sciml.errors import DataError
from sciml.forecast import scores
from sciml.grids import Grid

RNG_SEED = 20240601


def sphere(values, *, nodes="equiangular", times=None, name="z", extra=()):
    """A DataArray ``(*extra dims, [time,] lat, lon)`` on a global grid of the shape of ``values``' last two axes."""
    values = np.asarray(values, dtype=np.float64)
    grid = Grid.latlon(*values.shape[-2:], nodes=nodes)
    dims = [d for d, _ in extra] + (["time"] if times is not None else []) + ["lat", "lon"]
    coords = {d: c for d, c in extra}
    if times is not None:
        coords["time"] = times
    return xr.DataArray(values, dims=dims, coords={**coords, **grid.coords()}, name=name, attrs={"units": "m"})


def box(values, *, lengths=1.0, extra=(), name="u"):
    """A DataArray ``(*extra dims, y, x)`` or ``(*extra, x)`` on a periodic box."""
    values = np.asarray(values, dtype=np.float64)
    d = 2 if values.ndim - len(extra) >= 2 else 1
    grid = Grid.box(*values.shape[-d:], lengths=lengths)
    return xr.DataArray(values, dims=[e for e, _ in extra] + list(grid.dims),
                        coords={**dict(extra), **grid.coords()}, name=name)


def one_line(excinfo) -> None:
    assert "\n" not in str(excinfo.value)


# ------------------------------------------------------------------------------------------- weights, RMSE, MAE
def test_area_weights_have_mean_one_and_are_largest_at_the_equator():
    # 3 equiangular latitudes: Simpson's rule 1/3, 4/3, 1/3, normalised to mean 1
    w = scores.area_weights(sphere(np.zeros((3, 4))))
    np.testing.assert_allclose(w.values, [[0.5] * 4, [2.0] * 4, [0.5] * 4], rtol=1e-12)
    for nodes in ("equiangular", "legendre-gauss"):
        w = scores.area_weights(sphere(np.zeros((12, 24)), nodes=nodes))
        assert w.dims == ("lat", "lon") and w.mean().item() == pytest.approx(1.0, rel=1e-12)
        band = w.values[:, 0]
        np.testing.assert_allclose(band, band[::-1], rtol=1e-12)  # symmetric about the equator
        assert np.all(np.diff(band[:6]) > 0)  # growing from the south pole to the equator
        np.testing.assert_allclose(w.values, band[:, None] * np.ones(24))  # constant along longitude
    np.testing.assert_array_equal(scores.area_weights(box(np.zeros((2, 4)))).values, np.ones((2, 4)))


def test_rmse_and_mae_hand_worked_on_a_3x4_sphere_take_the_root_after_the_time_mean():
    # weights 0.5, 2, 0.5 by latitude row; 12 points
    error = np.zeros((2, 3, 4))
    error[0, 1, :] = 1.0  # time 0: error 1 on the equator row -> spatial MSE 2*1*4/12 = 2/3
    error[1, 0, :] = 3.0  # time 1: error 3 on the south-pole row -> spatial MSE 0.5*9*4/12 = 3/2
    times = pd.date_range("2021-03-01", periods=2, freq="D")
    truth = sphere(np.ones((2, 3, 4)), times=times)
    forecast = truth + error
    result = scores.rmse(forecast, truth)
    assert result.dims == () and result.item() == pytest.approx(math.sqrt((2 / 3 + 3 / 2) / 2), rel=1e-12)
    assert result.item() != pytest.approx((math.sqrt(2 / 3) + math.sqrt(3 / 2)) / 2, rel=1e-3)  # not sqrt first
    per_time = scores.rmse(forecast, truth, over=())
    np.testing.assert_allclose(per_time.values, [math.sqrt(2 / 3), math.sqrt(3 / 2)], rtol=1e-12)
    # MAE: time 0: 2*1*4/12 = 2/3; time 1: 0.5*3*4/12 = 1/2
    assert scores.mae(forecast, truth).item() == pytest.approx((2 / 3 + 1 / 2) / 2, rel=1e-12)
    assert result.attrs["units"] == "m" and result.name == "z"


def test_rmse_hand_worked_on_a_2x4_periodic_box():
    truth = box(np.zeros((2, 4)))
    forecast = box([[1.0, -1.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]])
    assert scores.rmse(forecast, truth).item() == pytest.approx(math.sqrt((1 + 1 + 4) / 8), rel=1e-12)
    assert scores.mae(forecast, truth).item() == pytest.approx(4 / 8, rel=1e-12)


def lead_time_case(rng, *, n_times=20, n_init=4, leads_h=(6, 12, 18)):
    """Truth (time, level, lat, lon) every 6 h and a forecast (time, lead_time, level, lat, lon) read from it."""
    times = pd.date_range("2020-01-01", periods=n_times, freq="6h")
    truth = sphere(rng.normal(size=(2, n_times, 5, 8)), times=times, extra=[("level", [500, 850])])
    truth = truth.transpose("time", "level", "lat", "lon")
    lead = pd.to_timedelta(list(leads_h), unit="h")
    init = times[:n_init]
    valid = init.values[:, None] + lead.values[None, :]
    values = np.stack([[truth.sel(time=v).values for v in row] for row in valid])
    forecast = xr.DataArray(values, dims=("time", "lead_time", "level", "lat", "lon"), name="z", attrs=truth.attrs,
                            coords={"time": init, "lead_time": lead, "valid_time": (("time", "lead_time"), valid),
                                    "level": truth.level, "lat": truth.lat, "lon": truth.lon})
    return forecast, truth


def test_align_truth_reads_the_truth_at_each_valid_time():
    forecast, truth = lead_time_case(np.random.default_rng(RNG_SEED))
    aligned = scores.align_truth(forecast, truth)
    assert aligned.dims == ("time", "lead_time", "level", "lat", "lon")
    np.testing.assert_array_equal(aligned.values, forecast.values)
    np.testing.assert_array_equal(aligned["valid_time"].values, forecast["valid_time"].values)
    np.testing.assert_array_equal(aligned["time"].values, forecast["time"].values)
    # without a lead time the truth is cut to the forecast's times
    short = truth.isel(time=slice(3, 7))
    np.testing.assert_array_equal(scores.align_truth(short, truth).values, short.values)


def test_scores_keep_lead_time_and_level_and_average_the_initial_times():
    forecast, truth = lead_time_case(np.random.default_rng(RNG_SEED))
    offsets = xr.DataArray([[0.5, 2.0]] * 3, dims=("lead_time", "level"))  # by lead time and level
    offsets = offsets * xr.DataArray([1.0, 2.0, 3.0], dims="lead_time")
    result = scores.rmse(forecast + offsets, truth)
    assert result.dims == ("lead_time", "level")
    np.testing.assert_allclose(result.values, offsets.values, rtol=1e-12)
    np.testing.assert_array_equal(result["lead_time"].values, forecast["lead_time"].values)
    assert scores.mae(forecast + offsets, truth).dims == ("lead_time", "level")
    ds = scores.rmse(xr.Dataset({"z": forecast, "t": forecast * 0 + 1.0}), xr.Dataset({"z": truth, "t": truth * 0}))
    assert isinstance(ds, xr.Dataset) and set(ds.data_vars) == {"z", "t"}
    np.testing.assert_allclose(ds["t"].values, 1.0)


def test_float_times_align_within_the_float_tolerance():
    rng = np.random.default_rng(RNG_SEED)
    hours = np.arange(10) * 0.1  # 0.1 is not exact in binary: 0.1 + 0.2 != 0.3 needs the tolerance
    truth = sphere(rng.normal(size=(10, 3, 8)), times=hours)
    lead = np.array([0.1, 0.2])
    forecast = xr.DataArray(np.zeros((3, 2, 3, 8)), dims=("time", "lead_time", "lat", "lon"), name="z",
                            coords={"time": hours[:3], "lead_time": lead, "lat": truth.lat, "lon": truth.lon,
                                    "valid_time": (("time", "lead_time"), hours[:3, None] + lead[None, :])})
    aligned = scores.align_truth(forecast, truth)
    np.testing.assert_array_equal(aligned.isel(lead_time=1).values, truth.isel(time=slice(2, 5)).values)
    with pytest.raises(DataError, match=r"truth has no time 0\.15 \(valid time of the forecast at time=0, lead_time=0\.1") as err:
        scores.align_truth(forecast.assign_coords(valid_time=forecast.valid_time + 0.05), truth)
    one_line(err)


def test_cftime_valid_times_and_the_default_average_over_sample_and_time():
    import cftime

    from sciml.data import times as timing

    rng = np.random.default_rng(RNG_SEED)
    dates = [cftime.Datetime360Day(2000, 2, 29, 0) + pd.Timedelta(hours=6 * i) for i in range(8)]
    truth = sphere(rng.normal(size=(2, 8, 3, 8)), times=dates, extra=[("sample", [0, 1])])
    lead = timing.lead_time_coord(pd.Timedelta(hours=6), 2)
    valid = timing.valid_time_coord(truth["time"].isel(time=slice(0, 3)), lead, source="test")
    values = np.stack([truth.isel(time=slice(i + 1, i + 3)).values for i in range(3)], axis=1)  # (sample, time, lead, ...)
    forecast = xr.DataArray(values + 1.0, dims=("sample", "time", "lead_time", "lat", "lon"), name="z",
                            coords={"sample": [0, 1], "time": truth.time[:3], "lead_time": lead, "valid_time": valid,
                                    "lat": truth.lat, "lon": truth.lon})
    result = scores.rmse(forecast, truth)  # 30 February exists in the 360_day calendar
    assert result.dims == ("lead_time",)
    np.testing.assert_allclose(result.values, 1.0, rtol=1e-12)
    assert scores.rmse(forecast, truth, over="time").dims == ("sample", "lead_time")


def test_named_box_dims_and_datasets_of_ensembles():
    rng = np.random.default_rng(RNG_SEED)
    truth = xr.DataArray(rng.normal(size=(4, 6)), dims=("row", "col"), name="h",
                         coords={"row": np.arange(4) * 0.5, "col": np.arange(6) * 0.5})
    assert scores.rmse(truth + 2.0, truth, dims=("row", "col")).item() == pytest.approx(2.0, rel=1e-12)
    with pytest.raises(DataError, match="variable 'h'") as err:
        scores.rmse(truth, truth)  # no spatial dims sciml knows without dims=
    one_line(err)
    ens = xr.Dataset({"a": truth.expand_dims(member=3) + xr.DataArray([-1.0, 0.0, 1.0], dims="member"),
                      "b": truth.expand_dims(member=3)})
    crps = scores.crps(ens, xr.Dataset({"a": truth, "b": truth}), dims=("row", "col"))
    assert isinstance(crps, xr.Dataset) and crps["b"].item() == pytest.approx(0.0, abs=1e-14)
    # members -1, 0, 1 around the truth: E|X - y| = 2/3, sum_{i != j} |x_i - x_j| = 8, fair: 2/3 - 8/12 = 0
    assert crps["a"].item() == pytest.approx(0.0, abs=1e-14)


# ------------------------------------------------------------------------------------------- climatology, ACC
def test_acc_is_one_for_a_perfect_forecast_minus_one_for_the_negated_anomaly_and_scale_free():
    rng = np.random.default_rng(RNG_SEED)
    times = pd.date_range("2019-01-01", periods=8, freq="6h")
    clim_field = sphere(rng.normal(size=(6, 12)))
    truth = clim_field + sphere(rng.normal(size=(8, 6, 12)), times=times)
    assert scores.acc(truth, truth, clim_field).item() == pytest.approx(1.0, abs=1e-12)
    assert "units" not in scores.acc(truth, truth, clim_field).attrs  # a correlation has no units
    assert scores.acc(2 * clim_field - truth, truth, clim_field).item() == pytest.approx(-1.0, abs=1e-12)
    assert scores.acc(clim_field + 3.0 * (truth - clim_field), truth, clim_field).item() == pytest.approx(1.0, abs=1e-12)
    forecast = truth + sphere(rng.normal(size=(8, 6, 12)), times=times)
    base = scores.acc(forecast, truth, clim_field)
    assert -1 < base.item() < 1
    scaled = scores.acc(clim_field + 0.25 * (forecast - clim_field), truth, clim_field)
    assert scaled.item() == pytest.approx(base.item(), rel=1e-12)


def test_acc_hand_worked_on_a_2x4_box():
    # f' = (1, 0, 0, 0 | 0, 0, 0, 0), o' = (1, 1, 0, 0 | 0, 0, 0, 0): <f'o'> = 1/8, <f'^2> = 1/8, <o'^2> = 2/8
    clim = box(np.full((2, 4), 5.0))
    forecast = clim + box([[1.0, 0, 0, 0], [0, 0, 0, 0]])
    truth = clim + box([[1.0, 1.0, 0, 0], [0, 0, 0, 0]])
    assert scores.acc(forecast, truth, clim).item() == pytest.approx((1 / 8) / math.sqrt(1 / 8 * 2 / 8), rel=1e-12)


def test_climatology_by_calendar_keys_is_read_at_the_valid_times():
    rng = np.random.default_rng(RNG_SEED)
    forecast, truth = lead_time_case(rng, n_times=28)  # 7 days at 00, 06, 12, 18 UTC
    clim = scores.climatology(truth, by="hour")
    assert clim.dims == ("hour", "level", "lat", "lon")
    np.testing.assert_array_equal(clim["hour"].values, [0, 6, 12, 18])
    np.testing.assert_allclose(clim.sel(hour=6).values, truth.isel(time=slice(1, None, 4)).mean("time").values)
    both = scores.climatology(truth)  # auto: (dayofyear, hour) for dates, WB2's keys
    assert both.dims[:2] == ("dayofyear", "hour") and both.sizes["dayofyear"] == 7
    assert scores.acc(forecast, truth, both).dims == ("lead_time", "level")
    # a forecast equal to the truth: ACC 1 whatever the climatology
    np.testing.assert_allclose(scores.acc(forecast, truth, clim).values, 1.0, atol=1e-12)


def test_climatology_of_float_and_cftime_times():
    import cftime

    rng = np.random.default_rng(RNG_SEED)
    data = sphere(rng.normal(size=(2, 5, 3, 8)), times=np.arange(5.0), extra=[("sample", [0, 1])])
    mean = scores.climatology(data)  # float time: the mean over sample and time
    assert mean.dims == ("lat", "lon")
    np.testing.assert_allclose(mean.values, data.values.mean(axis=(0, 1)))
    with pytest.raises(DataError, match="float times") as err:
        scores.climatology(data, by="dayofyear")
    one_line(err)
    dates = [cftime.DatetimeNoLeap(2001, 1, 1 + d // 2, 12 * (d % 2)) for d in range(6)]
    noleap = sphere(rng.normal(size=(6, 3, 8)), times=dates)
    by_day = scores.climatology(noleap, by="dayofyear")
    np.testing.assert_array_equal(by_day["dayofyear"].values, [1, 2, 3])
    np.testing.assert_allclose(by_day.sel(dayofyear=2).values, noleap.isel(time=[2, 3]).mean("time").values)


def test_acc_refuses_a_climatology_without_the_valid_calendar_day():
    forecast, truth = lead_time_case(np.random.default_rng(RNG_SEED), n_times=28)
    clim = scores.climatology(truth.isel(time=slice(0, 4)))  # day 1 only; forecasts verify on day 1 and 2
    with pytest.raises(DataError, match=r"variable 'z'.*no value for valid time 2020-01-02T00:00:00.*dayofyear=2") as err:
        scores.acc(forecast, truth, clim)
    one_line(err)


# ------------------------------------------------------------------------------------------- ensembles
def ensemble(values, *, grid_shape=(3, 4), name="z"):
    """``values (M, ..., *grid_shape)`` as a DataArray with a leading ``member`` dim on a sphere."""
    values = np.asarray(values, dtype=np.float64)
    extra = [(f"case{i}", np.arange(n)) for i, n in enumerate(values.shape[1:-2])]
    return sphere(values, extra=[("member", np.arange(values.shape[0])), *extra], name=name)


def test_crps_hand_worked_fair_and_plain():
    # members 0, 1, 3 and truth 2 at every point: E|X - y| = 4/3, sum_{i != j} |x_i - x_j| = 12
    members = np.stack([np.full((3, 4), v) for v in (0.0, 1.0, 3.0)])
    ens, truth = ensemble(members), sphere(np.full((3, 4), 2.0))
    assert scores.crps(ens, truth).item() == pytest.approx(4 / 3 - 12 / (2 * 3 * 2), rel=1e-12)  # 1/3
    # plain: the CRPS of the members' empirical CDF, int (F - H(x - 2))^2 dx = 1/9 + 4/9 + 1/9
    assert scores.crps(ens, truth, fair=False).item() == pytest.approx(6 / 9, rel=1e-12)


def test_one_member_crps_is_the_mae_and_a_point_mass_at_the_truth_scores_zero():
    rng = np.random.default_rng(RNG_SEED)
    truth = sphere(rng.normal(size=(4, 6, 12)), times=np.arange(4.0))
    member = truth + sphere(rng.normal(size=(4, 6, 12)), times=np.arange(4.0))
    single = member.expand_dims(member=1)
    mae = scores.mae(member, truth).item()
    assert scores.crps(single, truth).item() == pytest.approx(mae, rel=1e-12)
    assert scores.crps(single, truth, fair=False).item() == pytest.approx(mae, rel=1e-12)
    point_mass = truth.expand_dims(member=5)
    assert scores.crps(point_mass, truth).item() == pytest.approx(0.0, abs=1e-14)
    assert scores.crps(point_mass, truth, fair=False).item() == pytest.approx(0.0, abs=1e-14)


def test_fair_crps_does_not_depend_on_the_ensemble_size_and_the_plain_one_does():
    # y, x_i iid N(0, 1): CRPS(N(0, 1), y) averages to E|X - Y| - E|X - X'| / 2 = 2/sqrt(pi) - 1/sqrt(pi)
    rng = np.random.default_rng(RNG_SEED)
    cases = 1000  # x 12 points: 12000 draws; the standard error of the M = 2 mean is ~0.006
    truth = sphere(rng.normal(size=(cases, 3, 4)), times=np.arange(float(cases)))
    expected = 1 / math.sqrt(math.pi)
    fair, plain = {}, {}
    for m in (2, 20):
        ens = sphere(rng.normal(size=(m, cases, 3, 4)), times=np.arange(float(cases)), extra=[("member", np.arange(m))])
        fair[m] = scores.crps(ens, truth).item()
        plain[m] = scores.crps(ens, truth, fair=False).item()
        # plain: E|X - y| - (M - 1)/(2M) E|X - X'| = (2 - (M - 1)/M) / sqrt(pi)
        assert plain[m] == pytest.approx((2 - (m - 1) / m) / math.sqrt(math.pi), abs=0.03)
    assert fair[2] == pytest.approx(expected, abs=0.03) and fair[20] == pytest.approx(expected, abs=0.03)
    assert abs(fair[2] - fair[20]) < 0.03
    assert plain[2] - plain[20] > 0.2  # expected (1.5 - 1.05) / sqrt(pi) = 0.254


def test_spread_skill_is_one_for_a_calibrated_ensemble_and_below_one_when_under_dispersive():
    rng = np.random.default_rng(RNG_SEED)
    cases, m = 1500, 5  # 18000 points: the ratio's relative standard error is ~0.006
    signal = rng.normal(size=(cases, 3, 4))
    truth = sphere(signal + rng.normal(size=(cases, 3, 4)), times=np.arange(float(cases)))
    members = signal + rng.normal(size=(m, cases, 3, 4))
    ens = sphere(members, times=np.arange(float(cases)), extra=[("member", np.arange(m))])
    ratio = scores.spread_skill(ens, truth)
    assert ratio.item() == pytest.approx(1.0, abs=0.03) and ratio.attrs["ensemble_size"] == m
    assert "units" not in ratio.attrs  # a ratio: the fields' metres are not its units
    raw = scores.spread_skill(ens, truth, corrected=False).item()
    assert raw == pytest.approx(ratio.item() * math.sqrt(m / (m + 1)), rel=1e-12)
    narrow = sphere(signal + 0.5 * (members - signal), times=np.arange(float(cases)), extra=[("member", np.arange(m))])
    # spread 0.5, ensemble-mean error variance 1 + 0.25 / M
    expected = 0.5 * math.sqrt((m + 1) / m / (1 + 0.25 / m))
    assert scores.spread_skill(narrow, truth).item() == pytest.approx(expected, abs=0.02) and expected < 0.54


def test_rank_histogram_is_flat_when_calibrated_and_u_shaped_when_under_dispersive():
    rng = np.random.default_rng(RNG_SEED)
    cases, m = 1000, 9  # 12000 ranks in 10 bins
    truth = sphere(rng.normal(size=(cases, 3, 4)), times=np.arange(float(cases)))
    members = rng.normal(size=(m, cases, 3, 4))
    counts = scores.rank_histogram(sphere(members, times=np.arange(float(cases)), extra=[("member", np.arange(m))]),
                                   truth)
    assert counts.dims == ("rank",) and counts.sum().item() == cases * 12
    np.testing.assert_array_equal(counts["rank"].values, np.arange(m + 1))
    expected = cases * 12 / (m + 1)
    chi2 = float((((counts - expected) ** 2) / expected).sum())
    assert chi2 < 27.9  # the 0.999 quantile of chi-square with 9 degrees of freedom
    narrow = scores.rank_histogram(
        sphere(0.3 * members, times=np.arange(float(cases)), extra=[("member", np.arange(m))]), truth).values
    assert narrow[0] > 3 * narrow[m // 2] and narrow[-1] > 3 * narrow[m // 2]


def test_rank_histogram_breaks_ties_at_random_with_a_seed():
    truth = sphere(np.zeros((200, 3, 4)), times=np.arange(200.0))
    tied = truth.expand_dims(member=4)  # every member equals the truth: ranks 0..4 equally likely
    counts = scores.rank_histogram(tied, truth, seed=3)
    assert counts.sum().item() == 2400 and counts.min().item() > 400
    np.testing.assert_array_equal(scores.rank_histogram(tied, truth, seed=3).values, counts.values)


# ------------------------------------------------------------------------------------------- spectra
@pytest.mark.parametrize("nodes, shape", [("equiangular", (17, 32)), ("legendre-gauss", (12, 24))])
def test_sphere_spectrum_satisfies_parseval_and_places_a_harmonic_at_its_degree(nodes, shape):
    import torch
    import torch_harmonics as th

    nlat, nlon = shape
    lmax = min(nlat if nodes == "legendre-gauss" else (nlat + 1) // 2, (nlon + 1) // 2)
    generator = torch.Generator().manual_seed(RNG_SEED)
    coeffs = torch.randn(3, lmax, lmax, 2, generator=generator, dtype=torch.float64)
    coeffs = torch.view_as_complex(coeffs) * torch.tril(torch.ones(lmax, lmax, dtype=torch.float64))  # m <= l
    isht = th.InverseRealSHT(nlat, nlon, lmax=lmax, mmax=lmax, grid=nodes, norm="ortho").double()
    field = sphere(isht(coeffs).numpy(), nodes=nodes, extra=[("level", [1, 2, 3])])
    spectrum = scores.energy_spectrum(field)
    assert spectrum.dims == ("level", "degree") and spectrum.sizes["degree"] == lmax
    mean_square = (field**2 * scores.area_weights(field)).mean(("lat", "lon"))
    np.testing.assert_allclose(spectrum.sum("degree").values, mean_square.values, rtol=1e-10)
    # sin(lat) is proportional to Y_1^0: all of its power at degree 1, and <sin^2> = 1/3
    lat = np.radians(field["lat"].values)
    single = scores.energy_spectrum(sphere(np.sin(lat)[:, None] * np.ones(nlon), nodes=nodes))
    np.testing.assert_allclose(single.values, np.eye(lmax)[1] / 3, atol=1e-12)


def test_box_spectrum_satisfies_parseval_and_places_a_cosine_in_its_shell():
    rng = np.random.default_rng(RNG_SEED)
    field = box(rng.normal(size=(2, 16, 24)), lengths=(1.0, 1.5), extra=[("time", [0.0, 1.0])])
    spectrum = scores.energy_spectrum(field)
    assert spectrum.dims == ("time", "wavenumber")
    np.testing.assert_allclose(spectrum.sum("wavenumber").values, (field**2).mean(("y", "x")).values, rtol=1e-12)
    x = np.arange(32) / 32 * 2.0
    wave = scores.energy_spectrum(box(np.cos(2 * np.pi * 3 * x / 2.0) * np.ones((8, 1)), lengths=(2.0, 2.0)))
    k = wave["wavenumber"].values
    assert k[1] == pytest.approx(np.pi)  # dk = 2 pi / L
    np.testing.assert_allclose(wave.values, 0.5 * (np.arange(k.size) == 3), atol=1e-12)
    line = box(rng.normal(size=10))  # 1-D box
    assert scores.energy_spectrum(line).sum().item() == pytest.approx(float((line.values**2).mean()), rel=1e-12)


def test_spectrum_ratio_is_the_squared_amplitude_ratio():
    rng = np.random.default_rng(RNG_SEED)
    truth = sphere(rng.normal(size=(3, 9, 16)), times=np.arange(3.0))
    ratio = scores.spectrum_ratio(2.0 * truth, truth)
    assert ratio.dims == ("degree",)
    np.testing.assert_allclose(ratio.values, 4.0, rtol=1e-12)


# ------------------------------------------------------------------------------------------- bad input
def test_bad_inputs_give_one_line_errors_naming_the_variable():
    rng = np.random.default_rng(RNG_SEED)
    truth = sphere(rng.normal(size=(2, 3, 8)), times=np.arange(2.0))
    shifted = truth.assign_coords(lon=truth.lon + 10.0)  # another global grid, other coordinates
    with pytest.raises(DataError, match=r"variable 'z'.*coordinate 'lon' differs") as err:
        scores.rmse(shifted, truth)
    one_line(err)
    finer = sphere(rng.normal(size=(2, 5, 8)), times=np.arange(2.0))
    with pytest.raises(DataError, match=r"variable 'z'.*dim 'lat' has 5 values in the forecast and 3") as err:
        scores.mae(finer, truth)
    one_line(err)
    with pytest.raises(DataError, match=r"variable 'z'.*no member dim 'member'") as err:
        scores.crps(truth, truth)
    one_line(err)
    with pytest.raises(DataError, match=r"variable 'z'.*at least 2") as err:
        scores.spread_skill(truth.expand_dims(member=1), truth)
    one_line(err)
    bad = truth.copy(data=truth.values.copy())
    bad[1, 2, 5] = np.nan
    with pytest.raises(DataError, match=r"variable 'z' has NaN/Inf values \(first at time=1, lat=2, lon=5\)") as err:
        scores.rmse(truth, bad)
    one_line(err)
    with pytest.raises(DataError, match=r"variable 'z' has NaN/Inf") as err:
        scores.rank_histogram(bad.expand_dims(member=3), truth)
    one_line(err)
    with pytest.raises(DataError, match=r"variable 'z'.*truth has dims \['level'\]") as err:
        scores.rmse(truth, truth.expand_dims(level=[1, 2]))
    one_line(err)
    with pytest.raises(DataError, match="bounded") as err:
        scores.energy_spectrum(box(np.zeros((4, 4))).assign_coords(
            x=("x", np.linspace(0, 1, 4), {"periodic": "false"}), y=("y", np.linspace(0, 1, 4), {"periodic": "false"})))
    one_line(err)
    with pytest.raises(DataError, match=r"variable 'z'.*lon") as err:
        scores.rmse(truth.isel(lon=slice(0, 5)), truth.isel(lon=slice(0, 5)))  # not a global grid
    one_line(err)


def test_missing_valid_times_and_lead_times_without_valid_times_are_refused():
    forecast, truth = lead_time_case(np.random.default_rng(RNG_SEED))
    with pytest.raises(DataError, match=r"variable 'z': the truth has no time 2020-01-01T18:00:00 \(valid time of the "
                                        r"forecast at time=2020-01-01T00:00:00, lead_time=18 h") as err:
        scores.rmse(forecast, truth.isel(time=[0, 1, 2, 4, 5, 6, 7, 8, 9]))
    one_line(err)
    with pytest.raises(DataError, match="lead_time but no valid_time") as err:
        scores.crps(forecast.drop_vars("valid_time").expand_dims(member=2), truth)
    one_line(err)
    with pytest.raises(DataError, match="cannot average over") as err:
        scores.rmse(forecast, truth, over="member")
    one_line(err)
