"""The processes of one training run: a single process, or ranks launched by ``torchrun``.

:func:`processes` initialises ``torch.distributed`` when ``WORLD_SIZE`` > 1 (``nccl`` for CUDA, ``gloo``
for CPU) and returns a :class:`Processes` whose collectives act on small host-side tensors through a
``gloo`` group, so they never synchronise a GPU. With one process they are no-ops.

Single-node and multi-node runs are the same code path: ``torchrun --nnodes N --nproc-per-node P`` (or
``srun torchrun ...`` on a SLURM allocation, see ``docs/guides/cluster.md``) starts ``W = N * P`` ranks.
What sciml reads from the environment: ``WORLD_SIZE`` (> 1: join a process group) and ``LOCAL_RANK``
(the GPU of this rank on its node); ``torch.distributed`` itself reads ``RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``, which ``torchrun`` sets. How the work is divided: :func:`local_batch_size` (every rank
computes ``batch_size / W`` items of each global batch) and :func:`shard` (contiguous, disjoint parts
of a range of items, e.g. the validation set).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["Processes", "processes", "TaskLoss", "local_batch_size", "shard"]


def local_batch_size(batch_size: int, world_size: int) -> int:
    """Items of each global batch that one of ``world_size`` processes computes: ``batch_size / world_size``.

    ``batch_size`` (:class:`~sciml.train.TrainConfig`) is the global batch, the items of one optimiser
    step summed over all processes, so that the update, the learning rate and the result do not depend
    on how many processes share the work. An equal share per process needs ``world_size`` to divide it.

    Raises:
        ConfigError: ``world_size`` does not divide ``batch_size``.
    """
    if batch_size % world_size:
        low = max(world_size, batch_size - batch_size % world_size)
        raise ConfigError(f"batch_size {batch_size} (the global batch) is not divisible by the world size {world_size} "
                          f"(torchrun processes); choose a multiple of {world_size}, e.g. {low} or {low + world_size}")
    return batch_size // world_size


def shard(length: int, rank: int, world_size: int) -> range:
    """The ``rank``-th of ``world_size`` contiguous, nearly equal parts of ``range(length)``.

    As ``numpy.array_split``: the first ``length % world_size`` parts hold ``length // world_size + 1``
    items, the others ``length // world_size``. The parts are disjoint and their union is
    ``range(length)``: every index belongs to exactly one rank, none is repeated to pad a part (a part
    may be empty when ``length < world_size``). Contiguous parts let a rank read lazily opened files in
    runs of consecutive items.
    """
    if not 0 <= rank < world_size:
        raise ConfigError(f"rank must be in [0, world_size = {world_size}), got {rank}")
    size, extra = divmod(length, world_size)
    start = rank * size + min(rank, extra)
    return range(start, start + size + (rank < extra))


@dataclass
class Processes:
    """This process's place in the run and host-side collectives over all of them.

    Attributes:
        rank, world_size: as in ``torch.distributed`` (0 and 1 for a single process).
        group: the ``gloo`` group the collectives use (``None``: the default group, or no group).
        owns_group: :func:`processes` initialised ``torch.distributed``, and :meth:`close` ends it.
    """

    rank: int = 0
    world_size: int = 1
    group: Any = None
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum of ``values`` over the processes (float64)."""
        if self.world_size == 1:
            return [float(v) for v in values]
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor, group=self.group)
        return tensor.tolist()

    def gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every process's ``tensor`` (a CPU tensor of the same shape and dtype on all), by rank."""
        if self.world_size == 1:
            return [tensor]
        import torch.distributed as dist

        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(parts, tensor.contiguous(), group=self.group)
        return parts

    def broadcast(self, value: float) -> float:
        """Rank 0's ``value`` on every process (e.g. its clock, so that all agree on the time budget)."""
        if self.world_size == 1:
            return value
        import torch.distributed as dist

        tensor = torch.tensor([value], dtype=torch.float64)
        dist.broadcast(tensor, src=0, group=self.group)
        return float(tensor[0])

    def agree(self, value: Any) -> Any:
        """Rank 0's ``value`` (any picklable object) on every process."""
        if self.world_size == 1:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def close(self) -> None:
        """End the process group if :func:`processes` started it."""
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.owns_group = False


def processes(device: torch.device) -> tuple[Processes, torch.device]:
    """Join the run: initialise ``torch.distributed`` if launched by ``torchrun`` and not yet initialised.

    A CUDA ``device`` without an index becomes ``cuda:<LOCAL_RANK>``. Returns the processes and the
    device this process trains on.
    """
    import torch.distributed as dist

    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if not dist.is_available() or not (launched or dist.is_initialized()):
        return Processes(), device
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    group = None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")
    return Processes(dist.get_rank(), dist.get_world_size(), group, owns), device


class TaskLoss(nn.Module):
    """The loss computation of a task as a module: ``forward(batch) = task.loss(forward_model, batch)``.

    Wrapping this module, not the model, in ``DistributedDataParallel`` averages the gradients over the
    processes however the task uses its model: DDP reduces the gradients of every parameter used in a
    forward pass of the wrapper, and the task receives the model itself (or its compiled wrapper), not
    DDP's wrapper, so it can call other methods, use the parameters directly (an adjoint ODE solve) or
    run several sub-modules.
    """

    def __init__(self, task, forward_model: nn.Module) -> None:
        super().__init__()
        self.model = task.model
        self.task = task
        self.__dict__["forward_model"] = forward_model  # a plain attribute: the parameters are the model's

    def forward(self, batch):
        return self.task.loss(self.forward_model, batch)


def data_parallel(task, forward_model: nn.Module, device: torch.device) -> nn.Module:
    """``DistributedDataParallel`` over the task's loss computation (see :class:`TaskLoss`)."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(TaskLoss(task, forward_model),
                                   device_ids=[device.index] if device.type == "cuda" else None)
