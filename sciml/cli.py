"""``sciml`` command line: parses arguments, calls the Python API, prints. Nothing else lives here.

Errors about the user's input (:class:`sciml.SciMLError`) print one line and exit with status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from . import __version__
from .errors import SciMLError


def _resolutions(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE parsed as JSON when it is JSON (``n_modes=[12,12]``), else kept as text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


# The TrainConfig fields the command line sets, with their help; defaults come from the config each command
# starts from (TrainConfig() for train, the quickstart's own), never re-declared here.
_TRAIN_OPTIONS = {
    "epochs": (int, "passes over the training data"),
    "max_time": (float, "optional wall-clock budget in seconds (results then depend on the machine's load)"),
    "batch_size": (int, "samples per optimiser step"),
    "lr": (float, "peak learning rate"),
    "weight_decay": (float, "AdamW weight decay"),
    "schedule": (str, "cosine or constant"),
    "warmup_fraction": (float, "fraction of the run with a linear warm-up"),
    "grad_clip": (float, "clip the gradient norm to this"),
    "precision": (str, "fp32, bf16 or fp16 (CUDA)"),
    "patience": (int, "stop after this many epochs without a better validation loss"),
    "checkpoint_every": (int, "also checkpoint every this many steps"),
    "workers": (int, "DataLoader worker processes reading batches"),
    "seed": (int, "seed of the initial conditions, parameter init and shuffling"),
    "device": (str, "auto (CUDA when present), cpu, cuda, cuda:N"),
}


def _add_train_options(parser: argparse.ArgumentParser, base, names=tuple(_TRAIN_OPTIONS)) -> None:
    """``--epochs``, ``--batch-size``, ... for the TrainConfig fields ``names``, defaults shown from ``base``."""
    group = parser.add_argument_group("training")
    for name in names:
        kind, text = _TRAIN_OPTIONS[name]
        default = getattr(base, name)
        group.add_argument(f"--{name.replace('_', '-')}", dest=f"train_{name}", type=kind, metavar=name.upper(),
                           help=f"{text} (default {default})")
    group.add_argument("--compile", dest="train_compile", action="store_true", default=None, help="torch.compile the model")
    group.add_argument("--no-progress", dest="train_progress", action="store_false", default=None, help="hide progress bars")


def _train_config(args: argparse.Namespace, base):
    """``base`` with the training options given on the command line."""
    from dataclasses import replace

    given = {key[6:]: value for key, value in vars(args).items() if key.startswith("train_") and value is not None}
    return replace(base, **given)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sciml", description="Scientific machine learning on simulation data.")
    parser.add_argument("--version", action="version", version=f"sciml {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    quick = commands.add_parser(
        "quickstart", help="generate Navier-Stokes data, train an FNO, evaluate zero-shot super-resolution, report",
        description="End-to-end run on data from the built-in solver; writes report.md, metrics.json and figures.")
    from .quickstart import QuickstartConfig

    defaults = QuickstartConfig()
    quick.add_argument("--out", required=True, help="output directory (created if missing)")
    quick.add_argument("--resolution", type=int, help=f"training grid points per side (default {defaults.resolution})")
    quick.add_argument("--n-train", type=int, help=f"training trajectories (default {defaults.n_train})")
    quick.add_argument("--n-test", type=int, help=f"test trajectories (default {defaults.n_test})")
    quick.add_argument("--eval-resolutions", type=_resolutions,
                       help="comma-separated grids for the error-vs-resolution curve (default "
                            f"{','.join(map(str, defaults.eval_resolutions))})")
    _add_train_options(quick, defaults.train, ("epochs", "max_time", "batch_size", "lr", "seed", "device"))

    gen = commands.add_parser(
        "generate", help="solve a named dataset recipe and write it as CF NetCDF",
        description="Deterministic by seed and resolution-consistent: the same --seed at 2x --resolution gives "
                    "the fine-grid solutions of the same continuous initial conditions/coefficients.")
    gen.add_argument("name", help="ns2d, ns2d-kolmogorov, burgers, darcy or swe-sphere")
    gen.add_argument("--n", type=int, required=True, help="number of samples")
    gen.add_argument("--resolution", type=int, required=True, help="grid points (nodes for darcy) per side")
    gen.add_argument("--seed", type=int, required=True)
    gen.add_argument("--out", required=True, help="output NetCDF file (an existing one only with --overwrite)")
    gen.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    gen.add_argument("--first-sample", type=int, help="index of the first sample (to generate in parts)")
    gen.add_argument("--device", help="cpu (default), cuda, cuda:N")
    gen.add_argument("--times", type=float, nargs="+", help="output times (time-dependent recipes; hours for swe-sphere)")
    gen.add_argument("--initial-condition", choices=("galewsky", "random"), help="swe-sphere")
    gen.add_argument("--viscosity", type=float)
    gen.add_argument("--viscosity-range", type=float, nargs=2, metavar=("LOW", "HIGH"),
                     help="burgers: one log-uniform viscosity per sample")
    gen.add_argument("--drag", type=float, help="ns2d-kolmogorov: linear drag")
    gen.add_argument("--coefficient", dest="coefficient_kind", choices=("threshold", "lognormal"), help="darcy")
    gen.add_argument("--solve-resolution", type=int, help="solve on this finer grid, then downsample")
    gen.add_argument("--chunk", type=int, help="samples solved as one batch (ns2d, ns2d-kolmogorov, burgers)")
    gen.add_argument("--workers", type=int, default=1,
                     help="split the samples over this many processes, at whole chunks, with the same result as "
                          "one process; with --device cuda worker i uses cuda:i (default 1)")
    gen.add_argument("--no-progress", action="store_true", help="hide progress bars")

    train = commands.add_parser(
        "train", help="train a neural-operator surrogate on a dataset and save it to a run directory",
        description="Opens --data with sciml.data.open (lazily: files larger than memory stream), holds out "
                    "--val-fraction of the trajectories, trains with a relative-L2 (or H1) loss and saves "
                    "manifest.json + weights.pt + history.jsonl to --out.")
    train.add_argument("--data", required=True, nargs="+", help="file(s), glob or zarr store")
    train.add_argument("--inputs", required=True, nargs="+", help="input variables (channels)")
    train.add_argument("--outputs", required=True, nargs="+", help="output variables")
    train.add_argument("--model", default="fno", help="registered model name (default fno; sfno on lat-lon grids)")
    train.add_argument("--option", dest="options", type=_option, action="append", default=[], metavar="KEY=VALUE",
                       help="model option, repeatable, e.g. --option n_modes=[12,12] --option hidden_channels=32 "
                            "(default: what the model chooses for the data's grid)")
    train.add_argument("--lag", type=int, help="time-stepping map state(t) -> state(t + lag steps)")
    train.add_argument("--loss", choices=("rel_l2", "h1"), default="rel_l2", help="training loss (default rel_l2)")
    train.add_argument("--val-fraction", type=float, default=0.1, help="trajectories held out for validation")
    train.add_argument("--block-size", type=int,
                       help="shuffle blocks of this many consecutive items (fewer, larger reads of a file on disk); "
                            "default: a full shuffle")
    train.add_argument("--out", required=True, help="run directory (must not exist or be empty)")
    train.add_argument("--checkpoint-dir", help="write a checkpoint every epoch here (outside --out)")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --checkpoint-dir")
    from .train import TrainConfig

    _add_train_options(train, TrainConfig())

    evaluate = commands.add_parser(
        "evaluate", help="relative L2 error of a trained surrogate on a dataset, with plots",
        description="Predicts every frame of --data on its own grid (any resolution) and compares with the file's "
                    "outputs; also on 2x and 4x coarser copies (spectral on periodic data, every 2nd/4th node on "
                    "bounded data).")
    evaluate.add_argument("run", help="run directory written by `sciml train`")
    evaluate.add_argument("--data", required=True, nargs="+", help="file(s), glob or zarr store with inputs and outputs")
    evaluate.add_argument("--json", help="also write the metrics to this JSON file")
    evaluate.add_argument("--figures", help="directory for the plots (default RUN/evaluation-<data name>)")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--batch-size", type=int, default=32)

    predict = commands.add_parser("predict", help="apply a trained surrogate to a dataset and write CF NetCDF")
    predict.add_argument("run", help="run directory written by `sciml train`")
    predict.add_argument("--data", required=True, nargs="+", help="file(s), glob or zarr store with the inputs")
    predict.add_argument("--out", required=True, help="output NetCDF file (an existing one only with --overwrite)")
    predict.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    predict.add_argument("--steps", type=int, help="autoregressive steps (time-stepping surrogates)")
    predict.add_argument("--device", default="auto")
    predict.add_argument("--batch-size", type=int, default=32)

    bench = commands.add_parser(
        "bench", help="benchmark a surrogate against the numerical solver at matched accuracy",
        description="Solver ladder + float64 reference + FNO surrogate on the same test set and device; writes "
                    "results.json, results.md and cost_error.png to --out. How to read them: docs/benchmarks.md.")
    bench.add_argument("problem", help="ns2d, darcy or burgers")
    bench.add_argument("--quick", action="store_true", help="small sizes: minutes on 2 CPU cores (default: full sizes)")
    bench.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    bench.add_argument("--seed", type=int, default=0, help="seed of the fields, the parameter init and the shuffling")
    bench.add_argument("--threads", type=int, help="torch threads for the whole run (default: 1 with --quick, else all)")
    bench.add_argument("--set", dest="sizes", type=_option, action="append", default=[], metavar="KEY=VALUE",
                       help="override a size, repeatable, e.g. --set n_train=64 --set solver_resolutions=[16,32,64]")
    bench.add_argument("--param", dest="problem_options", type=_option, action="append", default=[],
                       metavar="KEY=VALUE", help="a parameter of the physical problem, repeatable: ns2d and burgers "
                       "viscosity, lead_time, reference_dt_factor; darcy coefficient_kind (threshold|lognormal)")
    bench.add_argument("--out", required=True, help="output directory (created if missing)")
    bench.add_argument("--no-progress", action="store_true", help="hide progress messages")
    return parser


def _generate(args: argparse.Namespace, command: str) -> None:
    from .data import write
    from .data.cf import check_writable
    from .datasets import generate

    out = check_writable(args.out, overwrite=args.overwrite)
    options = {key: getattr(args, key) for key in ("first_sample", "device", "times", "viscosity", "viscosity_range",
                                                   "drag", "coefficient_kind", "solve_resolution", "initial_condition",
                                                   "chunk")
               if getattr(args, key) is not None}
    if "viscosity_range" in options:
        options["viscosity_range"] = tuple(options["viscosity_range"])
    ds = generate(args.name, args.n, args.resolution, seed=args.seed, workers=args.workers,
                  progress=not args.no_progress, command=command, **options)
    write(ds, out, overwrite=args.overwrite)
    print(f"wrote {out}: {dict(ds.sizes)}", file=sys.stderr)


def _data(paths: list[str]):
    from .data import open as open_data

    return open_data(paths[0] if len(paths) == 1 else paths)


def _train(args: argparse.Namespace, command: str) -> None:
    from pathlib import Path

    from ._atomic import write_text
    from .data import split_by_trajectory
    from .errors import ConfigError
    from .surrogate import fit_surrogate
    from .train import TrainConfig

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out}: exists and is not an empty directory; choose a new run directory")
    if args.checkpoint_dir is not None and out.resolve() in [Path(args.checkpoint_dir).resolve(),
                                                            *Path(args.checkpoint_dir).resolve().parents]:
        raise ConfigError(f"--checkpoint-dir {args.checkpoint_dir} is inside --out {out}, which must be empty to save "
                          "the run at the end; put the checkpoints elsewhere")
    if not 0 <= args.val_fraction < 1:
        raise ConfigError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    config = _train_config(args, TrainConfig())
    ds = _data(args.data)
    train, validation = ds, None
    if args.val_fraction > 0:
        parts = split_by_trajectory(ds, {"train": 1 - args.val_fraction, "val": args.val_fraction}, seed=config.seed)
        train, validation = parts["train"], parts["val"]
    surrogate, history = fit_surrogate(train, inputs=args.inputs, outputs=args.outputs, lag=args.lag,
                                       validation=validation, model=args.model, model_options=dict(args.options),
                                       loss=args.loss, config=config, block_size=args.block_size,
                                       checkpoint_dir=args.checkpoint_dir, resume=args.resume)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun every rank trained the same model; rank 0 saves it
        return
    surrogate.provenance["command"] = command
    surrogate.save(out)
    write_text(out / "history.jsonl", "".join(json.dumps(record) + "\n" for record in history))
    last = history[-1] if history else {}
    print(f"saved {out}: {len(history)} epochs ({history.stop_reason}), train loss "
          f"{last.get('train_loss', float('nan')):.4g}"
          + (f", validation loss {last['val_loss']:.4g}" if "val_loss" in last else ""), file=sys.stderr)
    if history.stop_reason == "max_time":
        trend = history.trend("val_loss" if "val_loss" in last else "train_loss")
        still = f"; the loss was still falling {-100 * trend:.1f}% per epoch" if trend is not None and trend < -0.005 else ""
        print(f"warning: the --max-time budget stopped training after {len(history)} of {config.epochs} epochs{still}",
              file=sys.stderr)


def _evaluate(args: argparse.Namespace) -> None:
    from pathlib import Path

    from ._atomic import write_text
    from .evaluation import evaluate
    from .surrogate import Surrogate

    surrogate = Surrogate.load(args.run, device=args.device)
    figures = Path(args.figures) if args.figures else Path(args.run) / f"evaluation-{Path(args.data[0]).stem}"
    result = evaluate(surrogate, _data(args.data), out_dir=figures, batch_size=args.batch_size)
    if args.json:
        write_text(args.json, json.dumps(result, indent=2))
    errors = ", ".join(f"{name} {value:.4g}" for name, value in result["rel_l2"].items())
    print(f"relative L2 at {'x'.join(map(str, result['resolution']))}: {errors}; figures in {figures}")


def _predict(args: argparse.Namespace) -> None:
    from .data import write
    from .data.cf import check_writable
    from .surrogate import Surrogate

    out = check_writable(args.out, overwrite=args.overwrite)
    surrogate = Surrogate.load(args.run, device=args.device)
    prediction = surrogate.predict(_data(args.data), steps=args.steps, batch_size=args.batch_size)
    write(prediction, out, overwrite=args.overwrite)
    print(f"wrote {out}: {dict(prediction.sizes)}", file=sys.stderr)


def _bench(args: argparse.Namespace, command: str) -> None:
    from pathlib import Path

    from .bench import run_benchmark

    sizes = {key: tuple(value) if isinstance(value, list) else value for key, value in args.sizes}
    r = run_benchmark(args.problem, quick=args.quick, device=args.device, out=args.out, seed=args.seed,
                      threads=args.threads, progress=not args.no_progress, command=command,
                      problem_options=dict(args.problem_options), **sizes)
    m = r["matched_accuracy"]
    curve = ", ".join(f"{p['resolution']}: {p['rel_l2']:.3g} at {p['seconds_per_sample']:.3g} s" for p in r["solver_curve"])
    speedup = (f"{m['speedup']:.3g}x" if m["speedup"] is not None
               else f"none measured ({m['status'].replace('_', ' ')})")
    queries = r["breakeven_queries"]
    print(f"{r['problem']} on {r['device']} ({r['machine']['device_name']}, {r['threads']} torch thread(s)), "
          f"wall {r['wall_seconds']:.0f} s")
    print(f"  solver (resolution: rel. L2 at s/sample): {curve}")
    print(f"  surrogate at {r['surrogate']['train_resolution']}: rel. L2 {r['surrogate_rel_l2']:.3g} at "
          f"{r['surrogate_seconds_per_sample']:.3g} s/sample; training {r['training_seconds']:.3g} s, "
          f"data {r['data_generation_seconds']:.3g} s")
    print(f"  speed-up at matched accuracy: {speedup}; break-even queries: "
          f"{queries if queries is not None else 'none (' + r['breakeven']['reason'] + ')'}")
    print(f"  {r['verdict']}")
    out = Path(args.out)
    print(f"  wrote {out / 'results.json'}, {out / 'results.md'}, {out / 'cost_error.png'}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    command = shlex.join(["sciml", *argv])
    from .allocator import keep_freed_memory

    keep_freed_memory()  # the command line is an application: keep freed pages (see sciml.allocator)
    try:
        if args.command == "quickstart":
            from dataclasses import replace

            from .quickstart import QuickstartConfig, run

            given = {key: getattr(args, key) for key in ("resolution", "n_train", "n_test", "eval_resolutions")
                     if getattr(args, key) is not None}
            base = QuickstartConfig(**given)
            run(args.out, replace(base, train=_train_config(args, base.train)), command=command)
        elif args.command == "generate":
            _generate(args, command)
        elif args.command == "train":
            _train(args, command)
        elif args.command == "evaluate":
            _evaluate(args)
        elif args.command == "predict":
            _predict(args)
        elif args.command == "bench":
            _bench(args, command)
    except SciMLError as err:
        print(f"sciml {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sciml {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
