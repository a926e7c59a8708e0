"""Training checkpoints: a flat dict of tensors plus a JSON manifest; no pickled objects.

A checkpoint directory holds ``checkpoint.json`` (the manifest: epoch, step, history, config, optimizer
hyper-parameters, the task's JSON state, ...) and the tensors file it names, ``state-<step>-<random>.pt``:
``torch.save`` of a flat ``{name: tensor}`` dict, read back with ``torch.load(..., weights_only=True)``.
Tensor names:

* ``model/<key>``: the model's ``state_dict``; ``best/<key>``: the best state so far (with validation) of
  the task's validation model;
* ``optimizer/<param index>/<key>``: optimizer state (AdamW: ``step``, ``exp_avg``, ``exp_avg_sq``);
* ``task/<path>``: the tensors of the task's extra state (moving averages of weights, random generator
  states), the nested keys of :meth:`~sciml.train.Task.state_dict` joined by ``/``; its other values are
  ``manifest["task"]``;
* ``rng/cpu/<rank>``, ``rng/cuda/<rank>``: each process's torch RNG state;
* ``loop/sums``: ``(world_size, 1 + logs + 1)`` float64 running sums of the loss and each logged value, and
  the item count, of the epoch in progress.

Under ``torchrun`` (one node or several) rank 0 alone writes, after gathering every rank's RNG states
and sums: one checkpoint per run, whatever the number of processes, in a directory that every node
must see (a shared filesystem; :func:`sciml.train.fit` refuses to start when the ranks see different
checkpoints). It resumes on any number of processes (:meth:`RunState.restore`).

Writing is atomic (:mod:`sciml._atomic`): the tensors go to a new file, then the manifest naming it
replaces the old manifest (the commit point), then tensors files no manifest names (and temp files of
writes cut short) are deleted. A process killed at any moment leaves the previous or the new checkpoint,
never a mix.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import torch
from torch import nn

from .._atomic import remove_stale, write_bytes
from ..errors import ConfigError, DataError

if TYPE_CHECKING:
    from .distributed import Processes
    from .loop import TrainConfig
    from .precision import Precision
    from .task import Task

__all__ = ["MANIFEST", "FORMAT_VERSION", "write_checkpoint", "read_checkpoint", "flatten_optimizer",
           "restore_optimizer", "flatten_state", "unflatten_state", "RunState"]

MANIFEST = "checkpoint.json"
FORMAT_VERSION = 2
# Options that may differ when resuming: they do not change what is computed.
RUN_OPTIONS = ("device", "progress", "checkpoint_every", "workers")
_STATE = re.compile(r"state-\d{9,}-[0-9a-f]{8}\.pt")  # the tensors files write_checkpoint names


def write_checkpoint(directory: str | os.PathLike, tensors: dict[str, torch.Tensor], manifest: dict) -> Path:
    """Write ``tensors`` and ``manifest`` (JSON-able, with a ``step``) as the checkpoint of ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"state-{manifest['step']:09d}-{os.urandom(4).hex()}.pt"  # never the name of the file in use
    cpu = {key: value.detach().cpu() for key, value in tensors.items()}
    write_bytes(directory / name, lambda file: torch.save(cpu, file))
    write_bytes(directory / MANIFEST, json.dumps({"format_version": FORMAT_VERSION, **manifest, "tensors": name},
                                                 indent=1).encode())
    for stale in directory.iterdir():  # older states
        if _STATE.fullmatch(stale.name) and stale.name != name:
            stale.unlink(missing_ok=True)
    remove_stale(directory, _STATE.pattern)  # states whose writes were cut short
    return directory / MANIFEST


def read_checkpoint(directory: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]] | None:
    """``(manifest, tensors)`` of the checkpoint in ``directory``; ``None`` when it holds none.

    Raises:
        DataError: the manifest or the tensors file is unreadable, incomplete or of another format.
    """
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: unreadable checkpoint manifest ({error}); delete {directory} to start afresh") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        found = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise DataError(f"{path}: checkpoint format {found} is not supported (expected {FORMAT_VERSION}); "
                        f"delete {directory} to start afresh")
    missing = {"tensors", "epoch", "batch", "step", "done", "elapsed_s", "best_val", "bad_epochs", "history",
               "config", "optimizer", "task", "log_names"} - manifest.keys()
    if missing:
        raise DataError(f"{path}: checkpoint manifest lacks {sorted(missing)}; delete {directory} to start afresh")
    name = manifest["tensors"]
    if not isinstance(name, str) or not _STATE.fullmatch(name):
        raise DataError(f"{path}: names tensors file {name!r}, not a state-<step>-<hex>.pt file in {directory}; "
                        f"refusing to read outside the checkpoint: delete {directory} to start afresh")
    tensors_path = Path(directory) / name
    if not tensors_path.is_file():
        raise DataError(f"{tensors_path}: missing, but named by {path}; the checkpoint is incomplete")
    try:
        tensors = torch.load(tensors_path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, bad pickle opcode, non-tensor content: all mean "corrupt"
        first = (str(error).strip().splitlines() or [""])[0][:200]  # weights_only's refusal spans many lines
        raise DataError(f"{tensors_path}: unreadable checkpoint tensors ({type(error).__name__}: {first}); "
                        f"delete {directory} to start afresh") from None
    if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise DataError(f"{tensors_path}: not a flat dict of tensors")
    for key, value in tensors.items():  # a diverged state is never written, so NaN here means corruption
        if key.startswith(("model/", "best/", "optimizer/")) and value.is_floating_point() and bool(value.isnan().any()):
            raise DataError(f"{tensors_path}: tensor {key!r} has NaN values; the checkpoint is corrupt: "
                            f"delete {directory} to start afresh")
    return manifest, tensors


def flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer state as ``{"optimizer/<param>/<key>": tensor}`` and JSON (param groups, non-tensor state)."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{index}/{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Inverse of :func:`flatten_optimizer`."""
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer/"):
            _, index, key = name.split("/", 2)
            state.setdefault(int(index), {})[key] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    # JSON turned tuples (AdamW's betas) into lists; the param index lists stay lists.
    groups = [{k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in g.items()} for g in meta["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def flatten_state(state: Mapping[str, Any], prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    """A nested dict of tensors and JSON values as ``{prefix/a/b: tensor}`` and the JSON rest, nested as given."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(node: Mapping[str, Any], path: str) -> dict:
        rest = {}
        for key, value in node.items():
            if not isinstance(key, str) or "/" in key:
                raise ConfigError(f"task state keys must be strings without '/', got {key!r} under {path!r}")
            if isinstance(value, torch.Tensor):
                tensors[f"{path}/{key}"] = value
            elif isinstance(value, Mapping):
                rest[key] = walk(value, f"{path}/{key}")
            else:
                try:
                    json.dumps(value)
                except TypeError:
                    raise ConfigError(f"task state {path}/{key} is a {type(value).__name__}: give tensors or "
                                      "JSON values (numbers, strings, lists)") from None
                rest[key] = value
        return rest

    return tensors, walk(state, prefix)


def unflatten_state(tensors: Mapping[str, torch.Tensor], rest: dict, prefix: str) -> dict[str, Any]:
    """Inverse of :func:`flatten_state`."""
    state = json.loads(json.dumps(rest))
    for name, value in tensors.items():
        if not name.startswith(prefix + "/"):
            continue
        *path, leaf = name[len(prefix) + 1:].split("/")
        node = state
        for key in path:
            node = node.setdefault(key, {})
        node[leaf] = value
    return state


@dataclass
class RunState:
    """Where a run stands: what a checkpoint holds besides the model, optimizer, task and scaler states."""

    sums: torch.Tensor  # this process's sums of the loss, each logged value and the item count, on the device
    log_names: list[str] = field(default_factory=list)
    epoch: int = 0
    batch: int = 0  # batches of ``epoch`` done
    step: int = 0
    elapsed_s: float = 0.0
    done: bool = False
    stop_reason: str | None = None
    best_val: float = math.inf
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)

    _SAVED = ("epoch", "batch", "step", "elapsed_s", "done", "stop_reason", "bad_epochs", "history", "log_names")

    def save(self, directory: str | os.PathLike, *, task: Task, optimizer: torch.optim.Optimizer, precision: Precision,
             config: TrainConfig, procs: Processes, device: torch.device, log_file) -> None:
        """Write a checkpoint. Collective: every process gives its RNG states and sums; rank 0 writes."""
        sums = torch.stack(procs.gather(self.sums.detach().to("cpu", torch.float64)))
        if not bool(torch.isfinite(sums).all()):  # never checkpoint a diverged state
            raise FloatingPointError(f"training loss became {float(sums[:, 0].sum())} in epoch {self.epoch}; lower lr")
        cpu_rng = procs.gather(torch.get_rng_state())
        cuda_rng = procs.gather(torch.cuda.get_rng_state(device)) if device.type == "cuda" else []
        if not procs.is_main:
            return
        from .. import __version__

        tensors = {f"model/{k}": v for k, v in task.model.state_dict().items()}
        tensors.update({f"best/{k}": v for k, v in (self.best_state or {}).items()})
        optimizer_tensors, optimizer_meta = flatten_optimizer(optimizer)
        task_tensors, task_json = flatten_state(task.state_dict(), "task")
        tensors.update({**optimizer_tensors, **task_tensors})
        tensors.update({f"rng/cpu/{r}": state for r, state in enumerate(cpu_rng)})
        tensors.update({f"rng/cuda/{r}": state for r, state in enumerate(cuda_rng)})
        tensors["loop/sums"] = sums
        manifest = {name: getattr(self, name) for name in self._SAVED}
        manifest.update({
            "best_val": None if self.best_val == math.inf else self.best_val, "world_size": procs.world_size,
            "config": asdict(config), "optimizer": optimizer_meta, "task": task_json,
            "task_type": type(task).__qualname__, "scaler": precision.scaler.state_dict() or None,
            "log": {"path": str(Path(log_file.name).resolve()), "bytes": log_file.tell()} if log_file is not None else None,
            "sciml_version": __version__, "torch_version": torch.__version__})
        write_checkpoint(directory, tensors, manifest)

    def restore(self, checkpoint: tuple[dict, dict[str, torch.Tensor]], path: Path, *, task: Task,
                optimizer: torch.optim.Optimizer, precision: Precision, config: TrainConfig, procs: Processes,
                device: torch.device) -> None:
        """Load a checkpoint read by :func:`read_checkpoint` into the task, optimizer, scaler, RNGs and ``self``.

        On as many processes as were saved, every rank gets its own RNG states and sums back: the resumed run
        is the uninterrupted one. On another number of processes, rank 0 takes the epoch's sums of all saved
        ranks (so no item of the epoch is lost from its loss) and ranks without saved RNG states are seeded
        from ``(seed, rank, step)``; the run then continues correctly but not bitwise as it would have.
        """
        import numpy as np

        rank = procs.rank
        manifest, tensors = checkpoint
        saved, current = manifest["config"], asdict(config)
        changed = [k for k in current if k not in RUN_OPTIONS and saved.get(k) != current[k]]
        if changed:
            was = ", ".join(f"{k}={saved.get(k)!r} (now {current[k]!r})" for k in changed)
            raise ConfigError(f"{path}: the checkpoint was written with {was}; resume with the same TrainConfig "
                              f"(only {', '.join(RUN_OPTIONS)} may change)")
        try:
            task.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
            restore_optimizer(optimizer, tensors, manifest["optimizer"])
            precision.scaler.load_state_dict(manifest.get("scaler") or {})
            task.load_state_dict(unflatten_state(tensors, manifest["task"], "task"))
        except (KeyError, ValueError, RuntimeError) as error:
            raise DataError(f"{path}: holds the state of a different model, optimizer or task "
                            f"({' '.join(str(error).split())})"[:400]) from None
        for name in self._SAVED:
            setattr(self, name, manifest[name])
        if f"rng/cpu/{rank}" in tensors:  # absent when resuming on more processes than were saved
            torch.set_rng_state(tensors[f"rng/cpu/{rank}"])
        else:
            torch.manual_seed(int(np.random.SeedSequence((config.seed, rank, self.step)).generate_state(1)[0]))
        if device.type == "cuda" and f"rng/cuda/{rank}" in tensors:
            torch.cuda.set_rng_state(tensors[f"rng/cuda/{rank}"], device)
        sums = tensors["loop/sums"]
        self.sums = torch.zeros(len(self.log_names) + 2, dtype=torch.float64, device=device)
        if manifest["world_size"] == procs.world_size:
            self.sums.copy_(sums[rank])
        elif rank == 0:
            self.sums.copy_(sums.sum(dim=0))
        best = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best/")}
        self.best_state = best or None
        self.best_val = math.inf if manifest["best_val"] is None else manifest["best_val"]


def clone_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
