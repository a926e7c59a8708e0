"""Torch datasets over canonical xarray datasets: lazy reads, trajectory splits, chunk-aware shuffling.

Items are read from the file only when asked for, so a dataset larger than memory streams. Every
dataset implements ``__getitems__`` (used by ``DataLoader`` for whole batches): the requested indices
are grouped into runs that are contiguous along ``sample``, and each run is one read. Paired with
:class:`ChunkShuffleSampler`, which shuffles blocks of consecutive indices, a batch costs a few large
reads instead of one small read per item. Datasets pickle (the xarray dataset reopens its file in each
``DataLoader`` worker) and work with ``torch.utils.data.DistributedSampler``.

Layouts: :class:`OperatorPairs` gives ``(inputs (C_in, *space), outputs (C_out, *space))`` per sample
(or per sample and time); :class:`TrajectoryWindows` gives ``(history (h, C, *space), future (k, C,
*space))`` windows of each trajectory.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..errors import ConfigError, DataError
from ._layout import SPACE_ORDER, read_values
from .tensors import source_name

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
    missing = [v for v in variables if v not in ds.data_vars]
    if missing:
        raise DataError(f"{source}: variable(s) {missing} not found; available: {sorted(map(str, ds.data_vars))}")
    space = tuple(d for d in ds[variables[0]].dims if d in SPACE_ORDER)
    for name in variables:
        if tuple(d for d in ds[name].dims if d in SPACE_ORDER) != space:
            raise DataError(f"{source}: variable {name!r} has dims {ds[name].dims}, {variables[0]!r} has {ds[variables[0]].dims}")
    if not space:
        raise DataError(f"{source}: variable {variables[0]!r} has no spatial dims among {SPACE_ORDER}; pass dims= to sciml.data.open")
    return space


def _runs(sorted_values: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of consecutive integers in a sorted array, as ``(start, stop)`` index pairs."""
    breaks = np.flatnonzero(np.diff(sorted_values) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [len(sorted_values)]])
    return list(zip(starts.tolist(), stops.tolist()))


class _LazyFields(Dataset):
    """Shared machinery: reads ``(samples, [time,] *space)`` blocks of several variables and checks them."""

    def __init__(self, ds: xr.Dataset, variables: Sequence[str], *, crop: tuple[int, ...] | None, seed: int,
                 dtype: torch.dtype) -> None:
        if "sample" not in ds.dims:
            raise DataError(f"{source_name(ds)}: no 'sample' dim; open the file with sciml.data.open")
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

    def set_epoch(self, epoch: int) -> None:
        """Draw different random crops each epoch (same contract as ``DistributedSampler.set_epoch``)."""
        self.epoch = int(epoch)

    def _read(self, name: str, samples: slice, times: slice | None) -> np.ndarray:
        """``(n_samples, [n_times,] *space)`` values of one variable, checked finite."""
        var = self.ds[name].variable
        key = {"sample": samples, **({"time": times} if times is not None else {})}
        indexers = tuple(key.get(d, 0 if d not in self.space else slice(None)) for d in var.dims)
        values = read_values(var[indexers])
        bad = ~np.isfinite(values) if values.dtype.kind == "f" else None
        if bad is not None and bad.any():
            where = np.argwhere(bad)[0]
            first = samples.start + int(where[0])
            at = f"sample={first}" + (f", time={(times.start or 0) + int(where[1])}" if times is not None else "")
            raise DataError(f"{self.source}: variable {name!r} has NaN/Inf values (first at {at}); clean or drop those samples")
        return values

    def _checked(self, indices: Sequence[int]) -> np.ndarray:
        """``indices`` as int64, each in ``[0, len(self))`` (``IndexError`` otherwise)."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} items")
        return indices

    def _read_runs(self, samples: np.ndarray, variables: Sequence[str], times: slice | None) -> dict[int, tuple[dict[str, np.ndarray], int]]:
        """Read each contiguous run of ``samples`` once: sample -> (values by variable, first sample of its run)."""
        unique = np.unique(samples)
        runs: dict[int, tuple[dict[str, np.ndarray], int]] = {}
        for a, b in _runs(unique):
            run = slice(int(unique[a]), int(unique[b - 1]) + 1)
            read = {v: self._read(v, run, times) for v in dict.fromkeys(variables)}
            for s in range(run.start, run.stop):
                runs[s] = (read, run.start)
        return runs

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
        return torch.from_numpy(stacked).to(self.dtype)

    def __getitem__(self, index: int):
        return self.__getitems__([index])[0]


class OperatorPairs(_LazyFields):
    """``inputs -> outputs`` pairs, one per sample (and per time, when the fields have a time axis).

    Items are ``(x, y)`` with ``x`` of shape ``(len(inputs), *space)`` and ``y`` of shape
    ``(len(outputs), *space)``; with ``crop`` both are cut to the same random window.

    Args:
        ds: canonical dataset (lazy is fine: only the requested samples are read).
        inputs: input variable names (channels, in order).
        outputs: output variable names.
        crop: random spatial crop size per item, e.g. ``(32, 32)``; ``None`` for whole fields.
        seed: seeds the crops (with the epoch, see :meth:`set_epoch`, and the item index).
        dtype: tensor dtype of the items.
    """

    def __init__(self, ds: xr.Dataset, *, inputs: Sequence[str], outputs: Sequence[str],
                 crop: tuple[int, ...] | None = None, seed: int = 0, dtype: torch.dtype = torch.float32) -> None:
        self.inputs, self.outputs = list(inputs), list(outputs)
        super().__init__(ds, self.inputs + self.outputs, crop=crop, seed=seed, dtype=dtype)
        self.timed = "time" in ds[self.inputs[0]].dims
        self.n_times = ds.sizes["time"] if self.timed else 1

    def __len__(self) -> int:
        return self.ds.sizes["sample"] * self.n_times

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        indices = self._checked(indices)
        samples = indices // self.n_times
        runs = self._read_runs(samples, self.inputs + self.outputs, slice(None) if self.timed else None)
        items = []
        for index, sample in zip(indices.tolist(), samples.tolist()):
            read, first = runs[sample]
            at = (sample - first, index % self.n_times) if self.timed else (sample - first,)
            # Views of the block where a side has one channel; the crop window depends on the index only,
            # so inputs and outputs get the same one.
            x = self._crop(self._channels([read[v][at] for v in self.inputs]), index)
            y = self._crop(self._channels([read[v][at] for v in self.outputs]), index)
            items.append((x, y))
        return items


class TrajectoryWindows(_LazyFields):
    """Windows of each trajectory: ``history`` frames in, the next ``horizon`` frames out.

    Window ``j`` of sample ``s`` starts at time index ``j * stride``; its frames are ``lag`` time
    steps apart. Items are ``(past (history, C, *space), future (horizon, C, *space))``.

    Args:
        ds: canonical dataset with dims ``(sample, time, *space)``.
        variables: state variables (channels, in order).
        history: frames given to the model.
        horizon: frames to predict.
        stride: time steps between window starts.
        lag: time steps between consecutive frames of a window.
        crop, seed, dtype: as in :class:`OperatorPairs`.
    """

    def __init__(self, ds: xr.Dataset, *, variables: Sequence[str], history: int = 1, horizon: int = 1,
                 stride: int = 1, lag: int = 1, crop: tuple[int, ...] | None = None, seed: int = 0,
                 dtype: torch.dtype = torch.float32) -> None:
        self.variables = list(variables)
        super().__init__(ds, self.variables, crop=crop, seed=seed, dtype=dtype)
        if "time" not in ds[self.variables[0]].dims:
            raise DataError(f"{self.source}: variable {self.variables[0]!r} has no time axis; use OperatorPairs")
        for name, value in (("history", history), ("horizon", horizon), ("stride", stride), ("lag", lag)):
            if int(value) != value or value < 1:
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

    def __len__(self) -> int:
        return self.ds.sizes["sample"] * self.per_sample

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        indices = self._checked(indices)
        samples, windows = np.divmod(indices, self.per_sample)
        runs = self._read_runs(samples, self.variables, slice(None))  # values (s, time, *space)
        items = []
        for index, sample, window in zip(indices.tolist(), samples.tolist(), windows.tolist()):
            read, first = runs[sample]
            start = window * self.stride
            frames = slice(start, start + self.span, self.lag)
            window_data = self._channels([read[v][sample - first, frames] for v in self.variables])  # (C, h + k, *space)
            window_data = self._crop(window_data.transpose(0, 1), index)  # (h + k, C, *space)
            items.append((window_data[: self.history], window_data[self.history :]))
        return items


class ChunkShuffleSampler(Sampler[int]):
    """Random order of blocks of ``block_size`` consecutive indices; in order within a block.

    Files written by :func:`sciml.data.write` store consecutive samples next to each other, so a block
    is one contiguous read. Choose ``block_size=1`` for a full shuffle (one read per item); larger
    blocks trade randomness for throughput. With ``num_replicas``/``rank`` each process gets a disjoint
    share of the blocks (as ``DistributedSampler`` does); call :meth:`set_epoch` every epoch.
    """

    def __init__(self, length: int, *, block_size: int = 8, seed: int = 0, num_replicas: int = 1, rank: int = 0) -> None:
        if block_size < 1 or not 0 <= rank < num_replicas:
            raise ConfigError(f"need block_size >= 1 and 0 <= rank < num_replicas, got {block_size}, {rank}, {num_replicas}")
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
