"""Figures of the statistics model: predicted decay curves against the DNS, with the baselines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["plot_decay"]

_LABELS = {"kinetic_energy": "kinetic energy K", "dissipation": "dissipation rate eps",
           "potential_energy": "potential energy K_P"}


def plot_decay(predicted: xr.Dataset, truth: xr.Dataset | None = None, *, samples: Sequence[int] | None = None,
               variables: Sequence[str] = ("kinetic_energy", "dissipation"), title: str = "Decay of turbulence"):
    """Decay curves on log-log axes, one panel per variable and one colour per run: the DNS (open circles), the
    neural ODE (solid), the k-epsilon model (dashed) and the power law (dotted) of
    :func:`sciml.node.predict_statistics`; for an ensemble's prediction (with ``<name>_spread``), the
    band ``s exp(+-2 sigma)`` around the geometric mean ``s``.

    Args:
        predicted: the predictions ``(sample, time)``, ``time`` since the initial state.
        truth: the DNS statistics of the same runs (``time`` shifted to start at 0 here), or ``None``.
        samples: positions along ``sample`` to draw (default: the first three).
        variables: the panels.
        title: the figure's title.

    Returns:
        A matplotlib ``Figure`` (save it with :func:`sciml.plotting.save_figure`).
    """
    from matplotlib.figure import Figure

    chosen = list(samples) if samples is not None else list(range(min(3, predicted.sizes["sample"])))
    variables = [v for v in variables if v in predicted]
    fig = Figure(figsize=(5.2 * len(variables), 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(variables)))
    t = np.asarray(predicted["time"].values, dtype=np.float64)
    time_units = predicted["time"].attrs.get("units", "1")
    for ax, name in zip(axes, variables):
        units = predicted[name].attrs.get("units", "1")
        for c, i in enumerate(chosen):
            colour = f"C{c}"
            re = float(predicted["reynolds"].values[i])
            label = f"Re {re:.3g}"
            if truth is not None and name in truth:
                tt = np.asarray(truth["time"].values, dtype=np.float64)
                ax.plot(tt - tt[0], truth[name].isel(sample=i).values, "o", ms=3.5, color=colour, mfc="none",
                        label="DNS" if c == 0 else None)
            centre = predicted[name].isel(sample=i).values
            ax.plot(t, centre, "-", color=colour, label=f"neural ODE, {label}")
            if f"{name}_spread" in predicted:  # an ensemble: s exp(+-2 sigma), sigma the spread of log s
                spread = predicted[f"{name}_spread"].isel(sample=i).values
                ax.fill_between(t, centre * np.exp(-2 * spread), centre * np.exp(2 * spread), color=colour,
                                alpha=0.2, lw=0, label="ensemble ±2σ" if c == 0 else None)
            for suffix, style, what in (("k_epsilon", "--", "k-epsilon"), ("power_law", ":", "power law")):
                if f"{name}_{suffix}" in predicted:
                    ax.plot(t, predicted[f"{name}_{suffix}"].isel(sample=i).values, style, color=colour,
                            label=what if c == 0 else None)
        positive = t > 0
        ax.set_xscale("log" if positive.sum() > 1 else "linear")
        if positive.sum() > 1:
            ax.set_xlim(t[positive][0], t[-1])
        ax.set_yscale("log")
        ax.set_xlabel(f"time since the initial state [{time_units}]")
        ax.set_ylabel(f"{_LABELS.get(name, name)} [{units}]")
        ax.set_title(_LABELS.get(name, name), fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=11)
    return fig
