"""Torch datasets over canonical xarray datasets: lazy reads, trajectory splits, chunk-aware shuffling.

Items are read from the file only when asked for, so a dataset larger than memory streams. Every
dataset implements ``__getitems__`` (used by ``DataLoader`` for whole batches): the requested indices
are grouped into runs that are contiguous along ``sample``, and each run is one read. Paired with
:class:`ChunkShuffleSampler`, which shuffles blocks of consecutive indices, a batch costs a few large
reads instead of one small read per item. Datasets pickle (the xarray dataset reopens its file in each
``DataLoader`` worker) and work with ``torch.utils.data.DistributedSampler``.

Layouts: :class:`OperatorPairs` gives ``(inputs (C_in, *space), outputs (C_out, *space))`` per sample
(or per sample and time, or per time and the time ``lag`` steps later); :class:`TrajectoryWindows` gives
``(history (h, C, *space), future (k, C, *space))`` windows of each trajectory. Items can also carry
their times (``TrajectoryWindows(times=True)``: offsets from the window's first frame, float64, in the
file's time units or in seconds for calendar time) and the sample's PDE parameters
(``parameters=["viscosity", ...]``: the values of those ``sample`` coordinates, float64), appended in
that order: ``(inputs, outputs[, times][, parameters])``. Only the time steps the requested items use
are read.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..errors import ConfigError, DataError
from ._layout import SPACE_ORDER, check_finite, read_values, require_variables, source_name
from .tensors import in_canonical_order

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["OperatorPairs", "TrajectoryWindows", "ChunkShuffleSampler", "split_by_trajectory"]


def split_by_trajectory(
    ds: xr.Dataset, fractions: Mapping[str, float], *, seed: int = 0
) -> dict[str, xr.Dataset]:
    """Split along ``sample`` only, so no trajectory contributes time steps to two splits.

    Args:
        ds: canonical dataset with a ``sample`` dim.
        fractions: split name -> fraction, summing to 1, e.g. ``{"train": 0.8, "val": 0.1, "test": 0.1}``.
        seed: seeds the permutation of samples (the same seed gives the same splits).

    Returns:
        split name -> ``ds`` restricted to its samples (kept in file order, so reads stay sequential).
    """
    source = source_name(ds)
    if "sample" not in ds.dims:
        raise DataError(f"{source}: no 'sample' dim to split along; open the file with sciml.data.open")
    if any(f < 0 for f in fractions.values()) or not math.isclose(sum(fractions.values()), 1.0, abs_tol=1e-9):
        raise ConfigError(f"split fractions must be non-negative and sum to 1, got {dict(fractions)}")
    n = ds.sizes["sample"]
    counts = np.floor(np.array(list(fractions.values())) * n + 1e-9).astype(int)  # 2/24 * 24 is 1.999...9
    counts[np.argmax(list(fractions.values()))] += n - counts.sum()  # remainder to the largest split
    empty = [name for name, c, f in zip(fractions, counts, fractions.values()) if c == 0 and f > 0]
    if empty:
        raise DataError(f"{source}: {n} samples leave split(s) {empty} empty; use more samples or other fractions")
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return {name: ds.isel(sample=np.sort(order[a:b])) for name, a, b in zip(fractions, bounds[:-1], bounds[1:])}


def _space_dims(ds: xr.Dataset, variables: Sequence[str]) -> tuple[str, ...]:
    source = source_name(ds)
    require_variables(ds, variables)
    space = tuple(d for d in ds[variables[0]].dims if d in SPACE_ORDER)
    for name in variables:
        if tuple(d for d in ds[name].dims if d in SPACE_ORDER) != space:
            raise DataError(f"{source}: variable {name!r} has dims {ds[name].dims}, {variables[0]!r} has {ds[variables[0]].dims}")
    if not space:
        raise DataError(f"{source}: variable {variables[0]!r} has no spatial dims among {SPACE_ORDER}; pass dims= to sciml.data.open")
    for name in variables:  # an item holds one field per variable: another dim would be read at index 0 only
        extra = [d for d in ds[name].dims if d not in ("sample", "time", *space)]
        if extra:
            d = extra[0]
            raise DataError(f"{source}: variable {name!r} has the dim {d!r} ({ds.sizes[d]} values) besides sample, time "
                            f"and space; make each {d} a channel with sciml.data.stack_levels(ds, dim={d!r}) or select "
                            f"one, e.g. ds.isel({d}=0)")
    return space


class _LazyFields(Dataset):
    """Shared machinery: reads ``(samples, [times,] *space)`` blocks of several variables and checks them.

    Subclasses know, for item indices, the sample of each item and the span ``[start, stop)`` of time
    indices it uses; :meth:`_read_items` reads the frames they use and no others, in as few reads as it
    can (see there).
    """

    def __init__(self, ds: xr.Dataset, variables: Sequence[str], *, crop: tuple[int, ...] | None, seed: int,
                 dtype: torch.dtype, parameters: Sequence[str] = ()) -> None:
        if "sample" not in ds.dims:
            raise DataError(f"{source_name(ds)}: no 'sample' dim; open the file with sciml.data.open")
        ds = in_canonical_order(ds)  # items are (channel, [time,] *space) whatever the order of an in-memory dataset
        self.ds = ds
        self.source = source_name(ds)
        self.space = _space_dims(ds, variables)
        self.dtype = dtype
        self.seed = seed
        self.epoch = 0
        shape = tuple(ds.sizes[d] for d in self.space)
        if crop is not None:
            crop = tuple(int(c) for c in crop)
            if len(crop) != len(shape) or any(not 1 <= c <= n for c, n in zip(crop, shape)):
                raise ConfigError(f"crop {crop} does not fit the spatial shape {shape} ({', '.join(self.space)})")
        self.crop = crop
        self.parameters = list(parameters)
        self._parameter_values = _parameter_values(ds, self.parameters)  # (sample, parameter) float64

    def set_epoch(self, epoch: int) -> None:
        """Draw different random crops each epoch (same contract as ``DistributedSampler.set_epoch``)."""
        self.epoch = int(epoch)

    def _read(self, name: str, samples: slice, times: slice | None) -> np.ndarray:
        """``(n_samples, [n_times,] *space)`` values of one variable, checked finite."""
        var = self.ds[name].variable
        key = {"sample": samples, **({"time": times} if times is not None else {})}
        indexers = tuple(key.get(d, 0 if d not in self.space else slice(None)) for d in var.dims)
        offsets = {"sample": samples.start, "time": times.start if times is not None else 0}
        return check_finite(read_values(var[indexers]), source=self.source, name=name,
                            dims=tuple(d for d in var.dims if d in key or d in self.space), offsets=offsets)

    def _checked(self, indices: Sequence[int]) -> np.ndarray:
        """``indices`` as int64, each in ``[0, len(self))`` (``IndexError`` otherwise)."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} items")
        return indices

    def _read_items(self, samples: np.ndarray, variables: Sequence[str], starts: np.ndarray | None = None,
                    stops: np.ndarray | None = None) -> list[tuple[dict[str, np.ndarray], int, int]]:
        """Read what items use: for item ``i`` of sample ``samples[i]`` (and time steps ``starts[i]`` to
        ``stops[i]``), ``(values by variable, its row in them, the first time index read)``.

        Each sample's time spans are merged where they overlap or touch, and consecutive samples with the
        same span are read together: a batch of a chunk-shuffled block, or of pairs of short
        trajectories, is one read, and a batch of scattered windows of one long trajectory reads only
        those windows' frames.
        """
        blocks: list[list] = []  # [first sample, last sample, time slice or None, item indices]
        if starts is None:
            order = np.argsort(samples, kind="stable")
            for i in order.tolist():
                s = int(samples[i])
                if blocks and s - blocks[-1][1] in (0, 1):
                    blocks[-1][1] = s
                    blocks[-1][3].append(i)
                else:
                    blocks.append([s, s, None, [i]])
        else:
            order = np.lexsort((starts, samples))
            spans: list[list] = []  # [sample, start, stop, items], merged within a sample
            for i in order.tolist():
                s, a, b = int(samples[i]), int(starts[i]), int(stops[i])
                if spans and spans[-1][0] == s and a <= spans[-1][2]:
                    spans[-1][2] = max(spans[-1][2], b)
                    spans[-1][3].append(i)
                else:
                    spans.append([s, a, b, [i]])
            for s, a, b, items in spans:
                if blocks and blocks[-1][1] == s - 1 and blocks[-1][2] == slice(a, b):
                    blocks[-1][1] = s
                    blocks[-1][3] += items
                else:
                    blocks.append([s, s, slice(a, b), items])
        out: list = [None] * len(samples)
        for first, last, times, items in blocks:
            read = {v: self._read(v, slice(first, last + 1), times) for v in dict.fromkeys(variables)}
            for i in items:
                out[i] = (read, int(samples[i]) - first, 0 if times is None else times.start)
        return out

    def _crop(self, tensor: torch.Tensor, index: int) -> torch.Tensor:
        """A random window of size ``crop`` over the trailing spatial dims (same window for all channels)."""
        if self.crop is None:
            return tensor
        rng = np.random.default_rng((self.seed, self.epoch, index))
        for axis, size in enumerate(self.crop, start=tensor.ndim - len(self.crop)):
            start = int(rng.integers(0, tensor.shape[axis] - size + 1))
            tensor = tensor.narrow(axis, start, size)
        return tensor

    def _channels(self, frames: list[np.ndarray]) -> torch.Tensor:
        """``(channel, ...)`` tensor from per-channel frames ``(...)``, in the dataset's dtype (a view if possible)."""
        stacked = frames[0][None] if len(frames) == 1 else np.stack(frames)
        if any(stride < 0 for stride in stacked.strides):  # a flipped axis (latitude made ascending at open)
            stacked = np.ascontiguousarray(stacked)
        return torch.from_numpy(stacked).to(self.dtype)

    def _extras(self, sample: int) -> tuple[torch.Tensor, ...]:
        return (torch.from_numpy(self._parameter_values[sample]),) if self.parameters else ()

    def __getitem__(self, index: int):
        return self.__getitems__([index])[0]


def _parameter_values(ds: xr.Dataset, names: Sequence[str]) -> np.ndarray:
    """``(sample, len(names))`` float64 values of per-sample coordinates, or of scalar coordinates/attributes
    (the same for every sample)."""
    n = ds.sizes["sample"]
    columns = []
    for name in names:
        if name in ds.variables and ds[name].dims == ("sample",):
            values = np.asarray(ds[name].values)
        elif name in ds.variables and ds[name].ndim == 0:
            values = np.full(n, ds[name].values)
        elif name in ds.attrs and np.ndim(ds.attrs[name]) == 0:
            values = np.full(n, ds.attrs[name])
        else:
            along = sorted(str(k) for k, v in ds.variables.items() if v.dims == ("sample",) and k != "sample")
            raise DataError(f"{source_name(ds)}: parameter {name!r} is neither a coordinate along 'sample' nor a scalar "
                            f"attribute; per-sample coordinates: {along}")
        if values.dtype.kind not in "biuf":
            raise DataError(f"{source_name(ds)}: parameter {name!r} is not numeric (dtype {values.dtype})")
        columns.append(values.astype(np.float64))
    return np.stack(columns, axis=1) if columns else np.zeros((n, 0))


class OperatorPairs(_LazyFields):
    """``inputs -> outputs`` pairs: one per sample, per sample and time, or per time and ``lag`` steps later.

    Items are ``(x, y[, parameters])`` with ``x`` of shape ``(len(inputs), *space)`` and ``y`` of shape
    ``(len(outputs), *space)``; with ``crop`` both are cut to the same random window. For fields with a
    time axis, item ``s * T' + t`` is sample ``s`` at time ``t`` (``T' = T``), or with ``lag=k``, inputs
    at time ``t`` and outputs at time ``t + k`` (``T' = T - k``): the pairs of a time-stepping map.

    With ``history=h > 1`` (and ``lag=k``) the input also holds the past frames of the **history
    variables** (the inputs that are also outputs, the prognostic state, in input order): ``x`` is
    ``(P (h - 1) + len(inputs), *space)``, the channels

        ``[hist vars at t - (h-1)k, ..., hist vars at t - k, inputs at t]``

    (oldest first; ``P`` history variables; ``h * len(inputs)`` channels when inputs equal outputs). The
    other inputs (static fields, forcings) enter at time ``t`` only. Item ``s * T' + j`` is then sample
    ``s`` at time ``t = j + (h - 1) k`` (``T' = T - h k``): the first ``(h - 1) k`` frames serve only as
    history. ``history=1`` is the plain pair.

    Args:
        ds: canonical dataset (lazy is fine: only the requested samples and times are read).
        inputs: input variable names (channels, in order).
        outputs: output variable names.
        lag: time steps between the input and the output frame (fields with a time axis).
        history: frames of the history variables in the input, ``lag`` steps apart, the last at the
            input time (see above); needs ``lag``.
        crop: random spatial crop size per item, e.g. ``(32, 32)``; ``None`` for whole fields.
        seed: seeds the crops (with the epoch, see :meth:`set_epoch`, and the item index).
        dtype: tensor dtype of the fields.
        parameters: per-sample PDE parameters to append to each item (see the module docstring).
    """

    def __init__(self, ds: xr.Dataset, *, inputs: Sequence[str], outputs: Sequence[str], lag: int | None = None,
                 history: int = 1, crop: tuple[int, ...] | None = None, seed: int = 0,
                 dtype: torch.dtype = torch.float32, parameters: Sequence[str] = ()) -> None:
        self.inputs, self.outputs = list(inputs), list(outputs)
        if isinstance(history, bool) or not isinstance(history, (int, np.integer)) or history < 1:
            raise ConfigError(f"history must be an integer >= 1 (frames of the state in the input), got {history!r}")
        self.history = int(history)
        self.history_variables = history_variables(self.inputs, self.outputs)
        if self.history > 1 and lag is None:
            raise ConfigError(f"history={history} stacks past frames of a time-stepping map; it needs lag=")
        if self.history > 1 and not self.history_variables:
            raise ConfigError(f"history={history} stacks past frames of the inputs that are also outputs (the state); "
                              f"inputs {self.inputs} and outputs {self.outputs} share none")
        super().__init__(ds, self.inputs + self.outputs, crop=crop, seed=seed, dtype=dtype, parameters=parameters)
        self.timed = "time" in ds[self.inputs[0]].dims
        if lag is not None:
            if not self.timed:
                raise DataError(f"{self.source}: variable {self.inputs[0]!r} has no time axis; lag= needs one")
            if isinstance(lag, bool) or not isinstance(lag, (int, np.integer)) or lag < 1:
                raise ConfigError(f"lag must be an integer >= 1 (time steps between input and output), got {lag!r}")
            if lag >= ds.sizes["time"]:
                fix = (f"use a lag of at most {ds.sizes['time'] - 1}" if ds.sizes["time"] > 1
                       else "use a file with at least two times")
                raise DataError(f"{self.source}: lag {lag} needs more than {lag} time steps, file has "
                                f"{ds.sizes['time']} (the input at step t pairs with the output at t + {lag}); {fix}")
            if self.history * lag >= ds.sizes["time"]:
                raise DataError(f"{self.source}: history={self.history} with lag {lag} needs more than "
                                f"{self.history * lag} time steps (the frames t - {(self.history - 1) * lag} ... t "
                                f"in, t + {lag} out), file has {ds.sizes['time']}; use a shorter history or lag")
        self.lag = int(lag) if lag is not None else 0
        self.past = (self.history - 1) * self.lag  # time steps before the input time that the input reaches
        self.n_times = ds.sizes["time"] - self.lag - self.past if self.timed else 1

    def __len__(self) -> int:
        return self.ds.sizes["sample"] * self.n_times

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, ...]]:
        indices = self._checked(indices)
        samples, times = np.divmod(indices, self.n_times)
        times = times + self.past  # the input time of each item
        spans = (times - self.past, times + self.lag + 1) if self.timed else (None, None)
        reads = self._read_items(samples, self.inputs + self.outputs, *spans)
        items = []
        for index, sample, t, (read, row, t0) in zip(indices.tolist(), samples.tolist(), times.tolist(), reads):
            at_in = (row, t - t0) if self.timed else (row,)
            at_out = (row, t - t0 + self.lag) if self.timed else at_in
            # past frames of the history variables, oldest first, then every input at time t
            frames = [read[v][row, t - t0 - j * self.lag] for j in range(self.history - 1, 0, -1)
                      for v in self.history_variables]
            # Views of the block where a side has one channel; the crop window depends on the index only,
            # so inputs and outputs get the same one.
            x = self._crop(self._channels(frames + [read[v][at_in] for v in self.inputs]), index)
            y = self._crop(self._channels([read[v][at_out] for v in self.outputs]), index)
            items.append((x, y, *self._extras(sample)))
        return items


class TrajectoryWindows(_LazyFields):
    """Windows of each trajectory: ``history`` frames in, the next ``horizon`` frames out.

    Window ``j`` of sample ``s`` starts at time index ``j * stride``; its frames are ``lag`` time
    steps apart. Items are ``(past (history, C, *space), future (horizon, C, *space)[, times
    (history + horizon,)][, parameters])``.

    Args:
        ds: canonical dataset with dims ``(sample, time, *space)``.
        variables: state variables (channels, in order).
        history: frames given to the model.
        horizon: frames to predict.
        stride: time steps between window starts.
        lag: time steps between consecutive frames of a window.
        crop, seed, dtype, parameters: as in :class:`OperatorPairs`.
        times: append the window's times, offsets from its first frame (float64; the file's time units,
            or seconds for datetime64/cftime coordinates), for models of irregularly sampled trajectories.
    """

    def __init__(self, ds: xr.Dataset, *, variables: Sequence[str], history: int = 1, horizon: int = 1,
                 stride: int = 1, lag: int = 1, crop: tuple[int, ...] | None = None, seed: int = 0,
                 dtype: torch.dtype = torch.float32, times: bool = False, parameters: Sequence[str] = ()) -> None:
        self.variables = list(variables)
        super().__init__(ds, self.variables, crop=crop, seed=seed, dtype=dtype, parameters=parameters)
        if "time" not in ds[self.variables[0]].dims:
            raise DataError(f"{self.source}: variable {self.variables[0]!r} has no time axis; use OperatorPairs")
        for name, value in (("history", history), ("horizon", horizon), ("stride", stride), ("lag", lag)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        self.history, self.horizon, self.stride, self.lag = history, horizon, stride, lag
        self.span = (history + horizon - 1) * lag + 1  # time indices one window covers
        n_times = ds.sizes["time"]
        if self.span > n_times:
            raise DataError(
                f"{self.source}: a window of history={history}, horizon={horizon}, lag={lag} spans {self.span} "
                f"time steps; the file has {n_times}"
            )
        self.per_sample = (n_times - self.span) // stride + 1
        self._times = _time_offsets(ds) if times else None

    def __len__(self) -> int:
        return self.ds.sizes["sample"] * self.per_sample

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, ...]]:
        indices = self._checked(indices)
        samples, windows = np.divmod(indices, self.per_sample)
        starts = windows * self.stride
        reads = self._read_items(samples, self.variables, starts, starts + self.span)  # values (s, time, *space)
        items = []
        for index, sample, start, (read, row, t0) in zip(indices.tolist(), samples.tolist(), starts.tolist(), reads):
            frames = slice(start - t0, start - t0 + self.span, self.lag)
            window_data = self._channels([read[v][row, frames] for v in self.variables])  # (C, h + k, *space)
            window_data = self._crop(window_data.transpose(0, 1), index)  # (h + k, C, *space)
            extras = ()
            if self._times is not None:
                t = self._times[start : start + self.span : self.lag]
                extras = (torch.from_numpy(t - t[0]),)
            items.append((window_data[: self.history], window_data[self.history :], *extras, *self._extras(sample)))
        return items


def history_variables(inputs: Sequence[str], outputs: Sequence[str]) -> list[str]:
    """The variables whose past frames a history input stacks: the inputs that are also outputs, in input order."""
    return [v for v in inputs if v in outputs]


def _time_offsets(ds: xr.Dataset) -> np.ndarray:
    """The time coordinate as float64: its values for float time, seconds since the first time otherwise."""
    from .times import time_kind

    if "time" not in ds.coords:
        raise DataError(f"{source_name(ds)}: times=True needs a 'time' coordinate")
    values = ds["time"].values
    kind = time_kind(ds["time"], source=source_name(ds))
    if kind == "float":
        return np.asarray(values, dtype=np.float64)
    if kind == "datetime64":
        return (values - values[0]) / np.timedelta64(1, "s")
    return np.array([(v - values[0]).total_seconds() for v in values], dtype=np.float64)  # cftime


class ChunkShuffleSampler(Sampler[int]):
    """Random order of blocks of ``block_size`` consecutive indices; in order within a block.

    Files written by :func:`sciml.data.write` store consecutive samples next to each other, so a block
    is one contiguous read. Choose ``block_size=1`` for a full shuffle (one read per item); larger
    blocks trade randomness for throughput. With ``num_replicas``/``rank`` each process gets a disjoint
    share of the blocks (as ``DistributedSampler`` does); call :meth:`set_epoch` every epoch.
    """

    def __init__(self, length: int, *, block_size: int = 8, seed: int = 0, num_replicas: int = 1, rank: int = 0) -> None:
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
            raise ConfigError(f"block_size must be an integer >= 1 (consecutive items read together), got {block_size!r}")
        if not 0 <= rank < num_replicas:
            raise ConfigError(f"rank must be in [0, num_replicas = {num_replicas}), got {rank}")
        self.length, self.block_size, self.seed = int(length), int(block_size), int(seed)
        self.num_replicas, self.rank, self.epoch = int(num_replicas), int(rank), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _blocks(self) -> list[int]:
        n_blocks = -(-self.length // self.block_size)
        order = np.random.default_rng((self.seed, self.epoch)).permutation(n_blocks)
        return order[self.rank :: self.num_replicas].tolist()

    def __iter__(self) -> Iterator[int]:
        for block in self._blocks():
            yield from range(block * self.block_size, min((block + 1) * self.block_size, self.length))

    def __len__(self) -> int:
        return sum(min((b + 1) * self.block_size, self.length) - b * self.block_size for b in self._blocks())
