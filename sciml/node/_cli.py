"""``sciml node train|predict``: the statistics neural ODE from the command line (a thin layer over
:func:`sciml.node.fit_statistics_model` and :func:`sciml.node.predict_statistics`).

Only argparse and the standard library at import, so ``sciml --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json


def add_parser(commands) -> argparse.ArgumentParser:
    """Add the ``node`` group (``train``, ``predict``) to the subparsers ``commands`` of ``sciml``'s parser."""
    node = commands.add_parser(
        "node", help="neural ODEs on turbulence statistics: train on DNS decay curves, predict decay",
        description="Neural ODE d(log K, log eps[, log K_P])/dt = f(state, Re, 1/Fr) trained on the statistics the "
                    "turbulence3d / turbulence2d recipes write, with the calibrated k-epsilon and power-law baselines.")
    sub = node.add_subparsers(dest="node_command", required=True, metavar="{train,predict}",
                              help="train: fit a model to DNS statistics; predict: integrate it from initial states")
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
    return node


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
        data = _open(args.data)
        model, history = st.fit_statistics_model(data, val=_open(args.val) if args.val else None, config=config,
                                                 train_config=train_config, irregular=args.irregular, seed=args.seed)
        model.provenance.update({"command": command, "data": [str(p) for p in args.data]})
        model.save(out, overwrite=args.overwrite)
        write_text(out / "history.json", json.dumps(list(history), indent=1))
        if args.figure:
            _figure(model, data, args.figure, "Training runs: neural ODE and baselines against the DNS")
        print(f"saved {out} (C_eps2 = {model.k_epsilon.c_eps2:.4g}, power law n = {model.power_law.exponent:.4g}, "
              f"final train loss {history[-1]['train_loss']:.4g})")
        return
    if args.node_command == "predict":
        from ..data import write

        model = st.StatisticsModel.load(args.model)
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
            write_text(args.json, json.dumps(errors, indent=2))
        print(f"wrote {args.out}")
        return
    raise ConfigError(f"unknown node command {args.node_command!r}; use train or predict")


def _figure(model, data, path, title, predicted=None) -> None:
    from ..plotting import save_figure
    from .figures import plot_decay
    from .statistics import predict_statistics

    if predicted is None:
        predicted = predict_statistics(model, data)
    same_times = predicted.sizes["time"] == data.sizes["time"]
    save_figure(plot_decay(predicted, data if same_times else None, title=title), path)
