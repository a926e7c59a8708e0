"""Batches for the training loop: global batches of an epoch's item order, split over the processes.

The order of epoch ``e`` depends only on the seed and ``e``: by default ``numpy.random.default_rng((seed,
e)).permutation(n)``; a ``sampler`` (e.g. :class:`sciml.data.ChunkShuffleSampler`, which keeps blocks
of consecutive items together so a batch of a lazily read file is a few large reads) can give another.
Global batch ``k`` is items ``k B .. (k + 1) B - 1`` of that order; under distributed data parallel,
rank ``r`` of ``W`` takes the ``r``-th of ``W`` contiguous, nearly equal parts of it (so a rank reads
runs of consecutive items, not every ``W``-th). A rank whose part of a short last batch is empty gets
the batch's first item, which the loop weights by 0. Resuming mid-epoch starts at batch ``k``.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, TensorDataset

from ..errors import ConfigError

__all__ = ["GlobalBatches", "as_dataset", "to_device"]


def as_dataset(data) -> Dataset:
    """A ``Dataset`` as given, or a ``TensorDataset`` of a tuple of tensors with a shared leading dim."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (tuple, list)) and data and all(isinstance(t, torch.Tensor) for t in data):
        sizes = {t.shape[0] for t in data}
        if len(sizes) != 1:
            raise ConfigError(f"tensors of a dataset must share their first dim, got {[tuple(t.shape) for t in data]}")
        return TensorDataset(*data)
    raise ConfigError(f"training data must be a torch Dataset or a tuple of tensors, got {type(data).__name__}")


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor moved to ``device`` (tuples, named tuples, lists and dicts kept)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(to_device(b, device) for b in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


class GlobalBatches(Sampler[list[int]]):
    """This process's part of each global batch of an epoch (see the module docstring).

    Args:
        length: items in the dataset.
        batch_size: the global batch.
        seed: seeds the default order.
        order: a sampler whose iteration after ``set_epoch(epoch)`` is a permutation of
            ``range(length)`` depending only on its seed and the epoch; ``None``: a full shuffle.
        rank, world_size: this process's place among the training processes.
    """

    def __init__(self, length: int, batch_size: int, *, seed: int, order: Sampler[int] | None = None, rank: int = 0,
                 world_size: int = 1) -> None:
        if order is not None:
            if getattr(order, "num_replicas", 1) != 1:
                raise ConfigError("give fit one sampler for all processes (num_replicas=1): fit splits every global "
                                  "batch over the processes itself")
            if not hasattr(order, "set_epoch"):
                raise ConfigError(f"the sampler must have set_epoch(epoch) for a reproducible order per epoch; "
                                  f"{type(order).__name__} has not")
        self.length, self.batch_size, self.seed, self.order = length, batch_size, seed, order
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        return -(-self.length // self.batch_size)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def global_size(self, batch: int) -> int:
        """Items in global batch number ``batch`` of an epoch."""
        return min(self.batch_size, self.length - batch * self.batch_size)

    def share(self, batch: int) -> int:
        """Items of global batch ``batch`` that this process computes the loss on (0 for a stand-in)."""
        return len(np.array_split(np.arange(self.global_size(batch)), self.world_size)[self.rank])

    def permutation(self) -> np.ndarray:
        if self.order is None:
            return np.random.default_rng((self.seed, self.epoch)).permutation(self.length)
        self.order.set_epoch(self.epoch)
        order = np.fromiter(iter(self.order), dtype=np.int64)
        if order.size != self.length or not np.array_equal(np.sort(order), np.arange(self.length)):
            raise ConfigError(f"the sampler's order is not a permutation of the {self.length} items of the data")
        return order

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        order = self.permutation()
        for k in range(self.start, self.batches_per_epoch):
            batch = order[k * self.batch_size : (k + 1) * self.batch_size]
            part = np.array_split(batch, self.world_size)[self.rank]
            yield (part if len(part) else batch[:1]).tolist()
