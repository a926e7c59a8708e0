"""A trained neural operator as one importable object: xarray in, xarray out, on any grid.

A :class:`Surrogate` holds the network with its normalisation (an ``nn.Module`` mapping physical
fields to physical fields), the variable names and units, the training grid's domain, the lead time
for time-stepping maps, and provenance. Its directory format is a JSON manifest plus a tensors-only
weights file loaded with ``weights_only=True``: no pickled objects.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch import nn

from . import __version__
from .data.tensors import grid_of, source_name, stack_fields
from .errors import ConfigError, DataError
from .grids import Grid
from .models import build, config_of, option_names
from .train import TrainConfig, fit, relative_l2_loss, resolve_device, seed_everything

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["Surrogate", "ChannelNormalizer", "NormalizedOperator", "fit_surrogate"]

FORMAT_VERSION = 1


@contextlib.contextmanager
def _plain_einsum():
    """Use tensorly's default einsum while tracing; neuraloperator switches it to opt_einsum on import."""
    import tensorly.plugins as plugins

    plugins.use_default_einsum()
    try:
        yield
    finally:
        plugins.use_opt_einsum("optimal")


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


class Surrogate:
    """A trained operator with its metadata. Build one with :func:`fit_surrogate` or :meth:`load`.

    Attributes:
        module: the ``NormalizedOperator`` (a plain ``nn.Module``).
        inputs, outputs: variable names of the input and output channels, in order.
        units: ``{variable: units}`` seen in training (checked against inputs at prediction).
        grid: the training grid (its domain is what predictions must match; any resolution works).
        lead_time: time between input and output for time-stepping maps, else ``None``.
        provenance: data source and hash, training options, versions, timings.
    """

    def __init__(self, *, module: NormalizedOperator, inputs: Sequence[str], outputs: Sequence[str],
                 grid: Grid, units: dict[str, str], lead_time: float | None = None,
                 provenance: dict | None = None) -> None:
        self.module = module
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.grid = grid
        self.units = dict(units)
        self.lead_time = lead_time
        self.provenance = dict(provenance or {})

    def __repr__(self) -> str:
        return (f"Surrogate({', '.join(self.inputs)} -> {', '.join(self.outputs)}, trained on {self.grid.shape} "
                f"{self.grid.dims}, lead_time={self.lead_time})")

    # ------------------------------------------------------------------ inference
    def _check_input(self, ds: xr.Dataset) -> Grid:
        grid = grid_of(ds)
        source = source_name(ds)
        if not grid.same_domain(self.grid):
            raise DataError(
                f"{source}: {grid.kind} domain {dict(zip(grid.dims, grid.lengths))} differs from the training "
                f"{self.grid.kind} domain {dict(zip(self.grid.dims, self.grid.lengths))}; the surrogate only "
                "generalises across resolutions"
            )
        for name in self.inputs:
            if name in ds.data_vars:
                given, expected = ds[name].attrs.get("units"), self.units.get(name)
                if given is not None and expected is not None and given != expected:
                    raise DataError(f"{source}: variable {name!r} has units {given!r}, the surrogate expects {expected!r}; convert first")
        return grid

    @torch.no_grad()
    def predict_tensor(self, fields: torch.Tensor, *, steps: int | None = None, batch_size: int = 32,
                       device: str | torch.device = "auto") -> torch.Tensor:
        """Apply the operator to ``(batch, c_in, *space)`` physical fields in chunks of ``batch_size``.

        With ``steps=k`` (time-stepping surrogates) the operator is applied ``k`` times
        autoregressively and the result is ``(batch, k, c_out, *space)``.
        """
        device = resolve_device(device)
        self.module.to(device).eval()
        dtype = next(self.module.parameters()).dtype
        chunks = []
        for chunk in fields.split(batch_size):
            state = chunk.to(device=device, dtype=dtype)
            if steps is None:
                chunks.append(self.module(state).cpu())
                continue
            trajectory = []
            for _ in range(steps):
                state = self.module(state)
                trajectory.append(state.cpu())
            chunks.append(torch.stack(trajectory, dim=1))
        return torch.cat(chunks)

    def predict(self, ds: xr.Dataset, *, steps: int | None = None, batch_size: int = 32,
                device: str | torch.device = "auto") -> xr.Dataset:
        """Predict the output fields for every ``(sample[, time])`` frame of ``ds``.

        ``ds`` holds the input variables over ``(..., *space)`` on any uniform grid of the training
        domain (zero-shot super-resolution on finer grids); it may be lazy: inputs are read
        ``batch_size`` frames at a time, so memory holds one chunk of inputs plus the outputs.

        Args:
            ds: canonical dataset with the input variables.
            steps: for time-stepping surrogates, roll out this many steps autoregressively; the
                result gains a ``lead_time`` dim (``lead_time * 1..steps``) before the spatial dims.
                ``None``: one application, with a ``time`` coordinate shifted by ``lead_time``.
            batch_size: frames per forward pass.
            device: where to run the model.

        Returns:
            The output variables with the input's coordinates and attributes (``history`` appended).
        """
        import xarray as xr

        grid = self._check_input(ds)
        source = source_name(ds)
        missing = [v for v in self.inputs if v not in ds.data_vars]
        if missing:
            raise DataError(f"{source}: variable(s) {missing} not found; the surrogate needs {self.inputs}")
        if steps is not None:
            if self.lead_time is None:
                raise ConfigError("steps= needs a time-stepping surrogate (trained with lag=); this one maps fields to fields")
            if int(steps) != steps or steps < 1:
                raise ConfigError(f"steps must be a positive integer, got {steps!r}")
        dims = ds[self.inputs[0]].dims
        lead_dims = dims[: len(dims) - grid.ndim]
        lead_shape = tuple(ds.sizes[d] for d in lead_dims)
        frames_per_sample = int(np.prod(lead_shape[1:], dtype=np.int64)) if lead_dims else 1
        n_blocks_dim = lead_shape[0] if lead_dims else 1
        per_read = max(1, batch_size // max(frames_per_sample, 1))
        out_lead = (*lead_shape, *((steps,) if steps is not None else ()))
        outputs = {name: np.empty((*out_lead, *grid.shape), dtype=np.float32) for name in self.outputs}
        for start in range(0, n_blocks_dim, per_read):
            stop = min(start + per_read, n_blocks_dim)
            block = ds.isel({lead_dims[0]: slice(start, stop)}) if lead_dims else ds
            stacked = stack_fields(block, self.inputs)  # (*lead, channel, *space), finite-checked
            flat = stacked.reshape(-1, *stacked.shape[len(lead_dims):])  # (frames, channel, *space)
            pred = self.predict_tensor(flat, steps=steps, batch_size=batch_size, device=device)
            pred = pred.reshape(stop - start, *out_lead[1:], *pred.shape[1 + (steps is not None):]).numpy()
            for i, name in enumerate(self.outputs):
                outputs[name][start:stop] = np.take(pred, i, axis=len(out_lead))
        coords = {d: ds[d] for d in dims if d in ds.coords}
        out_dims = (*lead_dims, *(("lead_time",) if steps is not None else ()), *dims[len(lead_dims):])
        if steps is not None:
            coords["lead_time"] = ("lead_time", self.lead_time * np.arange(1, steps + 1),
                                   {"long_name": "time after the initial condition", "units": ds["time"].attrs.get("units", "1") if "time" in ds else "1"})
        elif self.lead_time is not None and "time" in coords:
            coords["time"] = (ds["time"] + self.lead_time).assign_attrs(ds["time"].attrs)
        data_vars = {}
        for name in self.outputs:
            attrs = {"units": self.units.get(name, "1"), "long_name": ds[name].attrs.get("long_name", name) if name in ds else name}
            data_vars[name] = (out_dims, outputs[name], attrs)
        history = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}: predicted by sciml {__version__} surrogate"
        attrs = {**ds.attrs, "history": "\n".join(filter(None, [ds.attrs.get("history"), history]))}
        if self.lead_time is not None:
            attrs["lead_time"] = self.lead_time
        return xr.Dataset(data_vars, coords=coords, attrs=attrs)

    def export(self, path: str | os.PathLike) -> Path:
        """Save the operator as a ``torch.export`` program that runs with torch alone (no sciml).

        The program maps physical ``(batch, c_in, *space)`` float32 fields to ``(batch, c_out, *space)``
        for any batch size and any grid size the network supports (dynamic shapes). Load it with
        ``torch.export.load(path).module()``. Written atomically.
        """
        from torch.export import Dim, export

        path = Path(path)
        if not path.parent.is_dir():
            raise DataError(f"{path}: directory {path.parent} does not exist; create it first")
        module = self.module.cpu().eval()
        example = torch.randn(2, len(self.inputs), *self.grid.shape)
        with _plain_einsum():  # neuraloperator's opt_einsum path fixes the batch size while tracing
            program = export(module, (example,), dynamic_shapes=({i: Dim.AUTO for i in [0, *range(2, example.ndim)]},))
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            torch.export.save(program, tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    # ------------------------------------------------------------------ persistence
    def manifest(self) -> dict:
        model_name, model_options = config_of(self.module.network)
        return {"format_version": FORMAT_VERSION, "sciml_version": __version__, "model": model_name,
                "model_options": model_options, "inputs": self.inputs, "outputs": self.outputs,
                "units": self.units, "grid": self.grid.to_json(), "lead_time": self.lead_time,
                "provenance": self.provenance}

    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``manifest.json`` + ``weights.pt`` into ``directory`` atomically (temp dir, rename)."""
        directory = Path(directory)
        if directory.exists() and any(directory.iterdir()) and not overwrite:
            raise DataError(f"{directory}: exists and is not empty; pass overwrite=True or choose another directory")
        parent = directory.parent
        parent.mkdir(parents=True, exist_ok=True)
        if not os.access(parent, os.W_OK):
            raise DataError(f"{parent}: not writable; choose another output directory")
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=parent))
        try:
            (staging / "manifest.json").write_text(json.dumps(self.manifest(), indent=2))
            state = {k: v.detach().cpu() for k, v in self.module.state_dict().items()}
            torch.save(state, staging / "weights.pt")
            if directory.exists():
                shutil.rmtree(directory)
            os.replace(staging, directory)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, *, device: str | torch.device = "cpu") -> Surrogate:
        directory = Path(directory)
        manifest_path, weights_path = directory / "manifest.json", directory / "weights.pt"
        if not manifest_path.is_file() or not weights_path.is_file():
            raise DataError(f"{directory}: not a saved surrogate (needs manifest.json and weights.pt)")
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format_version") != FORMAT_VERSION:
            raise DataError(f"{directory}: surrogate format {manifest.get('format_version')} is not supported (expected {FORMAT_VERSION})")
        network = build(manifest["model"], **manifest["model_options"])
        module = NormalizedOperator(network, len(manifest["inputs"]), len(manifest["outputs"]))
        module.load_state_dict(torch.load(weights_path, map_location=device, weights_only=True))
        return cls(module=module.eval(), inputs=manifest["inputs"], outputs=manifest["outputs"],
                   grid=Grid.from_json(manifest["grid"]), units=manifest["units"],
                   lead_time=manifest["lead_time"], provenance=manifest["provenance"])


def fit_surrogate(
    train: xr.Dataset,
    *,
    inputs: Sequence[str],
    outputs: Sequence[str],
    lag: int | None = None,
    validation: xr.Dataset | None = None,
    model: str = "fno",
    model_options: dict | None = None,
    config: TrainConfig = TrainConfig(),
    log_path: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
) -> tuple[Surrogate, list[dict]]:
    """Train a surrogate on a canonical dataset with the relative-L2 loss.

    ``checkpoint_dir``/``resume`` are passed to :func:`sciml.train.fit`: a killed run restarted with
    ``resume=True`` continues from its last epoch and ends identical to an uninterrupted one.

    Two kinds of map:

    * ``lag=None``: ``inputs -> outputs`` frame by frame (an operator between fields).
    * ``lag=k``: a time-stepping map ``state(t) -> state(t + k dt)`` on ``(sample, time, ...)``
      trajectories; ``inputs`` must equal ``outputs`` and the surrogate's ``lead_time`` is ``k dt``.

    Returns the surrogate and the training history.
    """
    from .data.io import file_sha256
    from .data.statistics import channel_statistics
    from .data.tensors import time_pairs

    inputs, outputs = list(inputs), list(outputs)

    def pairs(ds: xr.Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        if lag is None:
            return stack_fields(ds, inputs), stack_fields(ds, outputs)
        if inputs != outputs:
            raise ValueError(f"a time-stepping surrogate (lag={lag}) maps a state to itself; inputs {inputs} != outputs {outputs}")
        return time_pairs(ds, inputs, lag=lag)

    grid = grid_of(train)
    x, y = pairs(train)
    if x.ndim != 2 + grid.ndim:
        raise DataError(f"{source_name(train)}: inputs have shape {tuple(x.shape)}; select a single time or pass lag=")
    lead_time = None
    if lag is not None:
        t = np.asarray(train["time"].values, dtype=np.float64)
        steps = np.diff(t)
        if not np.allclose(steps, steps[0], rtol=1e-6):
            raise DataError(f"{source_name(train)}: time coordinate is not uniform; lag={lag} has no single lead time")
        lead_time = float(steps[0] * lag)

    seed_everything(config.seed)
    options = {"in_channels": len(inputs), "out_channels": len(outputs), **(model_options or {})}
    if grid.kind == "bounded" and "boundary" in option_names(model):
        options.setdefault("boundary", "reflect")
    if "n_modes" in option_names(model):  # box models: as many modes as the grid resolves, up to 16
        extended = [2 * (n - 1) if options.get("boundary") == "reflect" else n for n in grid.shape]
        options.setdefault("n_modes", tuple(min(16, n // 2) for n in extended))
    module = NormalizedOperator(build(model, **options), len(inputs), len(outputs))
    # Statistics over the whole training file in one streaming pass, stored with the model.
    input_stats = channel_statistics(train, inputs)
    output_stats = channel_statistics(train, outputs)
    module.input_norm.set(input_stats.mean, input_stats.std)
    module.output_norm.set(output_stats.mean, output_stats.std)

    def loss(net: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        return relative_l2_loss(net(batch[0]), batch[1])

    val = pairs(validation) if validation is not None else None
    start = time.perf_counter()
    history = fit(module, loss, (x, y), val_data=val, config=config, log_path=log_path,
                  checkpoint_dir=checkpoint_dir, resume=resume)
    units = {name: train[name].attrs.get("units", "1") for name in dict.fromkeys(inputs + outputs)}
    source = Path(source_name(train))
    data_sha256 = file_sha256(source) if source.is_file() else None
    provenance = {"data_source": source_name(train), "data_sha256": data_sha256, "n_train_pairs": int(x.shape[0]),
                  "train_config": asdict(config), "train_seconds": time.perf_counter() - start,
                  "epochs_run": len(history), "torch_version": torch.__version__, "sciml_version": __version__,
                  "final_train_loss": history[-1]["train_loss"] if history else math.nan,
                  "normalisation": {**input_stats.as_dict(), **output_stats.as_dict()}}
    return Surrogate(module=module.cpu(), inputs=inputs, outputs=outputs, grid=grid, units=units,
                     lead_time=lead_time, provenance=provenance), history
