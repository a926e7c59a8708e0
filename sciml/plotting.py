"""Figures people look at instead of reading numbers. matplotlib is imported lazily and only its
object-oriented ``Figure`` API is used: no pyplot state, no backend switching, no global side effects.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = ["plot_fields", "plot_error_vs_resolution", "plot_history", "save_figure"]


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Save as PNG at 120 dpi, atomically (:mod:`sciml._atomic`)."""
    from ._atomic import write_bytes

    return write_bytes(path, lambda file: fig.savefig(file, format="png", dpi=120, bbox_inches="tight"))


def plot_fields(panels: Mapping[str, np.ndarray], *, title: str = "", error_key: str | None = "error"):
    """A grid of images: one row per sample, one column per entry of ``panels``.

    Args:
        panels: column title -> array ``(rows, y, x)``. Columns other than ``error_key`` share one
            symmetric colour scale; the error column gets its own.
        title: figure title.
    """
    from matplotlib.figure import Figure

    names = list(panels)
    rows = next(iter(panels.values())).shape[0]
    fields = [k for k in names if k != error_key]
    vmax = max(float(np.abs(panels[k]).max()) for k in fields)
    emax = float(np.abs(panels[error_key]).max()) if error_key in panels else None
    fig = Figure(figsize=(2.6 * len(names) + 0.6, 2.4 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, len(names), squeeze=False)
    for j, name in enumerate(names):
        for i in range(rows):
            ax = axes[i, j]
            is_err = name == error_key
            scale = emax if is_err else vmax
            image = ax.imshow(panels[name][i], origin="lower", extent=(0, 1, 0, 1), cmap="RdBu_r",
                              vmin=-scale, vmax=scale)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=10)
            if i == rows - 1 and (is_err or j == len(fields) - 1):
                colorbar = fig.colorbar(image, ax=axes[:, j], shrink=0.8, location="bottom")
                colorbar.ax.locator_params(nbins=4)
    if title:
        fig.suptitle(title)
    return fig


def plot_error_vs_resolution(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], *,
                             train_resolution: int | None = None, ylabel: str = "relative L2 error"):
    """Log-log error against grid size, one line per entry of ``curves`` (label -> (sizes, errors))."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4), layout="constrained")
    ax = fig.subplots()
    for label, (sizes, errors) in curves.items():
        ax.plot(sizes, errors, marker="o", label=label)
    if train_resolution is not None:
        ax.axvline(train_resolution, color="0.5", linestyle=":", label=f"training grid ({train_resolution})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("grid points per side")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_history(history: Sequence[Mapping[str, float]], *, loss: str = "loss", title: str = "Training history"):
    """Training and validation loss against epoch; ``loss`` names what the loss is (the y label)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.6), layout="constrained")
    ax = fig.subplots()
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], label="train")
    if history and "val_loss" in history[0]:
        ax.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(loss)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return fig
