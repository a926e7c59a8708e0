"""Figures people look at instead of reading numbers. matplotlib is imported lazily and only its
object-oriented ``Figure`` API is used: no pyplot state, no backend switching, no global side effects.

Every figure reads on its own: a title, axes labelled with names and units, colour bars labelled with
the quantity's ``long_name`` and ``units`` (CF attributes of the xarray data), one colour scale per
quantity.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["plot_fields", "plot_error_vs_resolution", "plot_error_by_lead", "plot_spectra", "plot_history", "plot_scorecard",
           "save_figure"]

_SPACE = (("lat", "lon"), ("y", "x"))
_UNITS = {"degrees_north": "°N", "degree_north": "°N", "degrees_east": "°E", "degree_east": "°E",
          "degrees": "°", "degree": "°"}
_NAMES = {"lat": "latitude", "lon": "longitude"}
_DEGREES = {"lat": "degrees_north", "lon": "degrees_east"}
_MINUS = "\N{MINUS SIGN}"


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Save as PNG at 120 dpi, atomically (:mod:`sciml._atomic`)."""
    from ._atomic import write_bytes

    return write_bytes(path, lambda file: fig.savefig(file, format="png", dpi=120, bbox_inches="tight"))


def _units(attrs: Mapping) -> str:
    units = str(attrs.get("units", "")).strip()
    return _UNITS.get(units, units)


def _with_units(name: str, attrs: Mapping) -> str:
    units = _units(attrs)
    return f"{name} [{units}]" if units else name


def _value_text(value, attrs: Mapping) -> str:
    """A coordinate value for a label: ``2``, ``2.5 h``, ``2000-01-01T06:00``."""
    value = np.asarray(value)
    if value.dtype.kind == "M":
        return np.datetime_as_string(value, unit="m")
    value = value.item()
    if hasattr(value, "strftime"):  # cftime
        return value.strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, float):
        value = f"{value:g}"
    units = _units(attrs)
    return f"{value} {units}" if units and units != "1" else str(value)


def _row_label(row: xr.DataArray, dim: str, index: int) -> str:
    """``sample 256`` / ``time 2``, one per line: the row's scalar coordinates (sample, time, the rest)."""
    names = [c for c in row.coords if row[c].ndim == 0 and c not in ("lat", "lon", "y", "x")]
    names.sort(key=lambda c: {"sample": 0, "time": 1}.get(c, 2))
    parts = [f"{c} {_value_text(row[c].values, row[c].attrs)}" for c in names]
    return "\n".join(parts) if parts else f"{dim} {index}"


def _spatial_dims(da: xr.DataArray) -> tuple[str, str]:
    for dims in _SPACE:
        if all(d in da.dims for d in dims):
            return dims
    if da.ndim < 2:
        raise ValueError(f"plot_fields needs 2-D fields, got dims {da.dims}")
    return da.dims[-2], da.dims[-1]


def _rows(da: xr.DataArray, space: tuple[str, str]) -> tuple[xr.DataArray, str]:
    """``da`` as ``(row, y, x)`` and the name of its row dim (one added for a single field)."""
    extra = [d for d in da.dims if d not in space]
    if len(extra) > 1:
        raise ValueError(f"plot_fields takes one row dim besides {space}, got {extra}; select or stack first")
    dim = extra[0] if extra else "row"
    return (da if extra else da.expand_dims(dim)).transpose(dim, *space), dim


def _scale(values: Sequence[np.ndarray]) -> tuple[str, float, float]:
    """Colour map and limits: symmetric diverging when both signs matter, sequential otherwise."""
    lo = min(float(np.nanmin(v)) for v in values)
    hi = max(float(np.nanmax(v)) for v in values)
    if lo < 0 < hi and min(-lo, hi) > 0.1 * max(-lo, hi):
        top = max(-lo, hi)
        return "RdBu_r", -top, top
    if lo == hi:
        lo, hi = lo - 0.5 * (abs(lo) or 1.0), hi + 0.5 * (abs(hi) or 1.0)
    return "viridis", lo, hi


def plot_fields(truth: xr.DataArray, prediction: xr.DataArray, *, inputs: xr.DataArray | None = None,
                title: str = "", truth_label: str = "truth", prediction_label: str = "prediction",
                input_label: str = "input"):
    """Panels [input |] truth | prediction | error (prediction − truth), one row per sample or frame.

    Args:
        truth, prediction: one variable over ``(row, *space)`` or ``space`` (``(y, x)`` or ``(lat,
            lon)``), same shape; compared by position, not by coordinate. The truth's scalar coordinates
            per row (``sample``, ``time``) label the rows, its ``long_name``/``units`` the colour bar,
            its coordinates' ``standard_name``/``units`` the axes.
        inputs: the model input on the same rows and grid, drawn first; on the truth's colour scale
            when it is the same quantity (same ``long_name`` and units), on its own otherwise.
        title: figure title; ``*_label``: column titles.

    Truth and prediction share one colour scale; the error has a symmetric diverging one.
    """
    from matplotlib.figure import Figure

    space = _spatial_dims(truth)
    truth, row_dim = _rows(truth, space)
    prediction = _rows(prediction, space)[0]
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction has shape {prediction.shape}, truth {truth.shape}")
    true, guess = np.asarray(truth.values, dtype=np.float64), np.asarray(prediction.values, dtype=np.float64)
    name = str(truth.name or "field")
    quantity = _with_units(str(truth.attrs.get("long_name", name)), truth.attrs)
    # columns: (title, values, colour bar label); the columns with one label share a colour scale and bar
    columns = [(truth_label, true, quantity), (prediction_label, guess, quantity)]
    if inputs is not None:
        label = _with_units(str(inputs.attrs.get("long_name", inputs.name or "input")), inputs.attrs)
        columns.insert(0, (input_label, np.asarray(_rows(inputs, space)[0].values, dtype=np.float64), label))
    error_label = _with_units(f"{name} error\nprediction {_MINUS} truth", truth.attrs)
    columns.append((f"error: prediction {_MINUS} truth", guess - true, error_label))
    groups: dict[str, list[int]] = {}
    for j, (_, _, label) in enumerate(columns):
        groups.setdefault(label, []).append(j)

    y_dim, x_dim = space
    y = truth[y_dim].values if y_dim in truth.coords else np.arange(truth.sizes[y_dim])
    x = truth[x_dim].values if x_dim in truth.coords else np.arange(truth.sizes[x_dim])
    y_attrs = truth[y_dim].attrs if y_dim in truth.coords else {}
    x_attrs = truth[x_dim].attrs if x_dim in truth.coords else {}
    sphere = space == ("lat", "lon")
    equal = sphere or _units(x_attrs) == _units(y_attrs)
    height = float(np.ptp(y) or 1) / float(np.ptp(x) or 1) if equal else 1.0
    rows, cols = true.shape[0], len(columns)
    panel = 2.4
    fig = Figure(figsize=(panel * cols + 1.8, panel * min(max(height, 0.45), 1.6) * rows + 1.5), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    for label, members in groups.items():
        if members == [cols - 1]:  # the error: symmetric about 0 whatever its values
            top = float(np.nanmax(np.abs(columns[-1][1]))) or 1.0
            cmap, vmin, vmax = "RdBu_r", -top, top
        else:
            cmap, vmin, vmax = _scale([columns[j][1] for j in members])
        for j in members:
            for i in range(rows):
                image = axes[i, j].pcolormesh(x, y, columns[j][1][i], shading="nearest", cmap=cmap,
                                              vmin=vmin, vmax=vmax, rasterized=True)
        bar = fig.colorbar(image, ax=list(axes[:, members].ravel()), location="bottom", shrink=0.9,
                           aspect=12 * len(members), pad=0.02)
        bar.set_label(label, fontsize=9)
        bar.ax.tick_params(labelsize=8)
    x_label, y_label = (_with_units(str(attrs.get("standard_name", _NAMES.get(dim, dim))),
                                    {"units": _DEGREES.get(dim, ""), **attrs} if sphere else attrs)
                        for dim, attrs in ((x_dim, x_attrs), (y_dim, y_attrs)))
    for i in range(rows):
        axes[i, 0].set_ylabel(y_label, fontsize=9)
        axes[i, 0].annotate(_row_label(truth.isel({row_dim: i}), row_dim, i), (0, 0.5), xycoords=axes[i, 0].yaxis.label,
                            xytext=(-6, 0), textcoords="offset points", ha="right", va="center", fontsize=9,
                            fontweight="bold")
        for j in range(cols):
            ax = axes[i, j]
            ax.tick_params(labelsize=8)
            if equal:
                ax.set_aspect("equal")
            if i == 0:
                ax.set_title(columns[j][0], fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel(x_label, fontsize=9)
    if sphere:
        from matplotlib.ticker import MultipleLocator

        axes[0, 0].xaxis.set_major_locator(MultipleLocator(90))
        axes[0, 0].yaxis.set_major_locator(MultipleLocator(45))
    if title:
        fig.suptitle(title)
    return fig


def _y_axis(ax, values: Sequence[float]) -> None:
    """Log scale when ``values`` span a decade or more; else linear, padded, with plain tick labels
    (a log axis over a narrow range labels every tick alike, e.g. ``8.91651e-1``)."""
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return
    lo, hi = min(finite), max(finite)
    if lo > 0 and hi / lo >= 10:
        ax.set_yscale("log")
        return
    pad = 0.1 * (hi - lo) + 0.02 * max(abs(hi), abs(lo)) or 1.0
    ax.set_ylim(lo - pad, hi + pad)
    ax.yaxis.set_major_locator(MaxNLocator(6, steps=[1, 2, 2.5, 5, 10]))
    formatter = ScalarFormatter(useOffset=False, useMathText=True)
    formatter.set_powerlimits((-3, 4))
    ax.yaxis.set_major_formatter(formatter)


def plot_error_vs_resolution(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], *,
                             baselines: Mapping[str, tuple[Sequence[int], Sequence[float]]] | None = None,
                             train_resolution: int | None = None, ylabel: str = "relative L2 error",
                             xlabel: str = "grid points per side", title: str = "Error vs grid resolution"):
    """Error against grid size (log2 x axis), one line per entry of ``curves`` (label -> (sizes,
    errors)) and a dashed grey one per entry of ``baselines`` (e.g. persistence); each point is
    annotated with its value."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.2), layout="constrained")
    ax = fig.subplots()
    series = [(label, data, {"marker": "o"}) for label, data in curves.items()]
    series += [(label, data, {"color": f"{0.45 + 0.15 * (k % 3):.2f}", "linestyle": "--", "marker": "s"})
               for k, (label, data) in enumerate((baselines or {}).items())]
    for label, (sizes, errors), style in series:
        (line,) = ax.plot(sizes, errors, label=label, **style)
        for size, error in zip(sizes, errors):
            ax.annotate(f"{error:.3g}", (size, error), textcoords="offset points", xytext=(4, 4), fontsize=7,
                        color=line.get_color())
    if train_resolution is not None:
        ax.axvline(train_resolution, color="0.5", linestyle=":", label=f"training grid ({train_resolution})")
    sizes = sorted({int(s) for _, (ss, _), _ in series for s in ss} | ({train_resolution} if train_resolution else set()))
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.minorticks_off()
    ax.set_xlim(sizes[0] / 1.4, sizes[-1] * 1.4)
    ax.margins(y=0.12)
    _y_axis(ax, [e for _, (_, errors), _ in series for e in errors])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_error_by_lead(lead_time: Sequence[float], curves: Mapping[str, Sequence[float]], *,
                       baselines: Mapping[str, Sequence[float]] | None = None,
                       xlabel: str = "lead time", ylabel: str = "relative L2 error",
                       title: str = "Error by lead time"):
    """Error against lead time: a solid line with markers per entry of ``curves`` (label -> one error per
    lead time) and a dashed grey one per entry of ``baselines`` (e.g. persistence), on the same axes.

    ``lead_time``: the lead times as numbers in the units ``xlabel`` names (e.g. ``"lead time [h]"``).
    The y axis is logarithmic when the errors span a decade, else linear with plain tick labels.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.subplots()
    x = np.asarray(lead_time, dtype=np.float64)
    values = []
    marker = "o" if x.size <= 30 else None
    for label, errors in curves.items():
        ax.plot(x, errors, marker=marker, ms=4, label=label)
        values += list(errors)
    for k, (label, errors) in enumerate((baselines or {}).items()):
        ax.plot(x, errors, color=f"{0.35 + 0.15 * (k % 3):.2f}", linestyle="--", marker="s" if marker else None, ms=3,
                label=label)
        values += list(errors)
    _y_axis(ax, values)
    if x.size <= 12:
        ax.set_xticks(x, [f"{v:g}" for v in x])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_spectra(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
                 xlabel: str = "wavenumber", ylabel: str = "energy", title: str = "Energy spectrum"):
    """Energy spectra on log-log axes, one line per entry of ``curves`` (label -> (wavenumbers, power)).

    Labels starting with ``"truth"`` are drawn black (solid, then dashed), the others in colour, so a
    prediction reads against its truth; non-positive wavenumbers (the mean, ``k = 0``) and powers are
    left out, as a log axis cannot show them; the y axis spans at most 12 decades below the highest peak.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.2), layout="constrained")
    ax = fig.subplots()
    truths = 0
    colour = 0
    peaks = []
    for label, (k, power) in curves.items():
        k, power = np.asarray(k, dtype=np.float64), np.asarray(power, dtype=np.float64)
        keep = (k > 0) & (power > 0) & np.isfinite(power)
        if label.startswith("truth"):
            style = {"color": "black", "linestyle": "-" if truths == 0 else "--", "lw": 1.6}
            truths += 1
        else:
            style = {"color": f"C{colour}", "linestyle": "-" if colour % 2 == 0 else "--", "lw": 1.2}
            colour += 1
        ax.plot(k[keep], power[keep], label=label, **style)
        peaks.append(float(power[keep].max()) if keep.any() else 0.0)
    ax.set_xscale("log")
    if max(peaks, default=0.0) > 0:  # round-off (1e-30 of the peak) would squeeze the spectrum to a corner
        ax.set_ylim(max(ax.get_ylim()[0], 1e-12 * max(peaks)), 3 * max(peaks))
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _loss_keys(history: Sequence[Mapping[str, float]]) -> list[str]:
    """Every ``train_*`` / ``val_*`` key of the records, ``train_loss`` and ``val_loss`` first."""
    keys = list(dict.fromkeys(k for record in history for k in record if k.startswith(("train_", "val_"))))
    return sorted(keys, key=lambda k: (k.split("_", 1)[1] != "loss", k.split("_", 1)[1], not k.startswith("train_")))


def plot_history(history: Sequence[Mapping[str, float]], *, loss: str = "loss", title: str = "Training history"):
    """Every logged loss (``train_*``, ``val_*``) against epoch; ``loss`` names what the loss is (y label).

    Integer epoch ticks, markers for short histories, a log y axis when the values span a decade,
    and the epoch of the lowest validation loss marked.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6.0, 3.8), layout="constrained")
    ax = fig.subplots()
    colours = {}
    values = []
    for key in _loss_keys(history):
        split, what = key.split("_", 1)
        points = [(h["epoch"], h[key]) for h in history if key in h]
        colour = colours.setdefault(what, f"C{len(colours)}")
        ax.plot(*zip(*points), color=colour, linestyle="-" if split == "train" else "--",
                marker="o" if len(points) <= 30 else None, ms=4,
                label=f"{'training' if split == 'train' else 'validation'} {what.replace('_', ' ')}")
        values += [v for _, v in points]
    val = [(h["val_loss"], h["epoch"]) for h in history if "val_loss" in h]
    if val:
        best, epoch = min(val)
        ax.axvline(epoch, color="0.5", linestyle=":", label=f"lowest validation loss ({best:.3g}, epoch {epoch})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _y_axis(ax, values)
    ax.set_xlabel("epoch")
    ax.set_ylabel(loss)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _lead_axis(lead: xr.DataArray) -> tuple[np.ndarray, str]:
    """Lead times as numbers for an axis: hours for timedeltas, else the values in their units."""
    values = np.asarray(lead.values)
    if values.dtype.kind == "m":
        return values / np.timedelta64(1, "h"), "lead time [h]"
    return values.astype(float), f"lead time [{lead.attrs.get('units', '1')}]"


def plot_scorecard(scores: Mapping[str, xr.Dataset], *, title: str = "Forecast skill"):
    """Each variable's score against lead time, one column per metric, as forecasters read them first.

    ``scores``: ``{metric name: Dataset of that metric per variable over (lead_time[, ...])}``; extra
    dims are averaged for the figure. Ratios (spread/skill, spectrum ratio) get the reference line 1,
    ACC its 0.6 line of useful skill. When the variables' scores have different units (metres of height
    and metres per second of wind), each variable gets its own row and y scale, so none is flattened by
    another's; otherwise they share one panel per metric.
    """
    from matplotlib.figure import Figure

    metrics = [name for name, ds in scores.items() if "lead_time" in ds.dims and ds.data_vars]
    if not metrics:
        raise ValueError("plot_scorecard needs at least one metric over lead_time")
    variables = list(dict.fromkeys(name for metric in metrics for name in scores[metric].data_vars))
    mixed = any(len({_units(da.attrs) for da in scores[metric].data_vars.values()}) > 1 for metric in metrics)
    rows = [[name] for name in variables] if mixed else [variables]
    fig = Figure(figsize=(4.2 * len(metrics), (2.6 if mixed else 3.6) * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), len(metrics), squeeze=False, sharex=True)
    for r, names in enumerate(rows):
        for ax, metric in zip(axes[r], metrics):
            ds = scores[metric]
            for name in (n for n in names if n in ds.data_vars):
                da = ds[name]
                extra = [d for d in da.dims if d != "lead_time"]
                curve = da.mean(extra) if extra else da
                x, xlabel = _lead_axis(curve["lead_time"])
                units = _units(da.attrs)
                ax.plot(x, curve.values, marker="o" if x.size <= 30 else None, ms=3,
                        label=f"{name} [{units}]" if units else str(name))
            if r == len(rows) - 1:
                ax.set_xlabel(xlabel)
            if mixed:
                units = _units(ds[names[0]].attrs) if names[0] in ds.data_vars else ""
                ax.set_ylabel(f"{names[0]} [{units}]" if units else names[0])  # the metric is the column's title
            else:
                ax.set_ylabel(f"{metric} (units in the legend)" if metric in ("rmse", "mae", "crps") else metric)
            if r == 0:
                ax.set_title(metric)
            if metric in ("spread_skill", "spectrum_ratio"):
                ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
            if metric == "acc":
                ax.axhline(0.6, color="0.5", lw=0.8, ls=":", label="ACC 0.6 (useful skill)")
            ax.grid(alpha=0.3)
            if not mixed or metric == "acc":
                ax.legend(fontsize=7)
    fig.suptitle(title)
    return fig
