"""A trained neural operator as one importable object: xarray in, xarray out, on any grid.

A :class:`Surrogate` holds the network with its normalisation (an ``nn.Module`` mapping physical
fields to physical fields), the registered model name and options it was built with, the variable names
and units, the training grid's domain, the lead time for time-stepping maps (a float in the file's time
units, or a ``pandas.Timedelta`` for calendar time), and provenance. Its directory format is a JSON
manifest plus a tensors-only weights file loaded with ``weights_only=True``: no pickled objects.

:func:`fit_surrogate` trains one through the library's one loop (:func:`sciml.train.fit`) with a
:class:`SurrogateTask`, streaming the training file: a lazily opened dataset is read a batch at a time.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import math
import os
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch import nn

from . import __version__
from ._atomic import (
    is_partial,
    partial_message,
    write_bytes,
    write_model_directory,
    write_text,
)
from ._diagnostics import training_warnings
from ._physics import physics_record
from .data import times as timing
from .data._layout import require_variables, source_name
from .data.tensors import grid_of, in_canonical_order, stack_fields
from .errors import ConfigError, DataError, SciMLError
from .grids import Grid
from .models import build, defaults_for
from .train import (
    Task,
    TrainConfig,
    fit,
    h1_loss,
    relative_l2_loss,
    resolve_device,
    seed_everything,
)

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = ["Surrogate", "SurrogateTask", "ChannelNormalizer", "NormalizedOperator", "fit_surrogate"]

FORMAT_VERSION = 2
LOSSES = ("rel_l2", "anomaly_rel_l2", "h1")


@contextlib.contextmanager
def _plain_einsum():
    """Use tensorly's default einsum while tracing (neuraloperator switches it to opt_einsum on import,
    whose cached paths fix the batch size), then restore whatever was in use."""
    import tensorly as tl
    import tensorly.plugins as plugins

    current, previous = tl.backend.current_backend().einsum, plugins.PREVIOUS_EINSUM
    plugins.use_default_einsum()
    try:
        yield
    finally:
        tl.backend.BackendManager.register_backend_method("einsum", current)
        plugins.PREVIOUS_EINSUM = previous


class ChannelNormalizer(nn.Module):
    """Per-channel affine normalisation ``(x - mean) / std``; statistics are scalars per channel.

    Scalars (not per-pixel fields) keep the normalisation independent of the grid, which zero-shot
    super-resolution needs. Buffers are persistent: they are trained state saved with the model.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels, dtype=torch.float64))
        self.register_buffer("std", torch.ones(channels, dtype=torch.float64))

    @torch.no_grad()
    def fit(self, data: torch.Tensor) -> ChannelNormalizer:
        """Set the statistics from ``(batch, channel, *space)`` data (float64 accumulation)."""
        values = data.transpose(0, 1).reshape(data.shape[1], -1).to(torch.float64)
        return self.set(values.mean(dim=1), values.std(dim=1, correction=0))

    @torch.no_grad()
    def set(self, mean, std) -> ChannelNormalizer:
        """Set per-channel ``mean`` and ``std`` (sequences or tensors of length ``channel``)."""
        mean = torch.as_tensor(mean, dtype=torch.float64)
        std = torch.as_tensor(std, dtype=torch.float64)
        if bool((std == 0).any()):
            raise DataError(f"channels {torch.nonzero(std == 0).flatten().tolist()} are constant; cannot normalise")
        bad = ~(torch.isfinite(mean) & torch.isfinite(std) & (std > 0))
        if bool(bad.any()):
            raise DataError(f"channels {torch.nonzero(bad).flatten().tolist()} have normalisation statistics mean="
                            f"{mean[bad].tolist()}, std={std[bad].tolist()}; std must be positive and both finite")
        self.mean.copy_(mean)
        self.std.copy_(std)
        return self

    def _shape(self, x: torch.Tensor, stat: torch.Tensor) -> torch.Tensor:
        return stat.to(x.dtype).view(1, -1, *([1] * (x.ndim - 2)))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self._shape(x, self.mean)) / self._shape(x, self.std)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._shape(x, self.std) + self._shape(x, self.mean)


class NormalizedOperator(nn.Module):
    """``decode(network(encode(x)))``: physical fields in, physical fields out.

    ``(batch, c_in, *space) -> (batch, c_out, *space)``.
    """

    def __init__(self, network: nn.Module, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.network = network
        self.input_norm = ChannelNormalizer(in_channels)
        self.output_norm = ChannelNormalizer(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_norm.decode(self.network(self.input_norm.encode(x)))


class SurrogateTask(Task):
    """The surrogate's objective: the relative error of ``model(x)`` against ``y`` on ``(x, y, ...)`` batches.

    ``loss="rel_l2"``: :func:`~sciml.train.relative_l2_loss`, the mean over the batch and the output
    variables of ``||model(x)_c - y_c|| / ||y_c||`` with the grid's quadrature weights (area weights on the
    sphere, the trapezoidal rule on bounded boxes; on periodic boxes the uniform weights cancel), so each
    variable counts the same whatever its units. ``loss="h1"``: the relative H1 norm of
    :func:`~sciml.train.h1_loss` (periodic boxes), which also weighs the error's gradient. Fields are
    ``(batch, channel, *space)`` on ``grid`` at any resolution.
    ``loss="anomaly_rel_l2"``: the same relative error of each variable's departure from its training mean
    (``output_norm.mean``), ``||p - y|| / ||y - mean||``, the relative L2 of the standardised fields; use it
    where a variable's mean dwarfs its variations (shallow-water depth: ~10 km mean, ~100 m waves), which
    ``"rel_l2"`` would hardly weigh.
    """

    def __init__(self, module: nn.Module, *, grid: Grid, loss: str = "rel_l2") -> None:
        super().__init__(module)
        if loss not in LOSSES:
            raise ConfigError(f"loss must be one of {LOSSES}, got {loss!r}")
        if loss == "h1" and grid.kind != "box":
            raise ConfigError(f"loss 'h1' needs a periodic box (spectral gradients), the data are on a {grid.kind!r} grid")
        self.grid, self.kind = grid, loss

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        x, y = batch[0], batch[1]
        pred = model(x)
        grid = self.grid.with_shape(*pred.shape[2:])
        if self.kind == "h1":
            return h1_loss(pred, y, grid=grid)
        if self.kind == "anomaly_rel_l2":
            mean = self.model.output_norm.mean.to(pred.dtype).reshape(1, -1, *[1] * grid.ndim)  # (1, C, 1, ...)
            return relative_l2_loss(pred - mean, y - mean, grid=grid, per_channel=True)
        return relative_l2_loss(pred, y, grid=grid, per_channel=True)


class Surrogate:
    """A trained operator with its metadata. Build one with :func:`fit_surrogate` or :meth:`load`.

    Attributes:
        module: the ``NormalizedOperator`` (a plain ``nn.Module``).
        inputs, outputs: variable names of the input and output channels, in order.
        units: ``{variable: units}`` seen in training (checked against inputs at prediction).
        grid: the training grid (its domain is what predictions must match; any resolution works).
        lead_time: time between input and output for time-stepping maps (a float in ``time_units``, or a
            ``pandas.Timedelta`` for datetime64/cftime data), else ``None``.
        time_units: units of a float lead time (e.g. ``"1"``, ``"hours"``); ``None`` for calendar time.
        model, model_options: the registered model name and the options it was built with.
        origin: where the training data's first point sits along each axis but latitude, in grid steps from
            0 (0 for points at ``j dx``, 0.5 for cell centres): the positional features assume that layout,
            so inputs must have it too (at any resolution).
        history: frames of the state the time-stepping map takes, ``lead_time`` apart, the last at the
            input time ``t`` (1: ``t`` alone). The state is :attr:`history_variables` (the inputs that are
            also outputs); the module's input is ``(batch, input_channels, *space)`` with the channels
            ``[state at t - (h-1) lead, ..., state at t - lead, inputs at t]``, oldest first; other inputs
            (static fields, forcings) enter at ``t`` only.
        provenance: data source and hash, training options, versions, timings.
    """

    def __init__(self, *, module: NormalizedOperator, inputs: Sequence[str], outputs: Sequence[str], grid: Grid,
                 units: dict[str, str], model: str, model_options: dict, lead_time: float | pd.Timedelta | None = None,
                 time_units: str | None = None, origin: dict[str, float] | None = None,
                 provenance: dict | None = None, history: int = 1) -> None:
        from .data.loaders import history_variables

        if isinstance(history, bool) or not isinstance(history, (int, np.integer)) or history < 1:
            raise ConfigError(f"history must be an integer >= 1 (frames of the state in the input), got {history!r}")
        if history > 1 and (lead_time is None or not history_variables(inputs, outputs)):
            raise ConfigError(f"history={history} needs a time-stepping map (a lead_time) whose inputs include outputs "
                              f"(the state); got inputs {list(inputs)}, outputs {list(outputs)}, lead_time {lead_time}")
        self.history = int(history)
        self.module = module
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.grid = grid
        self.units = dict(units)
        self.model = model
        self.model_options = dict(model_options)
        self.lead_time = None if lead_time is None else timing.as_lead(lead_time)
        self.time_units = time_units
        self.origin = dict(origin or {})
        self.provenance = dict(provenance or {})

    def __repr__(self) -> str:
        lead = timing.format_lead(self.lead_time, self.time_units) if self.lead_time is not None else None
        return (f"Surrogate({', '.join(self.inputs)} -> {', '.join(self.outputs)}, {self.model} trained on "
                f"{self.grid.shape} {self.grid.dims}, lead_time={lead}"
                + (f", history={self.history}" if self.history > 1 else "") + ")")

    @property
    def history_variables(self) -> list[str]:
        """The variables whose past frames the input holds: the inputs that are also outputs, in input order."""
        from .data.loaders import history_variables

        return history_variables(self.inputs, self.outputs) if self.history > 1 else []

    @property
    def input_channels(self) -> int:
        """Channels of the module's input: ``(history - 1) * len(history_variables) + len(inputs)``."""
        return (self.history - 1) * len(self.history_variables) + len(self.inputs)

    @property
    def device(self) -> torch.device:
        """Where the module's parameters are."""
        return next(self.module.parameters()).device

    def to(self, device: str | torch.device) -> Surrogate:
        """Move the module to ``device`` (``"auto"``: CUDA when present), in place; returns ``self``."""
        self.module.to(resolve_device(device))
        return self

    def _module_on(self, device: str | torch.device | None) -> nn.Module:
        """The module on ``device``: itself if it is there, else a copy (the surrogate is not moved)."""
        if device is None or resolve_device(device) == self.device:
            return self.module.eval()
        return copy.deepcopy(self.module).to(resolve_device(device)).eval()

    # ------------------------------------------------------------------ inference
    def _check_input(self, ds: xr.Dataset) -> Grid:
        grid = grid_of(ds)
        source = source_name(ds)
        if grid.ndim != self.grid.ndim or (grid.kind == "latlon") != (self.grid.kind == "latlon"):
            raise DataError(f"{source}: the fields are {grid.ndim}-D on a {grid.kind} grid over dims {grid.dims}, the "
                            f"surrogate was trained on {self.grid.ndim}-D fields on a {self.grid.kind} grid over dims "
                            f"{self.grid.dims}; give it fields over {self.grid.dims}")
        if not grid.same_domain(self.grid):
            raise DataError(
                f"{source}: {grid.kind} domain {dict(zip(grid.dims, grid.lengths))} differs from the training "
                f"{self.grid.kind} domain {dict(zip(self.grid.dims, self.grid.lengths))}; the surrogate only "
                "generalises across resolutions"
            )
        require_variables(ds, self.inputs, purpose="the surrogate")
        for dim, offset in _origin(ds, grid).items():
            expected = self.origin.get(dim)
            if expected is not None and not math.isclose(offset, expected, abs_tol=1e-3):
                raise DataError(f"{source}: coordinate {dim!r} starts {offset:g} grid steps from 0, the training data "
                                f"{expected:g}; the model's positional features assume the training layout: roll the "
                                f"data along {dim!r} (ds.roll) or regrid it to start {expected:g} steps from 0")
        for name in self.inputs:
            given, expected = ds[name].attrs.get("units"), self.units.get(name)
            if given is not None and expected is not None and given != expected:
                raise DataError(f"{source}: variable {name!r} has units {given!r}, the surrogate expects {expected!r}; convert first")
        if self.lead_time is not None and "time" in ds.coords:
            timing.check_same_kind(_as_1d(ds["time"]), self.lead_time, source=source, units=self.time_units)
        return grid

    @torch.no_grad()
    def predict_tensor(self, fields: torch.Tensor, *, steps: int | None = None, batch_size: int = 32,
                       device: str | torch.device | None = None) -> torch.Tensor:
        """Apply the operator to ``(batch, c_in, *space)`` physical fields in chunks of ``batch_size``.

        ``c_in`` is :attr:`input_channels` (``history * c`` for a history model with inputs equal to outputs:
        the frames ``t - (h-1) lead, ..., t`` stacked along channels, oldest first). With ``steps=k``
        (time-stepping surrogates) the operator is applied ``k`` times autoregressively, each output
        becoming the newest frame of the next input (the oldest dropped), and the result is
        ``(batch, k, c_out, *space)``. ``device``: where to run
        (``None``: where the surrogate is; another device runs a copy there, so for repeated calls move
        the surrogate once with :meth:`to`). The result is on the CPU.
        """
        _check_batch_size(batch_size)
        if fields.ndim < 2 or fields.shape[1] != self.input_channels:
            raise DataError(f"fields must be (batch, {self.input_channels}, *space) for this surrogate "
                            f"(history={self.history}, inputs {self.inputs}), got {tuple(fields.shape)}")
        if steps is not None and self.history > 1 and self.inputs != self.outputs:
            raise ConfigError(f"steps= with history={self.history} feeds outputs back as the newest frame, which needs "
                              f"inputs == outputs; this surrogate maps {self.inputs} to {self.outputs}")
        return _apply(self._module_on(device), fields, steps, batch_size, keep=self._kept_channels)

    @property
    def _kept_channels(self) -> int:
        """Channels of an input kept (shifted towards the past) when a rollout appends the newest output."""
        return (self.history - 1) * len(self.outputs)

    def predict(self, ds: xr.Dataset, *, steps: int | None = None, batch_size: int = 32,
                device: str | torch.device | None = None) -> xr.Dataset:
        """Predict the output fields for every ``(sample[, time])`` frame of ``ds``.

        ``ds`` holds the input variables over ``(..., *space)`` on any grid of the training domain
        (zero-shot super-resolution on finer grids); it may be lazy: inputs are read ``batch_size``
        frames at a time, so memory holds one chunk of inputs plus the outputs.

        Args:
            ds: canonical dataset with the input variables.
            steps: for time-stepping surrogates with ``inputs == outputs``, roll out this many steps
                autoregressively: the result gains a ``lead_time`` dim (``lead_time * 1..steps``, a
                timedelta for calendar time) before the spatial dims. ``None``: one application, with a
                scalar ``lead_time`` coordinate. Either way ``time`` stays the initial time and, with a
                ``time`` coordinate, ``valid_time = time + lead_time`` is a coordinate beside it (the
                forecast convention of CF and WMO GRIB: reference time, forecast period, valid time).
            batch_size: frames per forward pass.
            device: where to run the model (``None``: where the surrogate is).

        A single frame without a ``sample`` dim (only the spatial dims) is predicted as one sample and
        returned without the dim, so the result has the dims of the input.

        **History models** (:attr:`history` ``h > 1``): the prediction from time ``t`` takes the frames at
        ``t - (h-1) lead, ..., t - lead, t`` of ``ds``, found by their time values (``ds`` may be sampled
        more finely than the model's step), so ``ds`` needs a ``time`` dim with coordinate values. A time
        is predicted when all its past frames are in ``ds``; the first ``(h-1) lead`` of ``ds`` serve only
        as history, so the result's ``time`` is the times that have their history (``time`` is the last
        input frame, the initial time, as for ``h = 1``). Rollouts (``steps=``) feed each output back as
        the newest frame and drop the oldest.

        Raises:
            ConfigError: ``batch_size < 1``; a prediction larger than the memory available (estimated before
                any work, e.g. a file declaring 2^20 x 10 frames of 4096 x 4096).
            DataError: fields of another dimensionality, domain, layout or units than the training data; for
                a history model, no time of ``ds`` with its past frames (naming the file and the missing
                times).

        Returns:
            The output variables with the input's coordinates and attributes (``history`` appended), dims in
            the canonical order ``(sample, [time,] ..., [lead_time,] y, x | lat, lon)`` whatever the order of
            ``ds``'s dims (inputs are aligned by dim name, as :func:`sciml.data.open` orders them).
        """
        import xarray as xr

        from ._budget import check_memory, format_bytes

        _check_batch_size(batch_size)
        ds = in_canonical_order(ds)
        grid = self._check_input(ds)
        source = source_name(ds)
        single = not [d for d in ds[self.inputs[0]].dims if d not in grid.dims]
        if single:  # one frame, no sample dim: predicted as a sample of one, returned without the dim
            ds = ds.expand_dims("sample")
        if steps is not None:
            if self.lead_time is None:
                raise ConfigError("steps= needs a time-stepping surrogate (trained with lag=); this one maps fields to fields")
            if isinstance(steps, bool) or int(steps) != steps or steps < 1:
                raise ConfigError(f"steps must be a positive integer, got {steps!r}")
            if self.inputs != self.outputs:
                raise ConfigError(f"steps= feeds outputs back as inputs, which needs inputs == outputs; this surrogate "
                                  f"maps {self.inputs} to {self.outputs}")
        dims = ds[self.inputs[0]].dims
        lead_dims = dims[: len(dims) - grid.ndim]
        view, keep, past = ds, None, None  # view: the frames predicted (those with their history)
        if self.history > 1:
            if "time" not in lead_dims or "time" not in ds.coords:
                raise DataError(f"{source}: this surrogate takes {self.history} frames "
                                f"{timing.format_lead(self.lead_time, self.time_units)} apart (history={self.history}); "
                                f"{self.inputs[0]!r} needs a 'time' dim with coordinate values, it has dims {dims}")
            keep, past = _history_index(ds["time"], self.lead_time, self.history, source=source, units=self.time_units)
            view = ds.isel(time=keep)
        lead_shape = tuple(view.sizes[d] for d in lead_dims)
        frames_per_sample = int(np.prod(lead_shape[1:], dtype=np.int64)) if lead_dims else 1
        n_blocks_dim = lead_shape[0] if lead_dims else 1
        per_read = max(1, batch_size // max(frames_per_sample, 1))
        out_lead = (*lead_shape, *((steps,) if steps is not None else ()))
        needed = 4 * len(self.outputs) * float(np.prod(out_lead, dtype=np.float64)) * float(np.prod(grid.shape))
        check_memory(needed, what=f"{source}: the prediction ({len(self.outputs)} float32 output(s) over "
                                  f"{dict(zip((*lead_dims, *(('lead_time',) if steps is not None else ())), out_lead))} "
                                  f"frames of {'x'.join(map(str, grid.shape))})",
                     fix=f"predict a part at a time (ds.isel({lead_dims[0]}=slice(start, stop)), about "
                         f"{format_bytes(needed / max(out_lead[0], 1))} per {lead_dims[0]}), or stream a rollout to disk "
                         "with sciml forecast --out")
        outputs = {name: np.empty((*out_lead, *grid.shape), dtype=np.float32) for name in self.outputs}
        module = self._module_on(device)
        for start in range(0, n_blocks_dim, per_read):
            stop = min(start + per_read, n_blocks_dim)
            if self.history == 1:
                block = ds.isel({lead_dims[0]: slice(start, stop)}) if lead_dims else ds
                stacked = stack_fields(block, self.inputs)  # (*lead, channel, *space), finite-checked
            else:
                stacked = self._history_block(ds, lead_dims, keep, past, start, stop)
            flat = stacked.reshape(-1, *stacked.shape[len(lead_dims):])  # (frames, channel, *space)
            pred = _apply(module, flat, steps, batch_size, keep=self._kept_channels)
            pred = pred.reshape(stop - start, *out_lead[1:], *pred.shape[1 + (steps is not None):]).numpy()
            for i, name in enumerate(self.outputs):
                outputs[name][start:stop] = np.take(pred, i, axis=len(out_lead))
        ds = view
        coords = {d: ds[d] for d in dims if d in ds.coords}
        out_dims = (*lead_dims, *(("lead_time",) if steps is not None else ()), *dims[len(lead_dims):])
        time_units = self.time_units or (ds["time"].attrs.get("units", "1") if "time" in ds.coords else "1")
        if steps is not None:
            coords["lead_time"] = timing.lead_time_coord(self.lead_time, steps, units=time_units)
            if "time" in coords:
                coords["valid_time"] = timing.valid_time_coord(ds["time"], coords["lead_time"], source=source)
        elif self.lead_time is not None:
            coords["lead_time"] = timing.lead_time_coord(self.lead_time, 1, units=time_units).squeeze("lead_time", drop=True)
            if "time" in ds.coords:  # a scalar for one frame selected with isel(time=k)
                valid = timing.shift(_as_1d(ds["time"]), self.lead_time, source=source, units=self.time_units)
                valid = valid.rename("valid_time").assign_attrs(long_name="valid time: time + lead_time")
                coords["valid_time"] = valid if ds["time"].ndim else valid.squeeze("time", drop=True)
                if not ds["time"].ndim:
                    coords["time"] = ds["time"]
        from .data.cf import derived_attrs

        data_vars = {}
        for name in self.outputs:
            attrs = derived_attrs(ds[name].attrs if name in ds else {}, units=self.units.get(name, "1"), name=name)
            data_vars[name] = (out_dims, outputs[name], attrs)
        history = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}: predicted by sciml {__version__} surrogate"
        attrs = {**ds.attrs, "history": "\n".join(filter(None, [ds.attrs.get("history"), history]))}
        result = xr.Dataset(data_vars, coords=coords, attrs=attrs)
        return result.isel(sample=0, drop=True) if single else result

    def _history_block(self, ds: xr.Dataset, lead_dims: tuple[str, ...], keep: np.ndarray, past: np.ndarray,
                       start: int, stop: int) -> torch.Tensor:
        """The model inputs ``(*lead, input_channels, *space)`` of predicted frames ``start:stop`` along
        ``lead_dims[0]`` (of the frames with their history): past frames of the history variables, oldest
        first, then every input at the frame's time; only the times they use are read."""
        axis, channel = lead_dims.index("time"), len(lead_dims)
        if lead_dims[0] == "time":  # blocks of predicted times: read the frames they and their history use
            keep, past = keep[start:stop], past[start:stop]
            needed = np.unique(np.concatenate([keep, past.ravel()]))
            block = ds.isel(time=needed)
            keep, past = np.searchsorted(needed, keep), np.searchsorted(needed, past)
        else:  # blocks of samples, every time read
            block = ds.isel({lead_dims[0]: slice(start, stop)})
        stacked = stack_fields(block, self.inputs)  # (*lead, channel, *space), finite-checked
        state = torch.tensor([self.inputs.index(v) for v in self.history_variables])
        frames = [stacked.index_select(axis, torch.from_numpy(past[:, j])).index_select(channel, state)
                  for j in range(self.history - 1)]
        return torch.cat([*frames, stacked.index_select(axis, torch.from_numpy(keep))], dim=channel)

    def export(self, path: str | os.PathLike) -> Path:
        """Save the operator as a ``torch.export`` program that runs with torch alone (no sciml).

        The program maps physical ``(batch, c_in, *space)`` float32 fields to ``(batch, c_out, *space)``
        for any batch size and any grid size the network supports (dynamic shapes). Load it with
        :func:`sciml.load_exported` (which refuses archives that could run code: safe for files from others)
        or, for your own files, ``torch.export.load(path).module()``. Written atomically; beside it,
        ``<path>.sha256`` holds the archive's SHA-256 in ``sha256sum`` format, which is also recorded in
        ``provenance["export"]`` (kept by the next :meth:`save`). The surrogate itself is not moved.
        """
        from torch.export import Dim, export

        path = Path(path)
        if not path.parent.is_dir():
            raise DataError(f"{path}: directory {path.parent} does not exist; create it first")
        module = self._module_on("cpu")
        example = torch.randn(2, self.input_channels, *self.grid.shape)
        with _plain_einsum():  # neuraloperator's opt_einsum path fixes the batch size while tracing
            program = export(module, (example,), dynamic_shapes=({i: Dim.AUTO for i in [0, *range(2, example.ndim)]},))
        buffer = io.BytesIO()  # archived under a neutral root name, not the temporary file's
        torch.export.save(program, buffer)
        archive = buffer.getvalue()
        digest = hashlib.sha256(archive).hexdigest()
        write_bytes(path, archive)
        write_text(path.with_name(f"{path.name}.sha256"), f"{digest}  {path.name}\n")
        self.provenance["export"] = {"file": path.name, "sha256": digest, "torch_version": torch.__version__}
        return path

    # ------------------------------------------------------------------ persistence
    def manifest(self) -> dict:
        return {"format_version": FORMAT_VERSION, "sciml_version": __version__, "model": self.model,
                "model_options": _json_options(self.model, self.model_options), "inputs": self.inputs,
                "outputs": self.outputs, "units": self.units, "grid": self.grid.to_json(),
                "lead_time": timing.lead_to_json(self.lead_time, self.time_units), "origin": self.origin,
                "history": self.history, "provenance": self.provenance}

    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``manifest.json`` + ``weights.pt`` into ``directory`` atomically (staging directory, rename)."""
        return write_model_directory(directory, self.manifest(), self.module, overwrite=overwrite)

    @classmethod
    def load(cls, directory: str | os.PathLike, *, device: str | torch.device = "cpu") -> Surrogate:
        """Read a surrogate written by :meth:`save`, with its module on ``device`` (``"auto"``: CUDA when present).

        Models registered by the user (:func:`sciml.models.register_model`) must be registered again, under
        the same name, before loading. The weights are read with ``torch.load(weights_only=True)`` (tensors
        only, no code) and checked against the manifest: every tensor present with the model's shape, finite,
        normalisation scales positive; anything else is a :class:`DataError` naming the file and the tensor.
        """
        directory = Path(directory)
        if is_partial(directory):
            raise DataError(partial_message(directory))
        manifest_path, weights_path = directory / "manifest.json", directory / "weights.pt"
        if not manifest_path.is_file() or not weights_path.is_file():
            raise DataError(f"{directory}: not a saved surrogate (needs manifest.json and weights.pt)")
        manifest = _read_manifest(manifest_path)
        device = resolve_device(device)
        try:
            network = build(manifest["model"], **manifest["model_options"])
        except SciMLError:
            raise
        except (TypeError, ValueError, RuntimeError) as error:
            raise DataError(f"{manifest_path}: cannot build model {manifest['model']!r} from its model_options "
                            f"({' '.join(str(error).split())[:200]})") from None
        history = manifest.get("history", 1)  # manifests before history inputs: one frame
        if isinstance(history, bool) or not isinstance(history, int) or history < 1:
            raise DataError(f"{manifest_path}: history {history!r} is not a positive whole number of frames; "
                            "re-save the surrogate")
        shared = [v for v in manifest["inputs"] if v in manifest["outputs"]]
        if history > 1 and (not shared or manifest.get("lead_time") is None):
            raise DataError(f"{manifest_path}: history {history} needs a lead_time and inputs that are also outputs; "
                            "re-save the surrogate")
        channels = (history - 1) * len(shared) + len(manifest["inputs"])
        module = NormalizedOperator(network, channels, len(manifest["outputs"]))
        try:
            module.load_state_dict(_read_weights(weights_path, module, device))
        except RuntimeError as error:  # e.g. complex weights for a real parameter
            raise DataError(f"{weights_path}: does not hold the weights of this model "
                            f"({' '.join(str(error).split())})"[:400]) from None
        lead, units = timing.lead_from_json(manifest.get("lead_time"), source=str(manifest_path))
        try:
            grid = Grid.from_json(manifest["grid"])
        except SciMLError as error:
            raise DataError(f"{manifest_path}: {error}") from None
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"{manifest_path}: unreadable grid {manifest['grid']} "
                            f"({type(error).__name__}: {error})") from None
        return cls(module=module.to(device).eval(), inputs=manifest["inputs"], outputs=manifest["outputs"],
                   grid=grid, units=manifest["units"], model=manifest["model"],
                   model_options=manifest["model_options"], lead_time=lead, time_units=units,
                   origin=manifest.get("origin"), provenance=manifest["provenance"], history=history)


_MANIFEST_FIELDS = {"model": str, "model_options": dict, "inputs": list, "outputs": list, "units": dict, "grid": dict,
                    "provenance": dict}


def _read_manifest(path: Path) -> dict:
    """The JSON object of a surrogate's ``manifest.json``, with the fields :meth:`Surrogate.load` needs."""
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: unreadable surrogate manifest ({error}); re-save the surrogate") from None
    if not isinstance(manifest, dict):
        raise DataError(f"{path}: not a surrogate manifest (a JSON {type(manifest).__name__}, not an object); "
                        "re-save the surrogate")
    if manifest.get("format_version") not in (1, FORMAT_VERSION):
        raise DataError(f"{path.parent}: surrogate format {manifest.get('format_version')} is not supported "
                        f"(expected {FORMAT_VERSION})")
    for key, kind in _MANIFEST_FIELDS.items():
        if key not in manifest:
            raise DataError(f"{path}: surrogate manifest lacks {key!r}; re-save the surrogate")
        if not isinstance(manifest[key], kind):
            raise DataError(f"{path}: surrogate manifest field {key!r} is a {type(manifest[key]).__name__}, not a "
                            f"{kind.__name__}; re-save the surrogate")
    for key in ("inputs", "outputs"):
        if not manifest[key] or not all(isinstance(name, str) for name in manifest[key]):
            raise DataError(f"{path}: surrogate manifest field {key!r} must be a non-empty list of variable names, "
                            f"got {manifest[key]!r}")
    return manifest


def _read_weights(path: Path, module: nn.Module, device: torch.device) -> dict[str, torch.Tensor]:
    """The tensors of ``weights.pt`` (``weights_only=True``), checked to be ``module``'s state: names, shapes,
    finite values and positive normalisation scales."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # truncated zip, a pickle weights_only refuses, an empty file: all mean "unreadable"
        text = str(error).strip().splitlines()
        raise DataError(f"{path}: unreadable surrogate weights ({type(error).__name__}: {text[0][:200] if text else ''}); "
                        "re-save the surrogate") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise DataError(f"{path}: not a dict of named tensors; re-save the surrogate")
    expected = module.state_dict()
    missing, extra = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    if missing or extra:
        found = "; ".join(filter(None, [missing and f"lacks tensors {missing[:3]}",
                                        extra and f"has unexpected tensors {extra[:3]}"]))
        raise DataError(f"{path}: {found} for the model in manifest.json; "
                        "the weights and manifest.json do not belong together")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise DataError(f"{path}: tensor {name!r} has shape {tuple(tensor.shape)}, the model in manifest.json needs "
                            f"{tuple(expected[name].shape)}; the weights and manifest.json do not belong together")
        if (tensor.is_floating_point() or tensor.is_complex()) and not bool(torch.isfinite(tensor).all()):
            raise DataError(f"{path}: tensor {name!r} has NaN/Inf values; the weights are corrupt: re-save or retrain")
    for name in ("input_norm.std", "output_norm.std"):
        if not bool((state[name] > 0).all()):
            raise DataError(f"{path}: tensor {name!r} (normalisation scales) holds {state[name].tolist()}; scales must be "
                            "positive: the weights are corrupt, re-save or retrain")
    return state


def _as_1d(time: xr.DataArray) -> xr.DataArray:
    """A time coordinate as 1-D (a frame selected with ``isel(time=k)`` leaves a scalar)."""
    return time if time.ndim else time.expand_dims("time")


def _origin(ds: xr.Dataset, grid: Grid) -> dict[str, float]:
    """The first point along each axis in grid steps from 0, ``x_0 / (x_1 - x_0)``: the same at every
    resolution for a given layout (not latitude, whose nodes the grid's kind fixes)."""
    offsets = {}
    for d in grid.dims:
        if d != "lat":
            x = np.asarray(ds[d].values[:2], dtype=np.float64)
            offsets[d] = float(x[0] / (x[1] - x[0]))
    return offsets


def _history_index(time: xr.DataArray, lead, history: int, *, source: str,
                   units: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Which frames of a 1-D ``time`` coordinate a history model can start from, and their past frames.

    Returns ``(keep, past)``: the indices of the times ``t`` whose ``history - 1`` past frames ``t - j lead``
    (``j = history-1, ..., 1``) are all in ``time`` (float times within a relative 1e-6 of ``lead``, calendar
    times exactly), and ``(len(keep), history - 1)`` indices of those frames, oldest first. A
    :class:`DataError` naming the file and the missing times when no time has them.
    """
    import pandas as pd

    kind = timing.check_same_kind(time, lead, source=source, units=units)
    lead = timing.as_lead(lead)
    values = np.asarray(time.values)
    if kind == "float":
        values = values.astype(np.float64)
    past = np.full((values.size, history - 1), -1, dtype=np.int64)
    targets = []
    for column, j in enumerate(range(history - 1, 0, -1)):
        if kind == "float":
            target = values - j * lead
            order = np.argsort(values, kind="stable")
            ordered = values[order]
            tolerance = 1e-6 * abs(lead) * j
            for candidate in (np.searchsorted(ordered, target) - 1, np.searchsorted(ordered, target)):
                candidate = np.clip(candidate, 0, values.size - 1)
                hit = np.abs(ordered[candidate] - target) <= tolerance
                past[hit, column] = order[candidate[hit]]
        else:
            offset = (lead * j).to_timedelta64() if kind == "datetime64" else (lead * j).to_pytimedelta()
            target = values - offset
            index = pd.Index(values)
            if not index.is_unique:
                raise DataError(f"{source}: the time coordinate repeats values; a history model needs distinct times")
            past[:, column] = index.get_indexer(pd.Index(target))
        targets.append(target)
    keep = np.flatnonzero((past >= 0).all(axis=1))
    if keep.size == 0:
        def show(value) -> str:
            return f"{value:.10g}" if kind == "float" else str(value)
        last = values.size - 1
        missing = [show(t[last]) for t, column in zip(targets, past.T) if column[last] < 0]
        raise DataError(f"{source}: the surrogate takes {history} frames {timing.format_lead(lead, units)} apart "
                        f"(history={history}), and no time has all of its past frames; for the last time "
                        f"{show(values[last])} the file lacks time(s) {', '.join(missing)}: give the "
                        f"{history - 1} frame(s) before each initial time")
    return keep, past[keep]


def _check_batch_size(batch_size) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1 (frames per forward pass), got {batch_size!r}")


def _apply(module: nn.Module, fields: torch.Tensor, steps: int | None, batch_size: int, *,
           keep: int = 0) -> torch.Tensor:
    """``module`` on ``(frames, c_in, *space)`` in chunks, ``steps`` times autoregressively if given; on the CPU.

    ``keep``: channels of the input that the next input keeps (a history model: its last ``keep`` channels,
    moved towards the past, before the newest output); 0: the output is the next input.
    """
    parameter = next(module.parameters())
    chunks = []
    with torch.no_grad():
        for chunk in fields.split(batch_size):
            state = chunk.to(device=parameter.device, dtype=parameter.dtype)
            if steps is None:
                chunks.append(module(state).cpu())
                continue
            trajectory = []
            for _ in range(steps):
                pred = module(state)
                state = torch.cat([state[:, state.shape[1] - keep:], pred], dim=1) if keep else pred
                trajectory.append(pred.cpu())
            chunks.append(torch.stack(trajectory, dim=1))
    return torch.cat(chunks)


def _json_options(model: str, options: dict) -> dict:
    """The model options as JSON (tuples as lists); a one-line error for values JSON cannot hold."""
    clean = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
    try:
        json.dumps(clean)
    except TypeError as error:
        raise ConfigError(f"model {model!r}: options must be JSON values to be saved with the surrogate ({error})") from None
    return clean


def fit_surrogate(
    train: xr.Dataset,
    *,
    inputs: Sequence[str],
    outputs: Sequence[str],
    lag: int | None = None,
    history: int = 1,
    validation: xr.Dataset | None = None,
    model: str = "fno",
    model_options: dict | None = None,
    loss: str = "rel_l2",
    config: TrainConfig = TrainConfig(),
    block_size: int | None = None,
    log_path: str | os.PathLike | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
) -> tuple[Surrogate, list[dict]]:
    """Train a surrogate on a canonical dataset through :func:`sciml.train.fit` with a :class:`SurrogateTask`.

    Two kinds of map:

    * ``lag=None``: ``inputs -> outputs`` frame by frame (an operator between fields; every ``(sample,
      time)`` frame is a pair when the fields have a time axis).
    * ``lag=k``: a time-stepping map ``inputs(t) -> outputs(t + k dt)`` on ``(sample, time, ...)``
      trajectories; the surrogate's ``lead_time`` is ``k dt`` (a timedelta for datetime64/cftime time).
    * ``lag=k, history=h``: the map takes the state at ``h`` times, ``state(t - (h-1) k dt), ...,
      state(t - k dt), state(t)`` and the other inputs at ``t`` to ``outputs(t + k dt)``, for dynamics
      that one frame does not determine (a wave, whose velocity two frames carry). The state is the
      inputs that are also outputs (in input order); static fields and forcings among the inputs enter at
      ``t`` only. The network's input stacks the frames along channels, oldest first:
      ``[state(t - (h-1) k dt), ..., state(t - k dt), inputs(t)]``, ``(h - 1) P + C_in`` channels for
      ``P`` state variables (``h C_in`` when inputs equal outputs); the normalisation of a past frame is
      its variable's. Each trajectory gives ``T - h k`` pairs (its first ``(h-1) k`` frames serve only as
      history). ``history`` is recorded in the manifest and restored by :meth:`Surrogate.load`.

    The data stream: ``train`` and ``validation`` may be lazily opened files larger than memory
    (:func:`sciml.data.open`); batches are read as they are needed (:class:`sciml.data.OperatorPairs`),
    the normalisation statistics in one streaming pass. Any registered model works (``model``; see
    :func:`sciml.models.register_model`); the options it chooses for the training grid
    (:func:`sciml.models.defaults_for`: Fourier modes, the boundary treatment, the spherical nodes) fill
    what ``model_options`` leaves out. ``checkpoint_dir``/``resume`` are passed to :func:`sciml.train.fit`:
    a killed run restarted with ``resume=True`` continues and ends identical to an uninterrupted one.

    Args:
        train, validation: canonical datasets with the input and output variables (validation: when
            given, the surrogate keeps the epoch with the lowest validation loss).
        inputs, outputs: variable names (channels, in order).
        lag, history: see above (``history=1``: one frame).
        model, model_options: a registered model and options for it.
        loss: ``"rel_l2"`` or ``"h1"`` (see :class:`SurrogateTask`).
        config: training options.
        block_size: shuffle blocks of this many consecutive items (:class:`sciml.data.ChunkShuffleSampler`),
            so a batch from a file on disk is a few contiguous reads; ``None``: a full shuffle.
        log_path: JSON line per epoch.

    Returns:
        The surrogate, on the training device, and the training :class:`~sciml.train.History`.
    """
    from .data import ChunkShuffleSampler, OperatorPairs
    from .data.io import file_sha256
    from .data.statistics import channel_statistics

    inputs, outputs = list(inputs), list(outputs)
    if not inputs or not outputs:
        raise ConfigError(f"give at least one input and one output variable, got inputs={inputs}, outputs={outputs}")
    grid = grid_of(train)
    source = source_name(train)
    require_variables(train, dict.fromkeys(inputs + outputs), purpose="training")
    lead_time = time_units = None
    if isinstance(history, bool) or not isinstance(history, (int, np.integer)) or history < 1:
        raise ConfigError(f"history must be a positive integer (frames of the state in the input), got {history!r}")
    history = int(history)
    if history > 1 and lag is None:
        raise ConfigError(f"history={history} stacks past frames of a time-stepping map; it needs lag=")
    if lag is not None:
        if isinstance(lag, bool) or not isinstance(lag, int) or lag < 1:
            raise ConfigError(f"lag must be a positive integer (time steps), got {lag!r}")
        for ds in (train, validation) if validation is not None else (train,):
            if "time" not in ds.dims or "time" not in ds.coords:
                raise DataError(f"{source_name(ds)}: lag={lag} needs a 'time' dimension with coordinate values; "
                                f"the file has dims {tuple(map(str, ds.dims))}")
        lead_time = timing.uniform_step(train["time"], source=source) * lag
        time_units = timing.time_units(train["time"], source=source)
    pairs = OperatorPairs(train, inputs=inputs, outputs=outputs, lag=lag, history=history)
    val_pairs = None
    if validation is not None:
        val_grid = grid_of(validation)
        if not val_grid.same_domain(grid):
            raise DataError(f"{source_name(validation)}: the validation data cover another domain than the training data")
        require_variables(validation, dict.fromkeys(inputs + outputs), purpose="validation")
        if lag is not None:
            val_lag = timing.lag_for(validation["time"], lead_time, source=source_name(validation), units=time_units)
            if val_lag != lag:
                raise DataError(f"{source_name(validation)}: its time step puts the lead time "
                                f"{timing.format_lead(lead_time, time_units)} {val_lag} steps apart, the training file {lag}")
        val_pairs = OperatorPairs(validation, inputs=inputs, outputs=outputs, lag=lag, history=history)
    sampler = None if block_size is None else ChunkShuffleSampler(len(pairs), block_size=block_size, seed=config.seed)

    seed_everything(config.seed)
    given = dict(model_options or {})
    state = pairs.history_variables if history > 1 else []
    channels = (history - 1) * len(state) + len(inputs)  # past frames of the state, oldest first, then inputs(t)
    options = {"in_channels": channels, "out_channels": len(outputs), **defaults_for(model, grid, given), **given}
    module = NormalizedOperator(build(model, **options), channels, len(outputs))
    # Statistics over the whole training file in one streaming pass, stored with the model.
    input_stats = channel_statistics(train, inputs)
    output_stats = channel_statistics(train, outputs)
    if history == 1:
        module.input_norm.set(input_stats.mean, input_stats.std)
    else:  # a past frame is normalised as its variable is
        mean, std = np.asarray(input_stats.mean, dtype=np.float64), np.asarray(input_stats.std, dtype=np.float64)
        rows = [inputs.index(v) for v in state] * (history - 1) + list(range(len(inputs)))
        module.input_norm.set(mean[rows], std[rows])
    module.output_norm.set(output_stats.mean, output_stats.std)

    start = time.perf_counter()
    history = fit(SurrogateTask(module, grid=grid, loss=loss), pairs, val_data=val_pairs, config=config,
                  sampler=sampler, log_path=log_path, checkpoint_dir=checkpoint_dir, resume=resume)
    units = {name: train[name].attrs.get("units", "1") for name in dict.fromkeys(inputs + outputs)}
    path = Path(source)
    provenance = {"data_source": source, "data_sha256": file_sha256(path) if path.is_file() else None,
                  "n_train_pairs": len(pairs), "train_config": asdict(config), "loss": loss, "block_size": block_size,
                  "history": pairs.history,
                  # summed over resumes (the loop's clock continues the checkpoint's), else this call's wall time
                  "train_seconds": (history.train_seconds if getattr(history, "train_seconds", None) is not None
                                    else time.perf_counter() - start), "epochs_run": len(history),
                  "stop_reason": history.stop_reason, "torch_version": torch.__version__, "sciml_version": __version__,
                  "final_train_loss": history[-1]["train_loss"] if history else math.nan,
                  "loss_trend_per_epoch": history.trend("val_loss" if val_pairs is not None else "train_loss"),
                  "physics": physics_record(train, grid),  # compared with an evaluated file's by evaluate()
                  "normalisation": {**input_stats.as_dict(), **output_stats.as_dict()}}
    best_val = min((r["val_loss"] for r in history if "val_loss" in r), default=None)
    # rel_l2 and h1 are relative: the zero field scores 1 (under anomaly_rel_l2 it is the training mean that does)
    for line in training_warnings(history, val_error=best_val, zero_error=None if loss == "anomaly_rel_l2" else 1.0):
        warnings.warn(f"fit_surrogate: {line}", stacklevel=2)
    surrogate = Surrogate(module=module, inputs=inputs, outputs=outputs, grid=grid, units=units, model=model,
                          model_options=options, lead_time=lead_time, time_units=time_units,
                          origin=_origin(train, grid), provenance=provenance, history=pairs.history)
    return surrogate, history
