"""``discover``: coefficients, with intervals, of unlabelled PDE solutions from a pretrained encoder and its probe.

:func:`discover` reads solutions from a dataset or any file :func:`sciml.data.open` reads, checks them against
what the encoder was trained on (variable, spatial domain, frame spacing, crop size, finite values), brings them
onto the training grid (band-limited resampling, :func:`sciml.spectral.spectral_resample`, for another spatial
resolution of the same periodic domain; every ``k``-th frame for frames ``k`` times denser), embeds them
(:func:`sciml.jepa.probes.embed`) and applies the ridge probe: an estimate per coefficient and sample with a
split-conformal interval at the probe's nominal level (:class:`~sciml.jepa.probes.CoefficientModel`).

:func:`save` / :func:`load` keep a :class:`~sciml.jepa.probes.CoefficientModel` as ``weights.pt`` (tensors only,
read back with ``torch.load(weights_only=True)``) and ``manifest.json`` (the network's shape, the training data's
description, the coefficient names, the level). Figures: :func:`plot_estimates` (estimated against true
coefficient, log axes, with the intervals), :func:`plot_label_efficiency`, :func:`plot_embeddings` (a 2-D PCA
projection coloured by a coefficient).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import torch

from ..errors import DataError
from .encoder import JEPAModel
from .objectives import _open, trajectories_of
from .probes import CoefficientModel, RidgeProbe, embed

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["discover", "save", "load", "prepare", "plot_estimates", "plot_label_efficiency", "plot_embeddings"]

FORMAT = "sciml-jepa-coefficients"
VERSION = 1


def _grid(ds: xr.Dataset, dim: str) -> tuple[int, float]:
    values = np.asarray(ds[dim].values, dtype=np.float64)
    n = values.size
    spacing = (values[-1] - values[0]) / (n - 1) if n > 1 else float("nan")
    return n, spacing * n


def prepare(model: JEPAModel | CoefficientModel, data: xr.Dataset | str) -> tuple[xr.Dataset, torch.Tensor]:
    """Check ``data`` against the encoder's training data and bring it onto its grid.

    Returns:
        ``(dataset, trajectories)``: the opened dataset and ``(sample, time, 1, *space)`` float32 on the training
        grid and frame spacing.

    Raises:
        DataError: one line for a missing variable or dims, another spatial domain, unequal or incommensurate
            frame spacing, windows shorter or narrower than the crop, NaN or infinite values.
    """
    from ..spectral import spectral_resample

    network = model.model if isinstance(model, CoefficientModel) else model
    spec = network.spec
    ds = _open(data)
    variable = spec["variable"]
    if variable not in ds.data_vars:
        raise DataError(f"the encoder was trained on {variable!r}, which the data lack (they have {list(ds.data_vars)})")
    da = ds[variable]
    space = list(spec["space"])
    need = ["sample", "time", *space]
    if set(da.dims) != set(need):
        raise DataError(f"{variable!r} has dims {tuple(da.dims)}; the encoder needs {tuple(need)}")
    points = []
    for dim, trained_n, trained_length in zip(space, spec["points"], spec["length"]):
        n, length = _grid(ds, dim)
        if not math.isclose(length, trained_length, rel_tol=1e-6):
            raise DataError(f"{variable!r} is on a domain of length {length:.6g} along {dim!r}; the encoder was trained "
                            f"on length {trained_length:.6g} (another spatial domain)")
        if n < min(spec["size_x"]):
            raise DataError(f"{variable!r} has {n} points along {dim!r}, narrower than the encoder's "
                            f"{min(spec['size_x'])}-point crop")
        points.append(n)
    times = np.asarray(ds["time"].values, dtype=np.float64)
    step = spec["time_step"]
    every = 1
    if times.size > 1:
        spacing = np.diff(times)
        if not np.allclose(spacing, spacing[0], rtol=1e-6, atol=0):
            raise DataError(f"{variable!r}: frames are not equally spaced in time; the encoder needs a spacing of {step:g}")
        ratio = step / spacing[0]
        every = int(round(ratio))
        if every < 1 or not math.isclose(ratio, every, rel_tol=1e-6):
            raise DataError(f"{variable!r}: frames {spacing[0]:g} apart; the encoder was trained on frames {step:g} "
                            f"apart (give the same spacing or {step:g} / k for an integer k)")
    frames = len(range(0, times.size, every))
    if frames < spec["size_t"]:
        raise DataError(f"{variable!r} has {frames} frames {step:g} apart, shorter than the encoder's "
                        f"{spec['size_t']}-frame crop")
    trajectories = trajectories_of(ds.isel(time=slice(None, None, every)), variable)
    if tuple(points) != tuple(spec["points"]):
        trajectories = spectral_resample(trajectories.double(), tuple(spec["points"])).float()
    return ds, trajectories


def discover(model: CoefficientModel | str | os.PathLike, data: xr.Dataset | str | os.PathLike, *,
             batch_size: int = 64) -> xr.Dataset:
    """Estimate the PDE coefficients of unlabelled solutions, with intervals.

    Args:
        model: a :class:`~sciml.jepa.probes.CoefficientModel` (:func:`sciml.jepa.probes.fit_probe`) or the directory
            :func:`save` wrote.
        data: solutions ``variable(sample, time, x)`` (or ``(sample, time, y, x)``), a dataset or any file
            :func:`sciml.data.open` reads, on the encoder's periodic domain at any resolution, with frames the
            training spacing apart or an integer fraction of it.
        batch_size: trajectories embedded at once.

    Returns:
        ``xr.Dataset`` along ``sample`` (with the input's ``sample`` coordinates, e.g. a true ``viscosity``,
        kept) holding for each coefficient ``c``: ``c_estimate``, ``c_lower``, ``c_upper`` (the interval at
        ``attrs["level"]``).
    """
    import xarray as xr

    if not isinstance(model, CoefficientModel):
        model = load(model)
    ds, trajectories = prepare(model, data)
    features = embed(model.model, trajectories, batch_size=batch_size)
    estimate, lower, upper = (t.numpy() for t in model.predict(features))
    coords = {name: ds[name] for name in ds.coords if ds[name].dims == ("sample",)}
    variables = {}
    for j, name in enumerate(model.names):
        attrs = dict(model.attrs.get(name, {}))
        long_name = attrs.get("long_name", name)
        variables[f"{name}_estimate"] = ("sample", estimate[:, j], {**attrs, "long_name": f"estimated {long_name}"})
        for kind, values in (("lower", lower), ("upper", upper)):
            variables[f"{name}_{kind}"] = ("sample", values[:, j],
                                           {**attrs, "long_name": f"{kind} end of the {model.level:.0%} interval of "
                                                                  f"{long_name}"})
    return xr.Dataset(variables, coords=coords, attrs={
        "level": model.level, "method": "PDE-JEPA encoder + ridge probe, split-conformal intervals on log coefficients",
        "variable": model.model.spec["variable"], "calibration_trajectories": model.calibration})


def save(model: CoefficientModel, directory: str | os.PathLike) -> Path:
    """Write ``weights.pt`` and ``manifest.json`` of a :class:`~sciml.jepa.probes.CoefficientModel` to
    ``directory`` (created)."""
    from .._atomic import write_bytes, write_text

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {"encoder": model.model.state_dict(), "probe": model.probe.state(), "half_width": model.half_width}
    write_bytes(out / "weights.pt", lambda file: torch.save(tensors, file))
    manifest = {"format": FORMAT, "version": VERSION, "network": model.model.manifest(), "coefficients": model.names,
                "level": model.level, "calibration": model.calibration, "attrs": model.attrs}
    write_text(out / "manifest.json", json.dumps(manifest, indent=2))
    return out


def load(directory: str | os.PathLike) -> CoefficientModel:
    """Read what :func:`save` wrote (``torch.load(weights_only=True)``: no code is unpickled)."""
    path = Path(directory)
    try:
        manifest = json.loads((path / "manifest.json").read_text())
        tensors = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError) as err:
        raise DataError(f"{path}: not a saved coefficient model ({type(err).__name__}: {err})"[:300]) from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise DataError(f"{path}: manifest format {manifest.get('format')!r} v{manifest.get('version')}, expected "
                        f"{FORMAT!r} v{VERSION}")
    network = JEPAModel.from_manifest(manifest["network"])
    network.load_state_dict(tensors["encoder"])
    p = tensors["probe"]
    probe = RidgeProbe(p["weight"], p["bias"], p["x_mean"], p["x_std"], float(p["alpha"]), float(p["loo_mse"]))
    return CoefficientModel(network.eval(), list(manifest["coefficients"]), probe, tensors["half_width"],
                            float(manifest["level"]), int(manifest["calibration"]), dict(manifest.get("attrs", {})))


def _label(name: str, attrs: Mapping) -> str:
    units = str(attrs.get("units", "")).strip()
    return f"{name} [{units}]" if units else name


def plot_estimates(result: xr.Dataset, truth: Sequence[float] | np.ndarray | None = None, *, name: str = "viscosity",
                   title: str | None = None):
    """Estimated against true coefficient on log axes, with the intervals as bars and the identity line.

    ``result`` is :func:`discover`'s output; ``truth`` defaults to its ``name`` coordinate.
    """
    from matplotlib.figure import Figure

    if truth is None:
        if name not in result.coords:
            raise DataError(f"no true {name!r} coordinate in the result; pass truth=...")
        truth = result[name].values
    truth = np.asarray(truth, dtype=np.float64)
    est = result[f"{name}_estimate"]
    lo, hi = result[f"{name}_lower"].values, result[f"{name}_upper"].values
    inside = float(np.mean((truth >= lo) & (truth <= hi)))
    fig = Figure(figsize=(5, 4.5))
    ax = fig.add_subplot()
    ax.errorbar(truth, est.values, yerr=[est.values - lo, hi - est.values], fmt="o", ms=3, alpha=0.6, elinewidth=0.6,
                label=f"estimate, {result.attrs.get('level', 0.9):.0%} interval ({inside:.0%} cover)")
    span = [min(truth.min(), lo.min()), max(truth.max(), hi.max())]
    ax.plot(span, span, "k--", lw=1, label="estimate = truth")
    ax.set_xscale("log")
    ax.set_yscale("log")
    attrs = est.attrs
    ax.set_xlabel(_label(f"true {name}", attrs))
    ax.set_ylabel(_label(f"estimated {name}", attrs))
    ax.set_title(title or f"Discovered {name}")
    ax.legend(fontsize=8)
    return fig


def plot_label_efficiency(curves: Mapping[str, Mapping[str, Sequence[float]]], *, name: str = "viscosity",
                          title: str = "Label efficiency"):
    """Relative error against labelled trajectories (log-log), one line per method:
    ``{"SSL + linear probe": {"budgets": [...], "relative_error": [...]}, ...}``."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot()
    for label, curve in curves.items():
        ax.plot(curve["budgets"], 100 * np.asarray(curve["relative_error"]), "o-", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    budgets = sorted({int(b) for curve in curves.values() for b in curve["budgets"]})
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.xaxis.set_minor_formatter(NullFormatter())
    for formatter in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):  # 20, 30, 40 rather than 4x10^1
        formatter(FormatStrFormatter("%g"))
    ax.set_xlabel("labelled trajectories [count]")
    ax.set_ylabel(f"relative error of {name} [%]")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def plot_embeddings(features, coefficient, *, name: str = "viscosity", units: str = "1",
                    title: str = "Embeddings (PCA)"):
    """The first two principal components of features ``(n, F)``, coloured by ``coefficient`` ``(n,)`` on a log
    colour scale, with a labelled colour bar."""
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    x = np.asarray(features, dtype=np.float64)
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-12)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    pcs = x @ vt[:2].T
    explained = s[:2] ** 2 / np.sum(s**2)
    c = np.asarray(coefficient, dtype=np.float64)
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.add_subplot()
    points = ax.scatter(pcs[:, 0], pcs[:, 1], c=c, s=10, cmap="viridis", norm=LogNorm(c.min(), c.max()))
    bar = fig.colorbar(points, ax=ax)
    bar.set_label(_label(name, {"units": units}))
    ax.set_xlabel(f"principal component 1 ({explained[0]:.0%} of variance) [1]")
    ax.set_ylabel(f"principal component 2 ({explained[1]:.0%} of variance) [1]")
    ax.set_title(title)
    return fig
