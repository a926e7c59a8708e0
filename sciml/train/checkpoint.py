"""Training checkpoints: a flat dict of tensors plus a JSON manifest; no pickled objects.

A checkpoint directory holds ``checkpoint.json`` (the manifest: epoch, step, history, config, optimizer
hyper-parameters, ...) and the tensors file it names, ``state-<step>-<random>.pt``: ``torch.save`` of a flat
``{name: tensor}`` dict, read back with ``torch.load(..., weights_only=True)``. Tensor names:

* ``model/<key>``: the model's ``state_dict``; ``best/<key>``: the best state so far (with validation);
* ``optimizer/<param index>/<key>``: optimizer state (AdamW: ``step``, ``exp_avg``, ``exp_avg_sq``);
* ``rng/cpu/<rank>``, ``rng/cuda/<rank>``: each process's torch RNG state;
* ``loop/sums``: ``(world_size, 2)`` float64 running loss sum and item count of the epoch in progress.

Writing is atomic: the tensors go to a new file, then the manifest naming it replaces the old
manifest with ``os.replace`` (the commit point), then tensors files no manifest names (and temp files
of writes cut short) are deleted. A process killed at any moment leaves the previous or the new
checkpoint, never a mix.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from ..errors import DataError

__all__ = ["MANIFEST", "FORMAT_VERSION", "write_checkpoint", "read_checkpoint", "flatten_optimizer", "restore_optimizer"]

MANIFEST = "checkpoint.json"
FORMAT_VERSION = 1


def _atomic_write(path: Path, write) -> None:
    """``write(file)`` into a temp file next to ``path``, fsync, then rename onto ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_checkpoint(directory: str | os.PathLike, tensors: dict[str, torch.Tensor], manifest: dict) -> Path:
    """Write ``tensors`` and ``manifest`` (JSON-able, with a ``step``) as the checkpoint of ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"state-{manifest['step']:09d}-{os.urandom(4).hex()}.pt"  # never the name of the file in use
    cpu = {key: value.detach().cpu() for key, value in tensors.items()}
    _atomic_write(directory / name, lambda file: torch.save(cpu, file))
    body = json.dumps({"format_version": FORMAT_VERSION, **manifest, "tensors": name}, indent=1).encode()
    _atomic_write(directory / MANIFEST, lambda file: file.write(body))
    for stale in [*directory.glob("state-*.pt"), *directory.glob(".*.tmp")]:  # older states, writes cut short
        if stale.name != name:
            stale.unlink(missing_ok=True)
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
        raise DataError(f"{path}: checkpoint format {found} is not supported (expected {FORMAT_VERSION})")
    missing = {"tensors", "epoch", "batch", "step", "done", "elapsed_s", "best_val", "bad_epochs", "history",
               "config", "optimizer"} - manifest.keys()
    if missing:
        raise DataError(f"{path}: checkpoint manifest lacks {sorted(missing)}; delete {directory} to start afresh")
    tensors_path = Path(directory) / str(manifest["tensors"])
    if not tensors_path.is_file():
        raise DataError(f"{tensors_path}: missing, but named by {path}; the checkpoint is incomplete")
    try:
        tensors = torch.load(tensors_path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, bad pickle opcode, non-tensor content: all mean "corrupt"
        raise DataError(f"{tensors_path}: unreadable checkpoint tensors ({type(error).__name__}: {error})"[:400]) from None
    if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise DataError(f"{tensors_path}: not a flat dict of tensors")
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
