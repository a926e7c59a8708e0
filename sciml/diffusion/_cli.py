"""``sciml diffusion train|sample|superres``: function-space diffusion from the command line (a thin layer over
:class:`sciml.diffusion.DiffusionTask` with :func:`sciml.train.fit`, :func:`sciml.diffusion.sample` and
:func:`sciml.diffusion.super_resolve`).

Only argparse and the standard library at import, so ``sciml --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json

#: The model file's format tag.
FORMAT = "sciml.diffusion.edm/1"


def add_parser(commands) -> argparse.ArgumentParser:
    """Add the ``diffusion`` group (``train``, ``sample``, ``superres``) to the subparsers ``commands`` of ``sciml``."""
    group = commands.add_parser(
        "diffusion", help="function-space diffusion: train on fields, sample at any resolution, super-resolve",
        description="EDM denoiser (noise-conditioned FNO) with Gaussian-random-field noise, trained once and sampled "
                    "on any grid of its periodic box; super-resolution by data-consistency guidance of it, or by a "
                    "CoarseConditionedDenoiser (train --conditional), optionally on the residual of a "
                    "deterministic mean surrogate (--mean-run: regression + residual diffusion, CorrDiff).")
    sub = group.add_subparsers(dest="diffusion_command", required=True, metavar="{train,sample,superres}",
                               help="train a denoiser; sample fields on any grid; super-resolve coarse fields")
    fmt = argparse.ArgumentDefaultsHelpFormatter
    train = sub.add_parser("train", formatter_class=fmt, help="train a denoiser on fields of a NetCDF file",
                           description="Reads --variable(s) of --data (every frame over the non-spatial dims is a "
                                       "training field), trains an EDMDenoiser (or with --conditional a "
                                       "CoarseConditionedDenoiser, on the residual of --mean-run if given) through "
                                       "sciml.train.fit with an EMA, "
                                       "writes model.pt and history.json to --out.")
    train.add_argument("--data", required=True, help="NetCDF file with the fields (spatial dims y, x or x)")
    train.add_argument("--variable", nargs="+", required=True, help="variables, one channel each")
    train.add_argument("--out", required=True, help="model directory to write")
    train.add_argument("--overwrite", action="store_true", help="replace --out/model.pt if it exists")
    train.add_argument("--epochs", type=int, default=40, help="training epochs")
    train.add_argument("--batch-size", type=int, default=32, help="fields per optimiser step")
    train.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    train.add_argument("--ema-decay", type=float, default=0.995, help="EMA decay per step")
    train.add_argument("--modes", type=int, default=16, help="Fourier modes per dim of the network")
    train.add_argument("--width", type=int, default=32, help="hidden channels of the network")
    train.add_argument("--layers", type=int, default=4, help="Fourier layers")
    train.add_argument("--noise", choices=("matched", "grf"), default=None,
                       help="matched: a SpectrumMatchedField of the (centred) training fields, the data's own "
                            "spectrum with a power-law tail; grf: (-Laplacian + tau^2)^-alpha. Default matched for "
                            "an unconditional model, grf with --conditional")
    train.add_argument("--resolved", type=int, default=None,
                       help="with --noise matched: the largest |k_i| the data determine (default: the last shell "
                            "holding more than rounding)")
    train.add_argument("--spectral-output", action=argparse.BooleanOptionalAction, default=None,
                       help="colour the network's output by the noise's square-root covariance (default: on with "
                            "--noise matched, off with grf)")
    train.add_argument("--no-centre", action="store_true",
                       help="unconditional model: do not model the fields about their mean field (a forced flow's "
                            "standing pattern); default centred")
    train.add_argument("--positional", action="store_true",
                       help="give the network sin/cos of the coordinates (for fields that are not statistically "
                            "homogeneous)")
    train.add_argument("--alpha", type=float, default=2.0, help="with --noise grf: smoothness of "
                                                                "(-Laplacian + tau^2)^-alpha")
    train.add_argument("--tau", type=float, default=5.0, help="with --noise grf: inverse length scale")
    train.add_argument("--band-limit", type=int, default=None,
                       help="noise band limit B, the largest |k_i| sampled: grids finer than 2 B + 2 points get no "
                            "finer modes. Default: --noise grf the largest the training grid resolves; matched 2 n - "
                            "1 (grids up to 4x the training grid's n)")
    train.add_argument("--conditional", action="store_true",
                       help="train a CoarseConditionedDenoiser for super-resolution (the coarse field an input "
                            "channel) instead of an unconditional EDMDenoiser")
    train.add_argument("--coarse", type=int, nargs="+", default=None,
                       help="with --conditional: the coarse grid (points per dim) whose Fourier modes condition the "
                            "model; required")
    train.add_argument("--mean-run", default=None,
                       help="with --conditional: a surrogate directory (Surrogate.save / sciml fit) mapping the "
                            "interpolated coarse field to the fine one; the model then learns the residual "
                            "fine - mean (regression + residual diffusion, CorrDiff)")
    train.add_argument("--seed", type=int, default=0, help="seed of the weights and the noise streams")
    train.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    generate = sub.add_parser("sample", formatter_class=fmt, help="draw fields on any grid of the model's box",
                              description="Writes --n samples on a --resolution grid to --out (NetCDF) and, with "
                                          "--figure, samples beside --data fields and their spectra.")
    generate.add_argument("model", help="model directory written by `sciml diffusion train`")
    generate.add_argument("--resolution", type=int, nargs="+", required=True, help="points per dim of the grid")
    generate.add_argument("--n", type=int, default=8, help="number of samples")
    generate.add_argument("--steps", type=int, default=18, help="sampler steps (heun: 2 steps - 1 evaluations)")
    generate.add_argument("--sampler", choices=("heun", "trig_heun", "euler_maruyama", "ode"), default="trig_heun",
                          help="sampler (trig_heun: Heun in the preconditioning's coordinates, exact for Gaussian "
                               "data with the noise's spectrum)")
    generate.add_argument("--seed", type=int, default=0, help="seed of the sampler's generator")
    generate.add_argument("--out", required=True, help="output NetCDF file")
    generate.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    generate.add_argument("--data", default=None, help="NetCDF reference fields for the figure (e.g. solver truth)")
    generate.add_argument("--figure", default=None, help="draw samples beside data and the spectra here (PNG)")

    superres = sub.add_parser("superres", formatter_class=fmt, help="super-resolve coarse fields into an ensemble",
                              description="Reads the model's variables from --coarse, writes --members fine fields "
                                          "per coarse field on a --resolution grid to --out, consistent with the "
                                          "coarse field's Fourier modes; with --figure, members beside --truth and "
                                          "the bicubic upsampling.")
    superres.add_argument("model", help="model directory written by `sciml diffusion train`")
    superres.add_argument("--coarse", required=True, help="NetCDF file with the coarse fields")
    superres.add_argument("--resolution", type=int, nargs="+", required=True, help="points per dim of the target")
    superres.add_argument("--members", type=int, default=8, help="ensemble members per coarse field")
    superres.add_argument("--steps", type=int, default=18, help="sampler steps")
    superres.add_argument("--guidance", action="store_true",
                          help="for a --conditional model: also apply the data-consistency step (the coarse modes "
                               "then hold exactly); an unconditional model is always guided")
    superres.add_argument("--seed", type=int, default=0, help="seed of the sampler's generator")
    superres.add_argument("--out", required=True, help="output NetCDF file")
    superres.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    superres.add_argument("--truth", default=None, help="NetCDF fine-grid truth for the figure")
    superres.add_argument("--figure", default=None, help="draw members beside truth and bicubic here (PNG)")
    return group


def _load_dataset(path: str, what: str):
    import xarray as xr

    from ..errors import DataError

    try:
        return xr.load_dataset(path)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read the {what} ({str(error).splitlines()[0]})") from None


def _space(da):
    for dims in (("y", "x"), ("x",)):
        if all(d in da.dims for d in dims):
            return dims
    from ..errors import DataError

    raise DataError(f"variable {da.name!r} has dims {da.dims}; expected spatial dims (y, x) or (x,)")


def save_model(model, path, *, variables: list[str], attrs: dict, command: str, mean_run: str | None = None) -> None:
    """Write an :class:`~sciml.diffusion.EDMDenoiser` or :class:`~sciml.diffusion.CoarseConditionedDenoiser` (its
    options, weights and the data's attributes; ``mean_run``: the directory of its mean surrogate, whose
    architecture is rebuilt from there on load, the weights coming from this file) to ``path``."""
    import dataclasses
    import io

    import torch

    from .._atomic import write_bytes
    from .model import CoarseConditionedDenoiser

    state = {"format": FORMAT, "domain": model.domain.to_json(), "noise": dataclasses.asdict(model.noise),
             "noise_kind": type(model.noise).__name__, "network": dataclasses.asdict(model.net.config),
             "sigma_data": model.sigma_data, "channels": model.channels, "variables": variables, "attrs": attrs,
             "command": command, "weights": model.state_dict(), "kind": "edm",
             "spectral_output": bool(getattr(model, "spectral_output", False))}
    if isinstance(model, CoarseConditionedDenoiser):
        state.update(kind="coarse_conditioned", coarse=list(model.coarse), condition_scale=model.condition_scale,
                     mean_run=mean_run)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes(path, lambda file: file.write(buffer.getvalue()))


def load_model(directory):
    """``(model, manifest)`` from a directory written by ``sciml diffusion train``."""
    from pathlib import Path

    import torch

    from ..errors import ConfigError, DataError
    from ..grids import Grid
    from .model import CoarseConditionedDenoiser, EDMDenoiser, FieldNetConfig
    from .noise import GaussianRandomField, MaternField, SpectrumMatchedField

    path = Path(directory) / "model.pt"
    if not path.is_file():
        raise ConfigError(f"{directory}: no model.pt; train one with `sciml diffusion train`")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is one message
        raise DataError(f"{path}: cannot read the model ({str(error).splitlines()[0]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DataError(f"{path}: not a sciml diffusion model (format {FORMAT})")
    kinds = {"GaussianRandomField": GaussianRandomField, "MaternField": MaternField,
             "SpectrumMatchedField": SpectrumMatchedField}
    noise = kinds[state["noise_kind"]](**{key: tuple(value) if isinstance(value, list) else value
                                          for key, value in state["noise"].items()})
    network = dict(state["network"])
    network["n_modes"] = tuple(network["n_modes"])
    options = {"domain": Grid.from_json(state["domain"]), "noise": noise, "channels": state["channels"],
                   "sigma_data": state["sigma_data"], "network": FieldNetConfig(**network)}
    if state.get("kind", "edm") == "coarse_conditioned":
        mean = None
        if state.get("mean_run"):
            mean = _load_surrogate(state["mean_run"], f"{path}: its mean model")
        model = CoarseConditionedDenoiser(**options, coarse=tuple(state["coarse"]),
                                          condition_scale=state["condition_scale"], mean_model=mean,
                                          spectral_output=bool(state.get("spectral_output", False)))
    else:
        model = EDMDenoiser(**options, spectral_output=bool(state.get("spectral_output", False)),
                            mean_field=state["weights"].get("mean_field"))  # a buffer: saved with the weights
    model.load_state_dict(state["weights"])
    return model.eval(), state


def _load_surrogate(directory: str, what: str):
    """The :class:`sciml.surrogate.Surrogate` saved in ``directory`` (one-line errors)."""
    from pathlib import Path

    from ..errors import ConfigError, SciMLError
    from ..surrogate import Surrogate

    if not Path(directory).is_dir():
        raise ConfigError(f"{what}: no surrogate directory {directory}; train one with `sciml fit` (inputs the "
                          f"interpolated coarse field, outputs the fine one) or Surrogate.save")
    try:
        return Surrogate.load(directory)
    except SciMLError:
        raise
    except Exception as error:  # noqa: BLE001 - any unreadable run is one message
        raise ConfigError(f"{what}: cannot load the surrogate in {directory} ({str(error).splitlines()[0]})") from None


def _grid(model, resolution):
    from ..errors import ConfigError
    from ..grids import Grid

    if len(resolution) == 1:
        resolution = resolution * model.domain.ndim
    if len(resolution) != model.domain.ndim or any(n < 2 for n in resolution):
        raise ConfigError(f"--resolution takes {model.domain.ndim} size(s) >= 2 for this model, got {resolution}")
    return Grid.box(*resolution, lengths=model.domain.lengths)


def _writable(path: str, overwrite: bool) -> None:
    from pathlib import Path

    from ..errors import ConfigError

    if Path(path).exists() and not overwrite:
        raise ConfigError(f"{path} exists; pass --overwrite to replace it")


def _write_netcdf(ds, path: str) -> None:
    from ..data.io import write

    write(ds, path, overwrite=True)


def run(args: argparse.Namespace, command: str) -> None:
    """Run ``sciml diffusion <args.diffusion_command>``; bad input raises :class:`sciml.errors.SciMLError` subclasses."""
    if args.diffusion_command == "train":
        _train(args, command)
    elif args.diffusion_command == "sample":
        _sample(args, command)
    else:
        _superres(args, command)


def _train(args, command: str) -> None:
    from pathlib import Path

    import numpy as np
    import torch

    from .._atomic import write_text
    from ..errors import ConfigError, DataError
    from ..grids import Grid
    from ..train import TrainConfig, fit, seed_everything
    from .model import CoarseConditionedDenoiser, EDMDenoiser, FieldNetConfig
    from .noise import GaussianRandomField, SpectrumMatchedField
    from .objectives import DiffusionTask, EDMLoss

    out = Path(args.out)
    _writable(str(out / "model.pt"), args.overwrite)
    ds = _load_dataset(args.data, "training fields")
    missing = [v for v in args.variable if v not in ds.data_vars]
    if missing:
        raise DataError(f"{args.data}: no variable(s) {', '.join(missing)}; it has {', '.join(map(str, ds.data_vars))}")
    first = ds[args.variable[0]]
    space = _space(first)
    grid = Grid.from_coords({d: np.asarray(first[d].values) for d in space})
    other = [d for d in first.dims if d not in space]
    channels = [np.asarray(ds[v].transpose(*other, *space).values, dtype=np.float32).reshape(-1, *grid.shape)
                for v in args.variable]
    fields = torch.from_numpy(np.stack(channels, axis=1))
    if not bool(torch.isfinite(fields).all()):
        raise DataError(f"{args.data}: the training fields have NaN or infinite values")
    kind = args.noise or ("grf" if args.conditional else "matched")
    if kind == "grf" and args.resolved is not None:
        raise ConfigError("--resolved is an option of --noise matched")
    if args.band_limit is not None:
        band = args.band_limit
    else:  # matched: its tail reaches grids 4x finer than the training grid (zero-shot sampling)
        band = 2 * min(grid.shape) - 1 if kind == "matched" else (min(grid.shape) - 1) // 2
    if kind == "grf" and 2 * band >= min(grid.shape):
        raise ConfigError(f"--band-limit {band} is not resolved by the training grid {grid.shape} (needs 2 B < n)")
    modes = tuple(min(args.modes, n) for n in grid.shape)
    network = FieldNetConfig(n_modes=modes, hidden_channels=args.width, n_layers=args.layers,
                             positional=args.positional)
    spectral = args.spectral_output if args.spectral_output is not None else kind == "matched"
    mean_run = None
    if not args.conditional:
        if args.coarse is not None or args.mean_run is not None:
            raise ConfigError("--coarse and --mean-run need --conditional (a super-resolution model)")
        mean_field = None if args.no_centre else fields.mean(0)  # (channels, *space)
        centred = fields if mean_field is None else fields - mean_field
        if kind == "matched":
            noise = SpectrumMatchedField.from_fields(centred, grid, band_limit=band,
                                                     resolved="auto" if args.resolved is None else args.resolved)
        else:
            noise = GaussianRandomField(alpha=args.alpha, tau=args.tau, band_limit=band)
        seed_everything(args.seed)
        model = EDMDenoiser(domain=grid, noise=noise, channels=len(args.variable), sigma_data=float(centred.std()),
                            network=network, spectral_output=spectral, mean_field=mean_field)
    else:
        if kind == "matched":
            raise ConfigError("--noise matched is for unconditional models; a --conditional model takes --noise grf "
                              "(its residual's spectrum is not the fields')")
        if args.no_centre:
            raise ConfigError("--no-centre is for unconditional models (a --conditional one is centred on its "
                              "condition)")
        noise = GaussianRandomField(alpha=args.alpha, tau=args.tau, band_limit=band)
        if args.coarse is None:
            raise ConfigError("--conditional needs --coarse N [N]: the coarse grid whose modes condition the model")
        coarse = tuple(args.coarse) * (grid.ndim if len(args.coarse) == 1 else 1)
        if len(coarse) != grid.ndim or any(c < 2 or c >= n for c, n in zip(coarse, grid.shape)):
            raise ConfigError(f"--coarse {list(args.coarse)} must give {grid.ndim} size(s) >= 2 coarser than the "
                              f"training grid {grid.shape}")
        mean = None
        if args.mean_run is not None:
            mean = _load_surrogate(args.mean_run, "--mean-run")
            mean_run = str(Path(args.mean_run).resolve())
        scales = CoarseConditionedDenoiser.scales(fields, coarse, mean_model=mean)
        seed_everything(args.seed)
        model = CoarseConditionedDenoiser(domain=grid, noise=noise, coarse=coarse, channels=len(args.variable),
                                          **scales, network=network, mean_model=mean, spectral_output=spectral)
    task = DiffusionTask(model, objective=EDMLoss(), ema_decay=args.ema_decay, seed=args.seed)
    history = fit(task, (fields,), config=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                                      device=args.device, seed=args.seed,
                                                      progress=not args.no_progress))
    out.mkdir(parents=True, exist_ok=True)
    ema = task.ema.module.cpu()
    save_model(ema, out / "model.pt", variables=list(args.variable),
               attrs={v: {k: _plain(x) for k, x in ds[v].attrs.items()} for v in args.variable}, command=command,
               mean_run=mean_run)
    write_text(out / "history.json", json.dumps([dict(r) for r in history], indent=1, default=float))
    print(f"trained {len(history)} epochs on {fields.shape[0]} fields {grid.shape}; wrote {out / 'model.pt'}")


def _plain(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)


def _template(model, state, grid):
    """A dataset naming the model's variables with their attributes, on ``grid``."""
    import numpy as np
    import xarray as xr

    coords = grid.coords()
    return xr.Dataset({v: (grid.dims, np.zeros(grid.shape), state["attrs"].get(v, {})) for v in state["variables"]},
                      coords=coords)


def _sample(args, command: str) -> None:
    from .api import sample

    _writable(args.out, args.overwrite)
    model, state = load_model(args.model)
    grid = _grid(model, args.resolution)
    ds = sample(model, _template(model, state, grid), args.n, seed=args.seed, sampler=args.sampler,
                  steps=args.steps, attrs={"history": command})
    _write_netcdf(ds, args.out)
    print(f"wrote {args.n} samples on {grid.shape} to {args.out}")
    if args.figure:
        data = _load_dataset(args.data, "reference fields") if args.data else None
        _sample_figure(ds, data, state["variables"][0], args.figure)
        print(f"wrote {args.figure}")


def _superres(args, command: str) -> None:
    from .api import super_resolve

    _writable(args.out, args.overwrite)
    model, state = load_model(args.model)
    grid = _grid(model, args.resolution)
    coarse = _load_dataset(args.coarse, "coarse fields")
    missing = [v for v in state["variables"] if v not in coarse.data_vars]
    if missing:
        from ..errors import DataError

        raise DataError(f"{args.coarse}: no variable(s) {', '.join(missing)} the model was trained on")
    ds = super_resolve(model, coarse[state["variables"]], grid, args.members, seed=args.seed, steps=args.steps,
                       guidance=True if getattr(args, "guidance", False) else None)
    ds.attrs["history"] = command
    _write_netcdf(ds, args.out)
    print(f"wrote {args.members} members per coarse field on {grid.shape} to {args.out}")
    if args.figure:
        truth = _load_dataset(args.truth, "fine-grid truth") if args.truth else None
        _superres_figure(ds, coarse, truth, state["variables"][0], args.figure)
        print(f"wrote {args.figure}")


def _frames(da, count: int):
    """Up to ``count`` 2-D frames of ``da`` (all non-spatial dims stacked) as numpy."""
    import numpy as np

    space = _space(da)
    other = [d for d in da.dims if d not in space]
    values = np.asarray(da.transpose(*other, *space).values).reshape(-1, *[da.sizes[d] for d in space])
    return values[:count]


def _label(da) -> str:
    from ..plotting import _with_units

    return _with_units(str(da.attrs.get("long_name", da.name)), da.attrs)


def _panels(fig, rows: list[list[tuple[str, object]]], label: str, extent) -> None:
    """Rows of titled images with one shared colour scale and one labelled colour bar."""
    from ..plotting import _scale

    cmap, lo, hi = _scale([f for row in rows for _, f in row])
    columns = max(len(row) for row in rows)
    axes = fig.subplots(len(rows), columns, squeeze=False)
    image = None
    for r, row in enumerate(rows):
        for c in range(columns):
            ax = axes[r][c]
            if c >= len(row):
                ax.set_axis_off()
                continue
            name, field = row[c]
            image = ax.imshow(field, origin="lower", cmap=cmap, vmin=lo, vmax=hi, extent=extent)
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("x")
            ax.set_ylabel("y")
    fig.colorbar(image, ax=axes, shrink=0.8, label=label)


def _energy_label(attrs) -> str:
    """The spectrum axis label of a field with CF ``attrs``: ``energy [(m s-1)$^2$]``, or dimensionless."""
    from ..plotting import _units

    units = _units(attrs)
    return f"energy [({units})$^2$]" if units not in ("", "1") else "energy (dimensionless)"


def _sample_figure(ds, data, variable: str, path: str) -> None:
    import torch
    from matplotlib.figure import Figure

    from ..plotting import save_figure
    from .metrics import isotropic_spectrum

    samples = ds[variable]
    extent = (0, float(samples["x"].values[-1] * len(samples["x"]) / (len(samples["x"]) - 1)),
              0, float(samples["y"].values[-1] * len(samples["y"]) / (len(samples["y"]) - 1)))
    rows = [[(f"sample {i}", f) for i, f in enumerate(_frames(samples, 4))]]
    spectra = {f"samples {samples.shape[-2]}x{samples.shape[-1]}": samples}
    if data is not None and variable in data:
        rows.insert(0, [(f"data {i}", f) for i, f in enumerate(_frames(data[variable], 4))])
        spectra = {f"truth {data[variable].shape[-2]}x{data[variable].shape[-1]}": data[variable], **spectra}
    fig = Figure(figsize=(2.6 * max(len(r) for r in rows) + 4.5, 2.6 * len(rows)), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[2.2, 1])
    _panels(left, rows, _label(samples), extent)
    left.suptitle(f"Diffusion samples of {variable} beside data")
    ax = right.subplots()
    for name, da in spectra.items():
        spectrum = isotropic_spectrum(torch.from_numpy(_frames(da, 10_000).astype("float64")))[0].numpy()
        k = range(len(spectrum))
        ax.loglog(list(k)[1:], spectrum[1:], label=name, color="black" if name.startswith("truth") else None)
    ax.set_xlabel("wavenumber |k| (cycles per box length)")
    ax.set_ylabel(_energy_label(samples.attrs))
    ax.set_title("isotropic energy spectrum")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def _superres_figure(ds, coarse, truth, variable: str, path: str) -> None:
    import numpy as np
    import torch
    from matplotlib.figure import Figure

    from ..plotting import save_figure

    members = ds[variable]
    first = {d: 0 for d in members.dims if d not in ("member", "y", "x")}
    fine = members.isel(first)
    low = coarse[variable].isel({d: 0 for d in coarse[variable].dims if d not in ("y", "x")})
    factor = fine.sizes["x"] // low.sizes["x"]
    pad = 2
    padded = torch.nn.functional.pad(torch.from_numpy(np.asarray(low.values, dtype=np.float64))[None, None],
                                     (pad, pad + 1, pad, pad + 1), mode="circular")
    size = factor * (padded.shape[-1] - 1) + 1
    up = torch.nn.functional.interpolate(padded, size=(size, size), mode="bicubic", align_corners=True)[0, 0]
    bicubic = up[factor * pad:factor * pad + fine.sizes["y"], factor * pad:factor * pad + fine.sizes["x"]].numpy()
    top = [(f"coarse {low.sizes['y']}x{low.sizes['x']}", np.asarray(low.values)), ("bicubic", bicubic)]
    if truth is not None and variable in truth:
        t = truth[variable].isel({d: 0 for d in truth[variable].dims if d not in ("y", "x")})
        top.insert(1, ("truth", np.asarray(t.values)))
    rows = [top, [(f"member {i}", f) for i, f in enumerate(_frames(fine, 4))]]
    n = len(fine["x"])
    extent = (0, float(fine["x"].values[-1] - fine["x"].values[0]) * n / (n - 1), 0,
              float(fine["y"].values[-1] - fine["y"].values[0]) * n / (n - 1))
    fig = Figure(figsize=(2.6 * max(len(r) for r in rows) + 1.5, 2.6 * len(rows)), layout="constrained")
    _panels(fig, rows, _label(members), extent)
    fig.suptitle(f"Super-resolution of {variable}: {low.sizes['y']}x{low.sizes['x']} -> "
                 f"{fine.sizes['y']}x{fine.sizes['x']}, members beside truth and bicubic")
    save_figure(fig, path)
