"""``sciml node train|predict``: the statistics neural ODE from the command line (a thin layer over
:func:`sciml.node.fit_statistics_model` and :func:`sciml.node.predict_statistics`).

Only argparse and the standard library at import, so ``sciml --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json

#: closure-train's unroll curriculum, frames:epochs per stage: the recipe of benchmarks/closure_ns2d.py.
DEFAULT_CURRICULUM = "2:3,4:3,8:8,16:12"
#: Frames of the a-posteriori loss that tunes the Smagorinsky coefficient (capped by the longest unroll).
TUNE_FRAMES = 8


def add_parser(commands) -> argparse.ArgumentParser:
    """Add the ``node`` group (``train``, ``predict``) to the subparsers ``commands`` of ``sciml``'s parser."""
    node = commands.add_parser(
        "node", help="neural ODEs on turbulence statistics: train on DNS decay curves, predict decay",
        description="Neural ODE d(log K, log eps[, log K_P])/dt = f(state, Re, 1/Fr) trained on the statistics the "
                    "turbulence3d / turbulence2d recipes write, with the calibrated k-epsilon and power-law baselines.")
    sub = node.add_subparsers(dest="node_command", required=True,
                              metavar="{train,predict,closure-data,closure-train,closure-eval}",
                              help="train: fit a model to DNS statistics; predict: integrate it from initial states; "
                                   "closure-data / closure-train / closure-eval: a learned closure for a coarse 2-D "
                                   "Navier-Stokes solver, from filtered DNS, against Smagorinsky and no model")
    train = sub.add_parser(
        "train", help="train a statistics neural ODE on DNS decay curves and save it",
        description="Reads --data (statistics over (sample, time) with reynolds/inverse_froude coordinates), "
                    "trains by trajectory fitting through sciml.train.fit, fits the baselines to the same runs, "
                    "and writes manifest.json + weights.pt + history.json to --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train.add_argument("--data", required=True, nargs="+", help="statistics NetCDF file(s), joined along sample")
    train.add_argument("--val", nargs="+", default=None, help="validation statistics file(s); the best epoch is kept")
    train.add_argument("--out", required=True, help="model directory to write")
    train.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    train.add_argument("--epochs", type=int, default=300, help="training epochs")
    train.add_argument("--batch-size", type=int, default=8, help="trajectories per optimiser step")
    train.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (cosine schedule)")
    train.add_argument("--hidden", type=int, default=64, help="width of the network's hidden layers")
    train.add_argument("--layers", type=int, default=2, help="hidden layers of the network")
    train.add_argument("--method", choices=("rk4", "dopri5"), default="rk4", help="torchdiffeq integrator")
    train.add_argument("--step", type=float, default=0.1, help="rk4 step in units of the initial turnover time K0/eps0")
    train.add_argument("--adjoint", action="store_true", help="integrate with odeint_adjoint (less memory)")
    train.add_argument("--irregular", type=float, default=None,
                       help="train on this random fraction of each run's times (irregular sampling); none: all")
    train.add_argument("--seed", type=int, default=0, help="seed of the initialisation and the subsampling")
    train.add_argument("--members", type=int, default=1,
                       help="train a deep ensemble of this many independently seeded models (one fit each; "
                            "predict then writes the ensemble's spread); 1: a single model")
    train.add_argument("--calibrate", nargs="+", default=None,
                       help="held-out statistics file(s) (not the training runs) on which to scale the ensemble's "
                            "spread so that exp(+-2 spread) covers 95%% of their values; needs --members >= 2")
    train.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    train.add_argument("--figure", default=None, help="also draw the fitted decay curves of the training runs here (PNG)")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    predict = sub.add_parser(
        "predict", help="predict the decay of K and eps (and K_P) from initial statistics",
        description="Integrates a trained model from the first time of every run in --data to the file's times "
                    "(or --times), with the k-epsilon and power-law baselines, writes CF NetCDF to --out and, with "
                    "--figure, the predicted against the DNS decay curves.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    predict.add_argument("model", help="model directory written by `sciml node train`")
    predict.add_argument("--data", required=True, nargs="+", help="statistics NetCDF file(s) with the initial states")
    predict.add_argument("--times", type=float, nargs="+", default=None,
                         help="times since the initial state; default: the file's times")
    predict.add_argument("--out", required=True, help="output NetCDF file")
    predict.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    predict.add_argument("--figure", default=None, help="also draw predicted vs DNS decay curves here (PNG)")
    predict.add_argument("--json", default=None, help="also write the relative errors against the file's DNS here")
    _add_closure_parsers(sub)
    return node


def _add_closure_parsers(sub) -> None:
    defaults = argparse.ArgumentDefaultsHelpFormatter
    data = sub.add_parser(
        "closure-data", help="run fine 2-D DNS (Kolmogorov flow) and write it filtered to the coarse grid",
        description="Runs sciml.node.closure.filtered_dns: random initial vorticity, a spin-up, then --frames frames "
                    "--interval apart on the --fine grid, spectrally filtered to --coarse; writes CF NetCDF with "
                    "vorticity(sample, time, y, x) and the equation as attributes.", formatter_class=defaults)
    data.add_argument("--out", required=True, help="output NetCDF file")
    data.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    data.add_argument("--samples", type=int, default=8, help="trajectories (independent random initial states)")
    data.add_argument("--fine", type=int, default=128, help="DNS grid points per side")
    data.add_argument("--coarse", type=int, default=32, help="coarse grid points per side (must divide --fine)")
    data.add_argument("--frames", type=int, default=50, help="recorded frames after the first")
    data.add_argument("--interval", type=float, default=0.2, help="time between recorded frames")
    data.add_argument("--spinup", type=float, default=10.0, help="time run before recording")
    data.add_argument("--viscosity", type=float, default=5e-3, help="kinematic viscosity nu")
    data.add_argument("--drag", type=float, default=0.1, help="linear drag alpha")
    data.add_argument("--forcing-wavenumber", type=int, default=4, help="Kolmogorov forcing wavenumber n_f")
    data.add_argument("--filter", choices=("sharp", "gaussian"), default="sharp", help="spectral filter")
    data.add_argument("--seed", type=int, default=0, help="seed of the initial states")
    data.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    train = sub.add_parser(
        "closure-train", help="train a closure for the coarse solver on filtered DNS and save it",
        description="A learned closure (a small periodic CNN of vorticity and velocity on top of the tuned "
                    "Smagorinsky term) trained a-posteriori: the differentiable coarse solver is unrolled from "
                    "filtered DNS states over an unroll curriculum (--curriculum, short windows first) and the "
                    "trajectory error back-propagated through every step (sciml.train.fit); or --model "
                    "smagorinsky, the Smagorinsky model with C_s tuned on the same loss. The defaults are the recipe "
                    "of benchmarks/closure_ns2d.py. Writes manifest.json + weights.pt (+ history.json) to --out.",
        formatter_class=defaults)
    train.add_argument("--data", required=True, help="filtered DNS NetCDF (sciml node closure-data)")
    train.add_argument("--val", default=None, help="held-out filtered DNS for validation; the best epoch is kept")
    train.add_argument("--out", required=True, help="closure directory to write")
    train.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    train.add_argument("--model", choices=("learned", "smagorinsky"), default="learned",
                       help="learned: CNN (+ Smagorinsky base); smagorinsky: the tuned Smagorinsky model alone")
    train.add_argument("--smagorinsky", default="auto",
                       help="Smagorinsky coefficient C_s of the base (and of --model smagorinsky): auto (tuned by a "
                            "1-D search on the a-posteriori loss), none (no base), or a number")
    train.add_argument("--dt", type=float, default=0.025, help="coarse time step (must divide the frame interval)")
    train.add_argument("--curriculum", default=argparse.SUPPRESS,
                       help=f"unroll curriculum FRAMES:EPOCHS[,FRAMES:EPOCHS...], frames non-decreasing (default: "
                            f"{DEFAULT_CURRICULUM})")
    train.add_argument("--unroll", type=int, default=argparse.SUPPRESS,
                       help="instead of --curriculum: a fixed unroll of this many frames for --epochs epochs "
                            "(default: 8 when --epochs is given)")
    train.add_argument("--epochs", type=int, default=argparse.SUPPRESS,
                       help="epochs of the fixed --unroll (default: 6 when --unroll is given)")
    train.add_argument("--windows", type=int, default=48,
                       help="training windows drawn at random start times per epoch; 0: the fixed windows every "
                            "--stride frames")
    train.add_argument("--stride", type=int, default=4,
                       help="frames between the starts of two fixed windows (--windows 0, and validation)")
    train.add_argument("--hold", type=int, default=8,
                       help="evaluate the closure once every this many coarse steps and hold it in between "
                            "(0: at every solver stage); closure-eval runs it the same way")
    train.add_argument("--batch-size", type=int, default=8, help="windows per optimiser step")
    train.add_argument("--lr", type=float, default=4e-3, help="peak learning rate (cosine schedule)")
    train.add_argument("--channels", type=int, default=32, help="CNN channels")
    train.add_argument("--layers", type=int, default=6, help="CNN convolution layers (>= 2)")
    train.add_argument("--no-velocity", action="store_true", help="CNN input vorticity only (no velocity channels)")
    train.add_argument("--seed", type=int, default=0, help="seed of the initialisation and the batch order")
    train.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    ev = sub.add_parser(
        "closure-eval", help="score a saved closure against Smagorinsky and no model on filtered DNS",
        description="Runs the coarse solver from the first frame of every trajectory in --data with no model, "
                    "Smagorinsky (the coefficient the run was trained with, or --smagorinsky) and the saved "
                    "closure; writes evaluation.json (time with vorticity correlation above --threshold, "
                    "late-time spectrum error, cost), evaluation.nc and closure.png to --out.",
        formatter_class=defaults)
    ev.add_argument("run", help="closure directory written by `sciml node closure-train`")
    ev.add_argument("--data", required=True, help="filtered DNS NetCDF to score on (held-out trajectories)")
    ev.add_argument("--out", required=True, help="report directory to write")
    ev.add_argument("--overwrite", action="store_true", help="replace files in --out")
    ev.add_argument("--dt", type=float, default=None, help="coarse time step; default: the run's")
    ev.add_argument("--smagorinsky", type=float, default=None,
                    help="Smagorinsky coefficient of the baseline; default: the one tuned in closure-train")
    ev.add_argument("--threshold", type=float, default=0.95, help="correlation level of the decorrelation time")
    ev.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _open(paths):
    import xarray as xr

    from ..errors import DataError

    try:
        parts = [xr.load_dataset(path) for path in paths]
    except (OSError, ValueError) as error:
        raise DataError(f"{' '.join(map(str, paths))}: cannot read statistics ({str(error).splitlines()[0]})") from None
    return parts[0] if len(parts) == 1 else xr.concat(parts, dim="sample", data_vars="minimal", coords="minimal",
                                                       compat="override", combine_attrs="override")


def run(args: argparse.Namespace, command: str) -> None:
    """Run ``sciml node <args.node_command>``; bad input raises :class:`sciml.errors.SciMLError` subclasses."""
    from pathlib import Path

    from .._atomic import write_text
    from ..errors import ConfigError, DataError
    from . import statistics as st

    if args.node_command == "train":
        from ..train import TrainConfig

        out = Path(args.out)
        if out.exists() and any(out.iterdir()) and not args.overwrite:
            raise DataError(f"{out}: exists and is not empty; pass --overwrite or choose another --out")
        config = st.StatisticsConfig(hidden=args.hidden, layers=args.layers, method=args.method, step=args.step,
                                     adjoint=args.adjoint)
        train_config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=0.0,
                                   device=args.device, progress=not args.no_progress, seed=args.seed)
        if args.members < 1:
            raise ConfigError(f"--members must be >= 1, got {args.members}")
        if args.calibrate and args.members < 2:
            raise ConfigError("--calibrate scales an ensemble's spread; pass --members 2 or more")
        data = _open(args.data)
        val = _open(args.val) if args.val else None
        if args.members == 1:
            model, history = st.fit_statistics_model(data, val=val, config=config, train_config=train_config,
                                                     irregular=args.irregular, seed=args.seed)
            histories, losses = list(history), f"{history[-1]['train_loss']:.4g}"
        else:
            model, runs = st.fit_statistics_ensemble(data, members=args.members, val=val, config=config,
                                                     train_config=train_config, irregular=args.irregular,
                                                     seed=args.seed)
            histories = [list(h) for h in runs]
            if args.calibrate:
                model = model.calibrate(_open(args.calibrate))
                print("spread scale " + ", ".join(f"{k} {v:.3g}" for k, v in model.spread_scale.items()))
            losses = ", ".join(f"{h[-1]['train_loss']:.4g}" for h in runs)
        model.provenance.update({"command": command, "data": [str(p) for p in args.data]})
        model.save(out, overwrite=args.overwrite)
        write_text(out / "history.json", json.dumps(histories, indent=1))
        if args.figure:
            _figure(model, data, args.figure, "Training runs: neural ODE and baselines against the DNS")
        what = "" if args.members == 1 else f"ensemble of {args.members}, "
        print(f"saved {out} ({what}C_eps2 = {model.k_epsilon.c_eps2:.4g}, power law n = "
              f"{model.power_law.exponent:.4g}, final train loss {losses})")
        return
    if args.node_command == "predict":
        from ..data import write

        model = st.load_statistics_model(args.model)
        data = _open(args.data)
        predicted = st.predict_statistics(model, data, args.times)
        predicted.attrs["history"] = command
        write(predicted, args.out, overwrite=args.overwrite)
        if args.figure:
            _figure(model, data, args.figure, "Predicted decay against the DNS", predicted)
        if args.json:
            if args.times is not None:
                raise ConfigError("--json compares with the file's DNS at its own times; leave out --times")
            errors = {v: st.decay_errors(predicted, data, v) for v in ("kinetic_energy", "dissipation")}
            if isinstance(model, st.StatisticsEnsemble):
                for v in ("kinetic_energy", "dissipation"):
                    errors[v]["members"] = [st.decay_errors(predicted.assign({v: predicted[f"{v}_members"]
                                                                                  .isel(member=m)}), data, v)["node"]
                                            for m in range(len(model.members))]
                    errors[v]["interval_coverage_2sigma"] = st.interval_coverage(predicted, data, v)
            write_text(args.json, json.dumps(errors, indent=2))
        print(f"wrote {args.out}")
        return
    if args.node_command == "closure-data":
        return _closure_data(args, command)
    if args.node_command == "closure-train":
        return _closure_train(args, command)
    if args.node_command == "closure-eval":
        return _closure_eval(args, command)
    raise ConfigError(f"unknown node command {args.node_command!r}; use train, predict, closure-data, closure-train "
                      "or closure-eval")


def _figure(model, data, path, title, predicted=None) -> None:
    from ..plotting import save_figure
    from .figures import plot_decay
    from .statistics import predict_statistics

    if predicted is None:
        predicted = predict_statistics(model, data)
    same_times = predicted.sizes["time"] == data.sizes["time"]
    save_figure(plot_decay(predicted, data if same_times else None, title=title), path)


def _open_dns(path):
    import xarray as xr

    from ..errors import DataError, SciMLError
    from .closure import check_reference

    try:
        ds = xr.load_dataset(path)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read filtered DNS ({str(error).splitlines()[0]})") from None
    try:
        check_reference(ds)
    except SciMLError as error:
        raise type(error)(f"{path}: {error}") from None
    return ds


def _curriculum(args):
    """The unroll curriculum of closure-train: --curriculum, or --unroll K --epochs E (one stage), or the default."""
    from ..errors import ConfigError
    from .closure import UnrollCurriculum

    unroll, epochs, text = (getattr(args, name, None) for name in ("unroll", "epochs", "curriculum"))
    fixed = unroll is not None or epochs is not None
    if fixed and text is not None:
        raise ConfigError("give either --curriculum or --unroll/--epochs, not both")
    if fixed:
        unroll, epochs = (8 if unroll is None else unroll), (6 if epochs is None else epochs)
        for name, value in (("unroll", unroll), ("epochs", epochs)):
            if value < 1:
                raise ConfigError(f"--{name} must be >= 1, got {value}")
        return UnrollCurriculum(frames=(unroll,), epochs=(epochs,))
    text = DEFAULT_CURRICULUM if text is None else text
    try:
        frames, epochs = zip(*(tuple(int(v) for v in part.split(":", 1)) for part in text.split(",")))
    except ValueError:
        raise ConfigError(f"--curriculum must be FRAMES:EPOCHS[,FRAMES:EPOCHS...] with integers, got {text!r}") from None
    return UnrollCurriculum(frames=frames, epochs=epochs)


def _closure_data(args, command: str) -> None:
    from pathlib import Path

    from ..data import write
    from ..errors import ConfigError, DataError
    from .closure import filtered_dns

    if Path(args.out).exists() and not args.overwrite:
        raise DataError(f"{args.out}: exists; pass --overwrite or choose another --out")
    for name in ("samples", "frames"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if not args.interval > 0 or not args.spinup >= 0:
        raise ConfigError(f"--interval must be > 0 and --spinup >= 0, got {args.interval} and {args.spinup}")
    ds = filtered_dns(args.samples, fine=args.fine, coarse=args.coarse,
                      times=[args.interval * i for i in range(args.frames + 1)], spinup=args.spinup, seed=args.seed,
                      viscosity=args.viscosity, drag=args.drag, forcing_wavenumber=args.forcing_wavenumber,
                      filter=args.filter, progress=not args.no_progress)
    ds.attrs["history"] = command
    write(ds, args.out, overwrite=args.overwrite)
    print(f"wrote {args.out} ({args.samples} trajectories, {args.fine}^2 DNS filtered to {args.coarse}^2)")


def _coefficient(text: str):
    from ..errors import ConfigError

    if text in ("auto", "none"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--smagorinsky must be auto, none or a number >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise ConfigError(f"--smagorinsky must be auto, none or a number >= 0, got {text!r}")
    return value


def _closure_train(args, command: str) -> None:
    from pathlib import Path

    from .._atomic import write_text
    from ..errors import ConfigError, DataError
    from ..train import TrainConfig, seed_everything
    from . import closure as cl

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise DataError(f"{out}: exists and is not empty; pass --overwrite or choose another --out")
    coefficient = _coefficient(args.smagorinsky)
    if args.model == "smagorinsky" and coefficient == "none":
        raise ConfigError("--model smagorinsky needs a coefficient: --smagorinsky auto or a number")
    curriculum = _curriculum(args)
    for name in ("stride", "batch_size", "channels"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("windows", "hold"):
        if getattr(args, name) < 0:
            raise ConfigError(f"--{name} must be >= 0, got {getattr(args, name)}")
    if args.layers < 2:
        raise ConfigError(f"--layers must be >= 2, got {args.layers}")
    if args.windows == 0 and len(curriculum.frames) > 1:
        raise ConfigError("--windows 0 (fixed windows) takes one unroll length; give --unroll K --epochs E or "
                          "--windows N > 0")
    data = _open_dns(args.data)
    val = _open_dns(args.val) if args.val else None
    solver = cl._solver_for(data, args.dt, hold_closure=args.hold)  # dt against the frame interval, before any work
    longest = curriculum.max_frames
    cl.trajectory_windows(cl._vorticity(data), longest, stride=args.stride)  # enough frames for the longest unroll
    tune_frames = min(TUNE_FRAMES, longest)
    search = None
    if coefficient in ("auto", "none"):  # the baseline of closure-eval is tuned in any case
        baseline, search = cl.tune_smagorinsky(data, dt=args.dt, frames=tune_frames, hold_closure=args.hold)
        print(f"tuned Smagorinsky C_s = {baseline:.4g} ({tune_frames}-frame a-posteriori loss)")
        coefficient = baseline if coefficient == "auto" else 0.0
    else:
        baseline = coefficient = float(coefficient)
    length = solver.equation.length
    metadata = {"command": command, "data": str(args.data), "dt": args.dt, "unroll": tune_frames,
                "curriculum": {"frames": list(curriculum.frames), "epochs": list(curriculum.epochs)},
                "windows": args.windows, "hold_closure": args.hold,
                "coarse_resolution": solver.n, "equation": solver.equation.attributes(),
                "frame_interval": solver.frame_interval, "smagorinsky": coefficient, "smagorinsky_baseline": baseline,
                "smagorinsky_search": None if search is None else {str(k): v for k, v in search.items()}}
    if args.model == "smagorinsky":
        model, history = cl.Smagorinsky(coefficient, length=length), None
    else:
        seed_everything(args.seed)
        vorticity = cl._vorticity(data)
        rms = float(vorticity.pow(2).mean().sqrt())
        velocity = not args.no_velocity
        model = cl.ClosureCNN(channels=args.channels, layers=args.layers, vorticity_scale=rms,
                              tendency_scale=0.1 * rms / solver.frame_interval, smagorinsky=coefficient, length=length,
                              velocity=velocity, velocity_scale=cl.velocity_rms(vorticity, length) if velocity else 1.0)
        config = TrainConfig(epochs=curriculum.total_epochs, batch_size=args.batch_size, lr=args.lr,
                             device=args.device, progress=not args.no_progress, seed=args.seed)
        frames = curriculum.frames[0] if args.windows == 0 else curriculum
        model, history = cl.train_closure(data, dt=args.dt, frames=frames, stride=args.stride, model=model,
                                          config=config, val_data=val, windows_per_epoch=args.windows or None,
                                          hold_closure=args.hold)
        metadata["final_train_loss"] = history[-1]["train_loss"] if history else None
        metadata["epochs"] = len(history)
    cl.save_closure(model, out, overwrite=args.overwrite, metadata=metadata)
    if history is not None:
        write_text(out / "history.json", json.dumps(list(history), indent=1))
    loss = "" if history is None else f", final train loss {history[-1]['train_loss']:.4g}"
    print(f"saved {out} ({args.model}, C_s = {coefficient:.4g}{loss})")


def _closure_eval(args, command: str) -> None:
    import math
    import warnings
    from pathlib import Path

    from .._atomic import write_text
    from ..data import write
    from ..errors import ConfigError, DataError
    from ..plotting import save_figure
    from . import closure as cl

    model = cl.load_closure(args.run)
    try:
        metadata = json.loads((Path(args.run) / "manifest.json").read_text()).get("metadata", {})
    except (OSError, ValueError):
        metadata = {}
    out = Path(args.out)
    names = ("evaluation.json", "evaluation.nc", "closure.png")
    if not args.overwrite and any((out / n).exists() for n in names):
        raise DataError(f"{out}: already holds an evaluation; pass --overwrite or choose another --out")
    if not 0 < args.threshold < 1:
        raise ConfigError(f"--threshold must be in (0, 1), got {args.threshold}")
    dt = args.dt if args.dt is not None else metadata.get("dt")
    if dt is None:
        raise ConfigError(f"{args.run}: the closure records no time step; pass --dt")
    hold = int(metadata.get("hold_closure", 0))  # runs from before --hold evaluated the closure at every stage
    data = _open_dns(args.data)
    n = int(data.sizes["x"])
    trained_n = metadata.get("coarse_resolution")
    if trained_n is not None and trained_n != n:
        raise ConfigError(f"the closure was trained on a {trained_n}x{trained_n} grid, {args.data} is {n}x{n}; "
                          "evaluate on data filtered to the training resolution")
    equation = cl._equation_attrs(data).attributes()
    trained_eq = metadata.get("equation")
    if trained_eq:
        differ = [k for k in equation if k in trained_eq and trained_eq[k] != equation[k]]
        if differ:
            warnings.warn(f"{args.data} differs from the training data in {', '.join(differ)} "
                          f"({', '.join(f'{trained_eq[k]} -> {equation[k]}' for k in differ)}): the closure extrapolates",
                          stacklevel=2)
    length = float(equation["domain_length"])
    if isinstance(model, cl.Smagorinsky):
        closures = {"no model": None, f"Smagorinsky (run, C_s = {float(model.coefficient):.3g})": model}
        if args.smagorinsky is not None:
            closures["Smagorinsky"] = cl.Smagorinsky(args.smagorinsky, length=length)
    else:
        c_s = args.smagorinsky if args.smagorinsky is not None else metadata.get("smagorinsky_baseline")
        if c_s is None:
            c_s = cl.tune_smagorinsky(data, dt=dt, frames=int(metadata.get("unroll", 5)), hold_closure=hold)[0]
            print(f"no tuned Smagorinsky coefficient in the run; tuned on {args.data}: C_s = {c_s:.4g}")
        closures = {"no model": None, "Smagorinsky": cl.Smagorinsky(float(c_s), length=length), "learned": model}
    evaluation = cl.evaluate_closures(data, closures, dt=dt, threshold=args.threshold,
                                      progress=not args.no_progress, hold_closure=hold)
    evaluation.attrs["history"] = command
    labels = list(closures)
    times = {k: float(evaluation["decorrelation_time"].sel(model=k)) for k in labels}
    errors = {k: float(evaluation["spectrum_error"].sel(model=k)) for k in labels}
    costs = {k: float(evaluation["seconds_per_time_unit"].sel(model=k)) / int(data.sizes["sample"]) for k in labels}
    report = {"run": str(args.run), "data": str(args.data), "command": command, "dt": dt, "threshold": args.threshold,
              "samples": int(data.sizes["sample"]), "horizon": float(data["time"].values[-1] - data["time"].values[0]),
              "decorrelation_time": times, "spectrum_error": errors, "seconds_per_time_unit_per_sample": costs}
    subject = labels[-1]
    baselines = [k for k in labels if k != subject]
    best = max(times[k] for k in baselines)
    report["correlation_time_ratio_to_best_baseline"] = times[subject] / best if best > 0 else math.inf
    report["spectrum_closer_than_baselines"] = errors[subject] < min(errors[k] for k in baselines)
    dns = data.attrs.get("dns_seconds_per_time_unit")
    samples = data.attrs.get("dns_samples")
    if dns and samples:
        per_sample = float(dns) / int(samples)
        report["dns_seconds_per_time_unit_per_sample"] = per_sample
        report["dns_over_model_cost"] = {k: per_sample / costs[k] for k in labels if costs[k] > 0}
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "evaluation.json", json.dumps(report, indent=2))
    write(evaluation, out / "evaluation.nc", overwrite=True)
    save_figure(cl.plot_closure_evaluation(evaluation, title=f"Closures on {Path(args.data).name} "
                                                             f"({n}x{n}, dt {dt:g})"), out / "closure.png")
    print(f"wrote {out}: correlation > {args.threshold} for "
          + ", ".join(f"{k} {times[k]:.3g}" for k in labels)
          + "; spectrum error " + ", ".join(f"{k} {errors[k]:.3g}" for k in labels))
