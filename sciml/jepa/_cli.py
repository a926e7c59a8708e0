"""``sciml jepa pretrain|probe|discover``: a thin layer over :mod:`sciml.jepa` (argparse and stdlib at import)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

_DEFAULTS = {"objective": "vicreg", "size_t": 16, "size_x": 32, "pairs": "trajectory", "max_boost": 0.5,
             "epochs": 30, "batch_size": 32, "lr": 1e-3, "seed": 0, "device": "cpu", "level": 0.9,
             "calibration_fraction": 0.25, "budgets": [16, 64, 256, 1024]}


def add_parser(commands) -> None:
    """Add the ``jepa`` group, with ``pretrain``, ``probe`` and ``discover``, to ``sciml``'s subparsers."""
    d = _DEFAULTS
    group = commands.add_parser("jepa", help="PDE coefficient discovery with a self-supervised (JEPA/VICReg) encoder",
                                description="Pretrain an encoder on unlabelled solutions, fit a probe of the "
                                            "coefficients on labelled ones, discover them in new solutions.")
    sub = group.add_subparsers(dest="jepa_command", required=True,
                               help="pretrain an encoder; fit a coefficient probe; discover coefficients of new data")

    pre = sub.add_parser("pretrain", help="train an encoder self-supervised on unlabelled solutions",
                         description="Writes encoder.pt + encoder.json (and history.jsonl, checkpoint/) to --out.")
    pre.add_argument("--data", required=True, nargs="+", help="file(s), glob or zarr store (sciml.data.open)")
    pre.add_argument("--out", required=True,
                     help="output directory (created; an existing non-empty one only with --resume or --overwrite)")
    pre.add_argument("--variable", help="field to train on (default: the data's only variable)")
    pre.add_argument("--objective", choices=("vicreg", "jepa"), default=d["objective"],
                     help=f"self-supervised loss (default {d['objective']})")
    pre.add_argument("--size-t", type=int, default=d["size_t"], help=f"frames per view (default {d['size_t']})")
    pre.add_argument("--size-x", type=int, default=d["size_x"],
                     help=f"points per spatial dim of a view (default {d['size_x']})")
    pre.add_argument("--pairs", choices=("trajectory", "group"), default=d["pairs"],
                     help="views from one trajectory, or from two of one coefficient group (the 'group' "
                          f"coordinate) (default {d['pairs']})")
    pre.add_argument("--max-boost", type=float, default=d["max_boost"],
                     help=f"largest Galilean boost of a Burgers view (default {d['max_boost']})")
    pre.add_argument("--epochs", type=int, default=d["epochs"], help=f"passes over the data (default {d['epochs']})")
    pre.add_argument("--batch-size", type=int, default=d["batch_size"],
                     help=f"trajectories per step (default {d['batch_size']})")
    pre.add_argument("--lr", type=float, default=d["lr"], help=f"peak learning rate (default {d['lr']})")
    pre.add_argument("--seed", type=int, default=d["seed"], help=f"seed of weights, views, order (default {d['seed']})")
    pre.add_argument("--device", default=d["device"], help=f"cpu, cuda, cuda:N or auto (default {d['device']})")
    pre.add_argument("--resume", action="store_true", help="continue the checkpoint in --out/checkpoint (default off)")
    pre.add_argument("--overwrite", action="store_true", help="replace the encoder in an existing --out (default off)")
    pre.add_argument("--no-progress", action="store_true", help="hide progress bars (default: shown)")

    probe = sub.add_parser("probe", help="fit a ridge probe of the coefficients with conformal intervals",
                           description="Writes the coefficient model (weights.pt + manifest.json) to --out; with "
                                       "--test also metrics.json and figures (estimates, label efficiency, PCA).")
    probe.add_argument("--encoder", required=True, help="directory `sciml jepa pretrain` wrote")
    probe.add_argument("--data", required=True, nargs="+", help="labelled solutions (coefficients as coordinates)")
    probe.add_argument("--out", required=True, help="output directory (created; an existing non-empty one only with "
                                                     "--overwrite)")
    probe.add_argument("--coefficients", nargs="+", default=["viscosity"],
                       help="coefficient coordinates along 'sample' (default viscosity)")
    probe.add_argument("--level", type=float, default=d["level"], help=f"nominal interval coverage (default {d['level']})")
    probe.add_argument("--calibration-fraction", type=float, default=d["calibration_fraction"],
                       help=f"labels held out to calibrate the intervals (default {d['calibration_fraction']})")
    probe.add_argument("--test", nargs="+", help="held-out labelled solutions for metrics and figures (default none)")
    probe.add_argument("--budgets", type=int, nargs="+", default=d["budgets"],
                       help=f"label budgets of the label-efficiency curve (default {' '.join(map(str, d['budgets']))})")
    probe.add_argument("--seed", type=int, default=d["seed"], help=f"seed of the calibration split (default {d['seed']})")
    probe.add_argument("--overwrite", action="store_true", help="replace the probe in an existing --out (default off)")

    disc = sub.add_parser("discover", help="estimate coefficients with intervals for unlabelled solutions",
                          description="Writes a NetCDF of <coefficient>_estimate/_lower/_upper along 'sample'.")
    disc.add_argument("--model", required=True, help="directory `sciml jepa probe` wrote")
    disc.add_argument("--data", required=True, nargs="+", help="solutions, any format sciml.data.open reads")
    disc.add_argument("--out", required=True, help="output NetCDF file (an existing one only with --overwrite)")
    disc.add_argument("--overwrite", action="store_true", help="replace --out if it exists (default off)")
    disc.add_argument("--figure", help="also plot estimated against true coefficient (needs the true coordinate) "
                                       "to this PNG (default none)")


def _data(paths):
    from ..data import open as open_data

    return open_data(paths[0] if len(paths) == 1 else paths)


def _save_encoder(model, directory: Path) -> None:
    import torch

    from .._atomic import write_bytes, write_text

    directory.mkdir(parents=True, exist_ok=True)
    write_bytes(directory / "encoder.pt", lambda file: torch.save(model.state_dict(), file))
    write_text(directory / "encoder.json", json.dumps(model.manifest(), indent=2))


def _load_encoder(directory: Path):
    import torch

    from ..errors import DataError
    from .encoder import JEPAModel

    try:
        manifest = json.loads((directory / "encoder.json").read_text())
        state = torch.load(directory / "encoder.pt", map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError) as err:
        raise DataError(f"{directory}: no encoder written by `sciml jepa pretrain` ({type(err).__name__})") from None
    model = JEPAModel.from_manifest(manifest)
    model.load_state_dict(state)
    return model.eval()


def run(args: argparse.Namespace, command: str) -> None:
    """Run ``sciml jepa <args.jepa_command>``; ``command`` is the shell command line (kept in the outputs)."""
    from ..errors import ConfigError

    out = Path(args.out)
    if args.jepa_command in ("pretrain", "probe"):
        resuming = args.jepa_command == "pretrain" and args.resume
        if out.exists() and (not out.is_dir() or any(out.iterdir())) and not (resuming or args.overwrite):
            raise ConfigError(f"--out {out}: exists and is not an empty directory; pass --overwrite to replace it"
                              + (" or --resume to continue its checkpoint" if args.jepa_command == "pretrain" else ""))
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out}: is a file; give a directory")
    if args.jepa_command == "pretrain":
        from ..train import TrainConfig
        from .objectives import PretrainConfig, pretrain

        config = PretrainConfig(objective=args.objective, size_t=args.size_t, size_x=args.size_x, pairs=args.pairs,
                                max_boost=args.max_boost, seed=args.seed, variable=args.variable)
        train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                            device=args.device, progress=not args.no_progress)
        out.mkdir(parents=True, exist_ok=True)
        model, history = pretrain(_data(args.data), config=config, train=train, checkpoint_dir=out / "checkpoint",
                                  resume=args.resume, log_path=out / "history.jsonl")
        model.spec["command"] = command
        _save_encoder(model, out)
        last = history[-1]
        print(f"pretrained {args.objective} for {len(history)} epochs: loss {last['train_loss']:.4g}, embedding rank "
              f"{last['train_embedding_rank']:.3g}; wrote {out}")
    elif args.jepa_command == "probe":
        import numpy as np

        from ..plotting import save_figure
        from .discovery import discover, plot_embeddings, plot_estimates, plot_label_efficiency, prepare, save
        from .probes import embed, fit_probe, label_efficiency

        encoder = _load_encoder(Path(args.encoder))
        labelled = _data(args.data)
        model = fit_probe(encoder, labelled, coefficients=args.coefficients, level=args.level,
                          calibration_fraction=args.calibration_fraction, seed=args.seed)
        save(model, out)
        message = f"probe of {args.coefficients} on {labelled.sizes['sample']} labelled trajectories; wrote {out}"
        if args.test:
            test = _data(args.test)
            found = discover(model, test)
            metrics = {"command": command, "level": args.level}
            _, x = prepare(encoder, labelled)
            _, x_test = prepare(encoder, test)
            features, test_features = embed(encoder, x), embed(encoder, x_test)
            for name in args.coefficients:
                if name not in test.coords:
                    raise ConfigError(f"--test data lack the true {name!r} coordinate")
                truth = test[name].values
                lo, hi = found[f"{name}_lower"].values, found[f"{name}_upper"].values
                metrics[name] = {
                    "relative_error": float(np.mean(np.abs(found[f"{name}_estimate"].values - truth) / truth)),
                    "coverage": float(np.mean((truth >= lo) & (truth <= hi)))}
                curve = label_efficiency(features, labelled[name].values, test_features, truth, budgets=args.budgets)
                metrics[name]["label_efficiency"] = curve
                save_figure(plot_estimates(found, name=name), out / f"{name}_estimates.png")
                save_figure(plot_label_efficiency({"linear probe": curve}, name=name), out / f"{name}_label_efficiency.png")
                save_figure(plot_embeddings(test_features, truth, name=name,
                                            units=str(test[name].attrs.get("units", "1"))), out / f"{name}_pca.png")
            from .._atomic import write_text

            write_text(out / "metrics.json", json.dumps(metrics, indent=2))
            message += "; " + ", ".join(f"{n}: {100 * metrics[n]['relative_error']:.2f}% error, "
                                        f"{100 * metrics[n]['coverage']:.0f}% covered" for n in args.coefficients)
        print(message)
    elif args.jepa_command == "discover":
        from ..data import write
        from ..data.cf import check_writable
        from .discovery import discover, plot_estimates

        out = check_writable(out, overwrite=args.overwrite)  # before the work: a one-line error, no lost file
        result = discover(args.model, _data(args.data))
        name = next(v for v in result.data_vars if v.endswith("_estimate"))[:-len("_estimate")]
        if args.figure and name not in result.coords:  # before writing: one line, not a half-done run
            raise ConfigError(f"--figure plots estimated against true {name}, and the data have no {name!r} coordinate "
                              f"along 'sample' (unlabelled solutions); leave out --figure")
        result.attrs["command"] = command
        write(result, out, overwrite=args.overwrite)
        if args.figure:
            from ..plotting import save_figure

            save_figure(plot_estimates(result, name=name), args.figure)
        print(f"estimated {result.sizes['sample']} samples; wrote {out}")
    else:
        raise ConfigError(f"unknown jepa command {args.jepa_command!r}")
