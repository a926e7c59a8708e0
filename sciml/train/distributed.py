"""The processes of one training run: a single process, or ranks launched by ``torchrun``.

:func:`processes` initialises ``torch.distributed`` when ``WORLD_SIZE`` > 1 (``nccl`` for CUDA, ``gloo``
for CPU) and returns a :class:`Processes` whose collectives act on small host-side tensors through a
``gloo`` group, so they never synchronise a GPU. With one process they are no-ops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

__all__ = ["Processes", "processes", "TaskLoss"]


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
