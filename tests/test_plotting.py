"""Every figure reads on its own: titles, axes and colour bars labelled with names and units, one colour
scale per quantity, a symmetric scale for the signed error, integer epochs, distinct tick labels."""

import numpy as np
import pytest

from sciml.data.cf import trajectory_dataset
from sciml.grids import Grid
from sciml.plotting import plot_error_vs_resolution, plot_fields, plot_history

MINUS = "\N{MINUS SIGN}"


def _drawn(fig):
    fig.draw_without_rendering()  # lays out and fixes ticks, as saving does
    return fig


def _colour_bars(fig) -> dict:
    """Colour bar label -> its axes."""
    return {ax.get_xlabel(): ax for ax in fig.axes if hasattr(ax, "_colorbar")}


def _panels(fig):
    return [ax for ax in fig.axes if not hasattr(ax, "_colorbar")]


def _box(n_rows=3, r=16):
    g = Grid.box(r, r).coords()
    x, y = np.meshgrid(g["x"], g["y"])
    w = np.stack([[np.sin(2 * np.pi * (x + k / 5 + t / 9)) * np.cos(2 * np.pi * y) for t in range(2)] for k in range(n_rows)])
    ds = trajectory_dataset({"vorticity": w}, times=[0.0, 2.0], coords=g)
    return ds["vorticity"].assign_coords(sample=ds["sample"] + 256)


def test_box_panels_share_one_scale_per_quantity_and_label_everything():
    w = _box()
    truth = w.isel(time=1)
    prediction = truth * 1.3 + 0.01
    fig = _drawn(plot_fields(truth, prediction, inputs=w.isel(time=0), title="box"))
    axes = np.array(_panels(fig)).reshape(3, 4)
    assert [ax.get_title() for ax in axes[0]] == ["input", "truth", "prediction", f"error: prediction {MINUS} truth"]
    assert [ax.get_xlabel() for ax in axes[-1]] == ["x [1]"] * 4 and axes[1, 0].get_ylabel() == "y [1]"
    rows = ["\n".join(t.get_text() for t in ax.texts) for ax in axes[:, 0]]
    assert rows == ["sample 256\ntime 2", "sample 257\ntime 2", "sample 258\ntime 2"]
    limits = [[ax.collections[0].get_clim() for ax in row] for row in axes]
    assert all(row[0] == row[1] == row[2] == limits[0][0] for row in limits)  # input, truth, prediction: one scale
    assert max(abs(v) for v in limits[0][0]) == pytest.approx(1.3 * float(np.abs(truth).max()) + 0.01, rel=1e-3)
    lo, hi = limits[0][3]
    assert lo == -hi and hi == pytest.approx(float(np.abs(prediction - truth).max()))
    assert axes[0, 3].collections[0].get_cmap().name == "RdBu_r"
    bars = _colour_bars(fig)
    assert set(bars) == {"vertical component of vorticity, curl(u) . e_z [1]", f"vorticity error\nprediction {MINUS} truth [1]"}
    field_bar = bars["vertical component of vorticity, curl(u) . e_z [1]"].get_position()
    # one bar under all three field columns, not under one of them
    assert field_bar.x0 < axes[0, 0].get_position().x1 and field_bar.x1 > axes[0, 2].get_position().x0
    assert fig.get_suptitle() == "box"


def test_a_different_input_quantity_gets_its_own_scale_and_a_positive_field_a_sequential_map():
    g = Grid.bounded(17, 17).coords()
    x, y = np.meshgrid(g["x"], g["y"])
    p = np.stack([x * (1 - x) * y * (1 - y) * (1 + k) for k in range(2)])
    ds = trajectory_dataset({"pressure": p, "a": 3 + 9 * (x > 0.5)[None].repeat(2, 0)}, times=None, coords=g, periodic=False)
    fig = _drawn(plot_fields(ds["pressure"], ds["pressure"] * 1.1, inputs=ds["a"]))
    axes = np.array(_panels(fig)).reshape(2, 4)
    assert len(_colour_bars(fig)) == 3 and any(label.startswith("diffusion coefficient") for label in _colour_bars(fig))
    assert axes[0, 0].collections[0].get_clim() == (3.0, 12.0)
    assert axes[0, 1].collections[0].get_clim() == axes[1, 2].collections[0].get_clim()
    assert axes[0, 1].collections[0].get_cmap().name == "viridis"
    assert axes[0, 3].collections[0].get_cmap().name == "RdBu_r"


def test_sphere_panels_have_degrees_and_calendar_time_rows():
    grid = Grid.latlon(9, 16)
    c = grid.coords()
    lon, lat = np.meshgrid(c["lon"], c["lat"])
    h = 1e4 + 100 * np.cos(np.radians(lat)) * np.cos(np.radians(lon))
    ds = trajectory_dataset({"height": h[None, None]}, times=[0.0], coords=c)
    ds = ds.assign_coords(time=np.array(["2020-01-01T06:00"], dtype="datetime64[ns]"))
    truth = ds["height"].isel(sample=0, time=0)  # one field: one row
    fig = _drawn(plot_fields(truth, truth + 1.0))
    axes = _panels(fig)
    assert len(axes) == 3
    assert axes[0].get_xlabel() == "longitude [°E]" and axes[0].get_ylabel() == "latitude [°N]"
    assert axes[0].texts[0].get_text() == "sample 0\ntime 2020-01-01T06:00"
    assert "fluid layer thickness [m]" in _colour_bars(fig)
    assert any(label.endswith("[m]") and "error" in label for label in _colour_bars(fig))
    assert {t.get_text() for t in axes[0].get_xticklabels()} >= {"0", "90", "180", "270"}


def test_training_curve_has_integer_epochs_markers_and_every_logged_loss():
    history = [{"epoch": e, "train_loss": 0.9 - 0.3 * e, "val_loss": 0.8 - 0.2 * e, "train_mse": 0.3 - 0.1 * e,
                "lr": 1e-3, "elapsed_s": 1.0 * e} for e in range(2)]
    fig = _drawn(plot_history(history, loss="relative L2 loss"))
    ax = fig.axes[0]
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks == [0, 1]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[:3] == ["training loss", "validation loss", "training mse"]
    assert all(line.get_marker() == "o" for line in ax.get_lines()[:3])
    assert ax.get_yscale() == "linear" and ax.get_ylabel() == "relative L2 loss" and ax.get_xlabel() == "epoch"
    long = [{"epoch": e, "train_loss": 10.0 ** (-e / 10)} for e in range(40)]
    ax = _drawn(plot_history(long)).axes[0]
    assert ax.get_yscale() == "log" and ax.get_lines()[0].get_marker() in ("None", None, "")


def test_error_vs_resolution_labels_near_equal_values_distinctly_and_draws_the_baseline():
    curves = {"vorticity": ([16, 32, 64], [0.891651, 0.891652, 0.891651])}
    fig = _drawn(plot_error_vs_resolution(curves, baselines={"persistence": ([64], [0.95])}, train_resolution=64))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels() if ax.get_ylim()[0] <= t.get_position()[1] <= ax.get_ylim()[1]]
    assert len(labels) >= 3 and len(set(labels)) == len(labels) and all(labels)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["16", "32", "64"]
    assert "persistence" in [line.get_label() for line in ax.get_lines()]
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    spread = {"a": ([32, 64], [1e-2, 1e-5])}
    assert _drawn(plot_error_vs_resolution(spread)).axes[0].get_yscale() == "log"


def _timing(median):
    return {"seconds_per_sample": {"median": median, "min": 0.9 * median, "max": 1.2 * median}}


def test_cost_error_figure_has_units_and_resolution_labels():
    from sciml.bench.report import _cost_error_figure

    solver = [{"resolution": r, "seconds_per_sample": s, "rel_l2": e, "on_pareto_front": True, "timing": _timing(s)}
              for r, s, e in ((8, 1e-4, 1e-1), (16, 3e-4, 1e-2), (32, 1e-3, 1e-4))]
    surrogate = [{"resolution": r, "seconds_per_sample": s, "rel_l2": 2e-2, "timing": _timing(s)} for r, s in ((16, 2e-4), (32, 4e-4))]
    matched = {"surrogate_rel_l2": 2e-2, "surrogate_seconds_per_sample": 2e-4, "solver_seconds_per_sample": 2.5e-4,
               "speedup": 1.25, "extrapolated_solver_seconds_per_sample": None}
    results = {"solver_curve": solver, "surrogate_curve": surrogate, "matched_accuracy": matched, "speedup_spread": None,
               "reference": {"resolution": 64, "dtype": "float64"}, "sizes": {"n_test": 4}, "problem": "ns2d",
               "device": "cpu", "machine": {"device_name": "test"}}
    ax = _drawn(_cost_error_figure(results)).axes[0]
    assert "relative L2" in ax.get_xlabel() and "seconds per sample" in ax.get_ylabel()
    assert {t.get_text() for t in ax.texts} == {"n=8", "n=16", "n=32"}
    assert ax.get_title()


def test_quickstart_report_names_the_reference_grid_instead_of_nan():
    from sciml.quickstart import QuickstartConfig, _report

    resolutions = ["16", "32", "64"]
    m = {"rel_l2_by_resolution": dict.fromkeys(resolutions, 0.02),
         "solver_rel_l2_vs_finest_by_resolution": {"16": 1e-5, "32": 1e-6},
         "surrogate_seconds_per_sample_by_resolution": dict.fromkeys(resolutions, 1e-3),
         "solver_seconds_per_sample_by_resolution": dict.fromkeys(resolutions, 2e-3),
         "rel_l2_train_res": 0.02, "rel_l2_2x_res": 0.02, "persistence_rel_l2": 0.5,
         "surrogate_seconds_per_sample": 1e-3, "solver_seconds_per_sample": 2e-3, "epochs": 2, "train_seconds": 1.0,
         "n_train": 9, "device": "cpu", "device_name": "test", "torch_threads": 1, "data_generation_seconds": 1.0,
         "wall_seconds": 3.0, "command": "test", "torch_version": "x", "val_loss_trend_per_epoch": None,
         "stop_reason": "epochs"}
    text = _report(m, QuickstartConfig(resolution=16, eval_resolutions=(16, 32, 64)))
    assert "nan" not in text.lower()
    assert "| 64 | 0.0200 | — (reference) |" in text


def test_scorecard_gives_each_unit_its_own_row_so_no_variable_is_flattened():
    import numpy as np
    import xarray as xr

    from sciml.plotting import plot_scorecard

    lead = xr.DataArray(np.arange(1, 5) * 3600e9, dims="lead_time").astype("timedelta64[ns]")
    mixed = xr.Dataset({"height": ("lead_time", [40.0, 80, 120, 160], {"units": "m"}),
                        "wind": ("lead_time", [1.0, 2, 3, 4], {"units": "m s-1"})}, coords={"lead_time": lead})
    fig = plot_scorecard({"rmse": mixed, "crps": mixed * 0.5})
    axes = fig.get_axes()
    assert len(axes) == 4  # (variable, metric)
    assert [ax.get_ylabel() for ax in axes] == ["height [m]", "height [m]", "wind [m s-1]", "wind [m s-1]"]
    assert axes[2].get_ylim()[1] < 10  # the wind's own scale, not the height's
    same = mixed.assign(wind=mixed["wind"].assign_attrs(units="m"))
    assert len(plot_scorecard({"rmse": same}).get_axes()) == 1  # one unit: one shared panel per metric
