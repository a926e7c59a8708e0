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
import warnings

from ._version import __version__
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
    "batch_size": (int, "samples per optimiser step, over all torchrun processes together (a multiple of the world size)"),
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


# Where the configs whose defaults the help shows are defined (relative to this package).
_CONFIG_SOURCES = {"TrainConfig": "train/loop.py", "QuickstartConfig": "quickstart.py"}


def _static_defaults(name: str, overrides: dict | None = None):
    """The defaults of config dataclass ``name`` (see ``_CONFIG_SOURCES``), read from its source without importing it.

    Building the parser must not import torch (``sciml --help`` would take seconds), so the literal defaults
    are read with :mod:`ast`; a field whose default is a module constant ``X = OtherConfig(key=literal, ...)``
    becomes OtherConfig's defaults with those keys replaced. Fields with a ``field(default_factory=...)``
    read as ``None`` (the parser needs none of them). Where the source cannot be read this way, the class is
    imported and instantiated instead. ``tests/test_cli_help.py`` checks these against the real dataclasses.
    """
    import ast
    from pathlib import Path
    from types import SimpleNamespace

    relative = _CONFIG_SOURCES[name]
    try:
        tree = ast.parse((Path(__file__).parent / relative).read_text())
        constants = {node.targets[0].id: node.value for node in tree.body
                     if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)}
        (cls,) = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name]

        def value(node):
            node = constants.get(node.id, node) if isinstance(node, ast.Name) else node
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CONFIG_SOURCES:
                return _static_defaults(node.func.id, {k.arg: ast.literal_eval(k.value) for k in node.keywords})
            if isinstance(node, ast.Call):  # field(default_factory=...)
                return None
            return ast.literal_eval(node)

        values = {item.target.id: value(item.value) for item in cls.body
                  if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.value is not None}
    except (OSError, SyntaxError, ValueError, TypeError):
        import importlib

        module = importlib.import_module(f"sciml.{relative.removesuffix('.py').replace('/', '.')}")
        values = vars(getattr(module, name)())
    return SimpleNamespace(**{**values, **(overrides or {})})


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
    defaults = _static_defaults("QuickstartConfig")  # not imported: that would load torch
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
    gen.add_argument("--seed", type=int, required=True,
                     help="seed of the initial conditions / coefficients (the same seed at another resolution gives "
                          "the same continuous fields)")
    gen.add_argument("--out", help="output NetCDF file (an existing one only with --overwrite); required unless "
                                   "--shard-dir is given (default: %(default)s)")
    gen.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    gen.add_argument("--first-sample", type=int, help="index of the first sample (to generate in parts)")
    gen.add_argument("--device", help="cpu, cuda, cuda:N (default: cpu)")
    gen.add_argument("--times", type=float, nargs="+", help="output times (time-dependent recipes; hours for swe-sphere)")
    gen.add_argument("--initial-condition", choices=("galewsky", "random"), help="swe-sphere")
    gen.add_argument("--viscosity", type=float, help="kinematic viscosity (ns2d, ns2d-kolmogorov, burgers; default: "
                                                     "the recipe's)")
    gen.add_argument("--viscosity-range", type=float, nargs=2, metavar=("LOW", "HIGH"),
                     help="burgers, turbulence3d, turbulence2d: one log-uniform viscosity per sample")
    gen.add_argument("--drag", type=float, help="ns2d-kolmogorov: linear drag")
    gen.add_argument("--coefficient", dest="coefficient_kind", choices=("threshold", "lognormal"), help="darcy")
    gen.add_argument("--solve-resolution", type=int, help="solve on this finer grid, then downsample")
    gen.add_argument("--chunk", type=int, help="samples solved as one batch (ns2d, ns2d-kolmogorov, burgers)")
    where = gen.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=1,
                       help="solve the chunks on a dask LocalCluster of this many processes (one chunk at a time "
                            "each, with this process's torch threads), with the same result as one process; with "
                            "--device cuda worker i uses cuda:i "
                            "(default: %(default)s)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="solve the chunks on the dask cluster whose scheduler listens at ADDRESS "
                            "(tcp://HOST:PORT); its workers need sciml installed (default: %(default)s)")
    gen.add_argument("--shard-dir", metavar="DIR",
                     help="write each chunk as a shard part-NNNNNNNN.nc in DIR (with shards.json), resuming a "
                          "run interrupted there; without --out the shards are the output, opened with "
                          "sciml.data.open(DIR) (default: %(default)s)")
    gen.add_argument("--retries", type=int, default=2,
                     help="re-runs of a chunk whose task failed (a task whose worker died is re-run too) "
                          "(default: %(default)s)")
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
    train.add_argument("--history", type=int, default=1, metavar="H",
                       help="input the H states t - (H-1) lag ... t, each variable once per step (FourCastNet-style "
                            "history; needs --lag; a forecast then needs H frames per initial time) (default: %(default)s)")
    train.add_argument("--curriculum", type=int, nargs="+", metavar="K",
                       help="after the one-step training, fine-tune on K-step rollouts (FourCastNet: 2), stage by "
                            "stage, with a quarter of the epochs and a fifth of the learning rate; needs --lag and "
                            "inputs == outputs")
    train.add_argument("--loss", choices=("rel_l2", "anomaly_rel_l2", "h1"),
                       help="training loss (default rel_l2; anomaly_rel_l2 with --curriculum): anomaly_rel_l2 is the "
                            "relative error of each variable's departure from its training mean")
    train.add_argument("--val-fraction", type=float, default=0.1, help="trajectories held out for validation")
    train.add_argument("--block-size", type=int,
                       help="shuffle blocks of this many consecutive items (fewer, larger reads of a file on disk); "
                            "default: a full shuffle")
    train.add_argument("--out", required=True, help="run directory (must not exist or be empty)")
    train.add_argument("--checkpoint-dir", help="write a checkpoint every epoch here (outside --out)")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --checkpoint-dir")
    _add_train_options(train, _static_defaults("TrainConfig"))

    evaluate = commands.add_parser(
        "evaluate", help="relative L2 error of a trained surrogate on a dataset, with plots",
        description="Predicts every frame of --data on its own grid (any resolution) and compares with the file's "
                    "outputs; also on 2x and 4x coarser copies (spectral on periodic data, every 2nd/4th node on "
                    "bounded data).")
    evaluate.add_argument("run", help="run directory written by `sciml train`")
    evaluate.add_argument("--data", required=True, nargs="+", help="file(s), glob or zarr store with inputs and outputs")
    evaluate.add_argument("--json", help="also write the metrics to this JSON file")
    evaluate.add_argument("--figures", help="directory for the plots (default RUN/evaluation-<data name>)")
    evaluate.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N (default: %(default)s)")
    evaluate.add_argument("--batch-size", type=int, default=32, help="frames per forward pass (default: %(default)s)")
    evaluate.add_argument("--steps", type=int, default=None,
                          help="also roll out this many lead times from every frame that has them and score each "
                               "against the file's later frames, beside persistence (time steppers whose outputs "
                               "are inputs; default: off)")

    predict = commands.add_parser(
        "predict", help="apply a trained surrogate to a dataset and write CF NetCDF",
        description="Predicts the outputs for every frame of --data on the file's own grid (any resolution of the "
                    "training domain). For time-stepping surrogates time stays the initial time, with lead_time "
                    "and valid_time = time + lead_time as coordinates; --steps N rolls out N steps.")
    predict.add_argument("run", help="run directory written by `sciml train`")
    predict.add_argument("--data", required=True, nargs="+", help="file(s), glob or zarr store with the inputs")
    predict.add_argument("--out", required=True, help="output NetCDF file (an existing one only with --overwrite)")
    predict.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    predict.add_argument("--steps", type=int, help="autoregressive steps (time-stepping surrogates)")
    predict.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N (default: %(default)s)")
    predict.add_argument("--batch-size", type=int, default=32, help="frames per forward pass (default: %(default)s)")

    fc = commands.add_parser(
        "forecast", help="roll a time-stepping surrogate out from initial states, deterministic or as an ensemble",
        description="Applies the surrogate(s) of RUN autoregressively from every frame of --init and streams the "
                    "forecast to --out (NetCDF .nc or zarr .zarr) step by step: dims (init dims, lead_time, [member], "
                    "space), time = the initial time, valid_time = time + lead_time.")
    fc.add_argument("run", nargs="+", help="run directory/ies written by `sciml train --lag` (several: a multi-model ensemble)")
    fc.add_argument("--init", required=True, nargs="+", help="file(s), glob or zarr store with the initial states")
    fc.add_argument("--isel", dest="isel", type=_option, action="append", default=[], metavar="DIM=INDEX",
                    help="select initial frames, repeatable, e.g. --isel time=0 or --isel 'sample=[0,1]'; a model "
                         "trained with --history H needs each initial time's H-1 frames before it in the selection "
                         "(e.g. --isel 'time=[1,2]' starts one forecast at the second time)")
    steps = fc.add_mutually_exclusive_group(required=True)
    steps.add_argument("--steps", type=int, help="number of model steps")
    steps.add_argument("--horizon", help="forecast length as a lead time: '5D', '36h' (calendar time) or a number "
                                         "in the model's time units; a whole number of model steps")
    fc.add_argument("--members", type=int, default=1, help="members per model (default: %(default)s; > 1 needs "
                                                           "--perturbation-scale with one model)")
    fc.add_argument("--perturbation-scale", type=float, help="perturb each member's initial state by smooth Gaussian "
                    "random fields of this fraction of each variable's spread (e.g. 0.01)")
    fc.add_argument("--forcings", nargs="+", help="file(s) with the forcing inputs along time (inputs that are "
                                                  "neither outputs nor in --init)")
    fc.add_argument("--seed", type=int, default=0, help="seed of the perturbations (default: %(default)s)")
    fc.add_argument("--out", required=True, help="output .nc or .zarr (an existing one only with --overwrite)")
    fc.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    fc.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N (default: %(default)s)")
    fc.add_argument("--batch-size", type=int, default=32, help="frames per forward pass (default: %(default)s)")
    fc.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    score = commands.add_parser(
        "score", help="score a forecast against the truth the way WeatherBench 2 does, with a scorecard figure",
        description="Reads the truth at the forecast's valid times; writes the scores per variable and lead time "
                    "(area-weighted, averaged over samples and initial times) as NetCDF, and scorecard.png beside it.")
    score.add_argument("forecast", help="forecast file written by `sciml forecast`")
    score.add_argument("--truth", required=True, nargs="+", help="file(s), glob or zarr store with the verifying states")
    score.add_argument("--metrics", default="rmse,mae,acc,crps,spread_skill,spectra",
                       help="comma-separated subset of rmse,mae,acc,crps,spread_skill,spectra (default: all; the "
                            "ensemble scores only for forecasts with members)")
    score.add_argument("--climatology", nargs="+", help="file(s) for the ACC's climatology (default: the truth's own "
                                                        "mean by calendar day and hour, or its mean for float times)")
    score.add_argument("--out", required=True, help="output NetCDF file of the scores")
    score.add_argument("--overwrite", action="store_true", help="replace --out if it exists")

    bench = commands.add_parser(
        "bench", help="benchmark a surrogate against the numerical solver at matched accuracy",
        description="Solver ladder + float64 reference + FNO surrogate on the same test set and device; writes "
                    "results.json, results.md and cost_error.png to --out. How to read them: docs/benchmarks.md.")
    bench.add_argument("problem", help="ns2d, darcy, burgers or swe")
    bench.add_argument("--quick", action="store_true", help="small sizes: minutes on 2 CPU cores (default: full sizes)")
    bench.add_argument("--device", default="auto",
                       help="auto (CUDA when present), cpu, cuda, cuda:N (default: %(default)s)")
    bench.add_argument("--seed", type=int, default=0,
                       help="seed of the fields, the parameter init and the shuffling (default: %(default)s)")
    bench.add_argument("--threads", type=int, help="torch threads for the whole run (default: 1 with --quick, else all)")
    bench.add_argument("--set", dest="sizes", type=_option, action="append", default=[], metavar="KEY=VALUE",
                       help="override a size, repeatable, e.g. --set n_train=64 --set solver_resolutions=[16,32,64]")
    bench.add_argument("--param", dest="problem_options", type=_option, action="append", default=[],
                       metavar="KEY=VALUE", help="a parameter of the physical problem, repeatable: ns2d and burgers "
                       "viscosity, lead_time, reference_dt_factor; darcy coefficient_kind (threshold|lognormal); "
                       "swe lead_time (whole hours, default 6), reference_dt_factor (default 2)")
    bench.add_argument("--out", required=True, help="output directory (created if missing)")
    bench.add_argument("--no-progress", action="store_true", help="hide progress messages")
    for module in _GROUPS.values():  # the capabilities' command groups, each a thin layer over its verb
        _group(module).add_parser(commands)
    return parser


#: Command groups that live with their capability: ``sciml <name> ...`` is ``<module>.run(args, command)``.
_GROUPS = {"diffusion": "sciml.diffusion._cli", "jepa": "sciml.jepa._cli", "node": "sciml.node._cli"}


def _group(module: str):
    """A capability's CLI module (argparse and the standard library at import, so ``--help`` stays fast)."""
    import importlib

    return importlib.import_module(module)


def _generate(args: argparse.Namespace, command: str) -> None:
    from .data import write
    from .data.cf import check_writable
    from .datasets import generate
    from .errors import ConfigError

    if args.out is None and args.shard_dir is None:
        raise ConfigError("generate: give --out FILE, --shard-dir DIR, or both")
    out = None if args.out is None else check_writable(args.out, overwrite=args.overwrite)
    options = {key: getattr(args, key) for key in ("first_sample", "device", "times", "viscosity", "viscosity_range",
                                                   "drag", "coefficient_kind", "solve_resolution", "initial_condition",
                                                   "chunk")
               if getattr(args, key) is not None}
    if "viscosity_range" in options:
        options["viscosity_range"] = tuple(options["viscosity_range"])
    if args.n >= 1 and args.resolution >= 4:  # else generate() says what is wrong
        import warnings

        from ._budget import check_disk
        from .datasets import estimate

        # only shards (no --out): one chunk at a time in memory; with --out all samples are loaded to write it
        budget = estimate(args.name, args.n, args.resolution, sharded=out is None, **options)
        with warnings.catch_warnings():  # generate() warns of a long run, once, below
            warnings.simplefilter("ignore")
            budget.check()  # what cannot fit in memory comes first: the disk would not matter
        # before solving: a full disk found after hours of work loses them (write() also catches it)
        for target in (args.shard_dir, out):
            if target is not None:
                check_disk(target, budget.file_bytes, what=f"the {args.name} dataset")
    ds = generate(args.name, args.n, args.resolution, seed=args.seed, workers=args.workers, client=args.scheduler,
                  shard_dir=args.shard_dir, retries=args.retries, progress=not args.no_progress, command=command,
                  **options)
    if out is None:
        print(f"wrote {args.shard_dir}: {dict(ds.sizes)} in shards; open it with sciml.data.open", file=sys.stderr)
        return
    write(ds.load(), out, overwrite=args.overwrite)  # loaded: the bytes of a one-process run's file
    print(f"wrote {out}: {dict(ds.sizes)}", file=sys.stderr)


def _data(paths: list[str]):
    from .data import open as open_data

    return open_data(paths[0] if len(paths) == 1 else paths)


def _check_run_directory(out) -> None:
    """:class:`ConfigError` now, not after training, when the run directory ``out`` cannot be created: its parent
    is made (as saving would) and a probe directory is created and removed in it (``os.access`` is no test for
    root, nor for a read-only file system)."""
    import tempfile

    from .errors import ConfigError

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.").cleanup()
    except OSError as err:
        raise ConfigError(f"--out {out}: cannot create the run directory in {out.parent} "
                          f"({err.strerror or err}); choose another --out") from None


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
    if args.history < 1:
        raise ConfigError(f"--history must be >= 1 (the number of input states), got {args.history}")
    if args.history != 1 and args.lag is None:
        raise ConfigError(f"--history {args.history} stacks past states of a time stepper: it needs --lag")
    config = _train_config(args, TrainConfig())
    _check_run_directory(out)  # before training: the run is saved there at the end
    ds = _data(args.data)
    from .data._layout import require_variables

    require_variables(ds, list(dict.fromkeys(args.inputs + args.outputs)), purpose="training")  # before the split
    train, validation = ds, None
    if args.val_fraction > 0:
        parts = split_by_trajectory(ds, {"train": 1 - args.val_fraction, "val": args.val_fraction}, seed=config.seed)
        train, validation = parts["train"], parts["val"]
    if args.curriculum:
        from .forecast import fit_forecaster

        if args.lag is None or args.inputs != args.outputs:
            raise ConfigError("--curriculum fine-tunes rollouts of a time stepper: it needs --lag and the same "
                              "--inputs and --outputs")
        if args.checkpoint_dir is not None or args.block_size is not None or args.loss == "h1":
            raise ConfigError("--curriculum does not support --checkpoint-dir, --block-size or --loss h1 yet")
        surrogate, stages = fit_forecaster(train, variables=args.inputs, lag=args.lag, validation=validation,
                                           model=args.model, model_options=dict(args.options), pretrain=config,
                                           curriculum=tuple(args.curriculum), loss=args.loss or "anomaly_rel_l2",
                                           history=args.history)
        history = stages[1]
        records = [{"rollout_steps": k, **record} for k, h in stages.items() for record in h]
    else:
        surrogate, history = fit_surrogate(train, inputs=args.inputs, outputs=args.outputs, lag=args.lag,
                                           validation=validation, model=args.model, model_options=dict(args.options),
                                           loss=args.loss or "rel_l2", config=config, block_size=args.block_size,
                                           checkpoint_dir=args.checkpoint_dir, resume=args.resume,
                                           history=args.history)
        records = list(history)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun every rank trained the same model; rank 0 saves it
        return
    surrogate.provenance["command"] = command
    surrogate.save(out)
    write_text(out / "history.jsonl", "".join(json.dumps(record) + "\n" for record in records))
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
    with warnings.catch_warnings():  # evaluate's warnings are in result["warnings"]: printed below as one line each
        warnings.simplefilter("ignore", UserWarning)
        result = evaluate(surrogate, _data(args.data), out_dir=figures, batch_size=args.batch_size, steps=args.steps)
    if args.json:
        write_text(args.json, json.dumps(result, indent=2))
    for line in result.get("warnings", []):
        print(f"sciml evaluate: warning: {line}", file=sys.stderr)
    errors = ", ".join(f"{name} {value:.4g}" for name, value in result["rel_l2"].items())
    print(f"relative L2 at {'x'.join(map(str, result['resolution']))}: {errors}; figures in {figures}")
    if "rollout" in result:
        for name, by_lead in result["rollout"]["rel_l2"].items():
            persistence = result["rollout"]["persistence_rel_l2"][name]
            print(f"rollout {name}: relative L2 at lead 1 {by_lead[0]:.4g}, at lead {len(by_lead)} {by_lead[-1]:.4g} "
                  f"(persistence {persistence[0]:.4g} / {persistence[-1]:.4g})")


def _predict(args: argparse.Namespace) -> None:
    from .data import write
    from .data.cf import check_writable
    from .surrogate import Surrogate

    from ._budget import check_disk

    out = check_writable(args.out, overwrite=args.overwrite)
    surrogate = Surrogate.load(args.run, device=args.device)
    ds = _data(args.data)
    if surrogate.inputs[0] in ds:  # the output's size, before predicting: float32 per output, frame and step
        size = ds[surrogate.inputs[0]].size * len(surrogate.outputs) * 4 * (args.steps if args.steps else 1)
        check_disk(out, size, what="the prediction")
    prediction = surrogate.predict(ds, steps=args.steps, batch_size=args.batch_size)
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


def _forecast(args: argparse.Namespace, command: str) -> None:
    from .errors import ConfigError
    from .forecast import GaussianPerturbation, forecast
    from .surrogate import Surrogate

    models = [Surrogate.load(run, device=args.device) for run in args.run]
    init = _data(args.init)
    if args.isel:
        init = init.isel({dim: value for dim, value in args.isel})
    if args.perturbation_scale is not None and not args.perturbation_scale > 0:
        raise ConfigError(f"--perturbation-scale must be > 0, got {args.perturbation_scale}")
    perturbation = GaussianPerturbation(scale=args.perturbation_scale) if args.perturbation_scale else None
    horizon = args.horizon
    if horizon is not None and models[0].time_units is not None:  # float time: a number in the model's units
        try:
            horizon = float(horizon)
        except ValueError:
            raise ConfigError(f"--horizon {horizon!r}: the model's times are numbers in {models[0].time_units!r}; give "
                              "a number") from None
    out = forecast(models if len(models) > 1 else models[0], init, steps=args.steps, horizon=horizon,
                   members=args.members, perturbation=perturbation, seed=args.seed,
                   forcings=_data(args.forcings) if args.forcings else None, out=args.out, overwrite=args.overwrite,
                   batch_size=args.batch_size, progress=not args.no_progress)
    print(f"wrote {args.out}: {dict(out.sizes)}", file=sys.stderr)


def _score(args: argparse.Namespace) -> None:
    from pathlib import Path

    import xarray as xr

    from .data import write
    from .data.cf import check_writable
    from .errors import ConfigError, DataError
    from .forecast import scores
    from .plotting import plot_scorecard, save_figure

    out = check_writable(args.out, overwrite=args.overwrite)
    known = ("rmse", "mae", "acc", "crps", "spread_skill", "spectra")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = [m for m in metrics if m not in known]
    if unknown or not metrics:
        raise ConfigError(f"--metrics: unknown {unknown or metrics}; choose from {', '.join(known)}")
    path = Path(args.forecast)
    try:
        forecast = (xr.open_zarr(path, consolidated=None) if path.suffix == ".zarr"
                    else xr.open_dataset(path))
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read the forecast ({' '.join(str(error).split())})"[:300]) from None
    truth = _data(args.truth)
    ensemble = "member" in forecast.dims
    deterministic = forecast.mean("member", keep_attrs=True) if ensemble else forecast
    results: dict[str, xr.Dataset] = {}
    if "rmse" in metrics:
        results["rmse"] = scores.rmse(deterministic, truth)
    if "mae" in metrics:
        results["mae"] = scores.mae(deterministic, truth)
    if "acc" in metrics:
        clim = scores.climatology(_data(args.climatology) if args.climatology else truth)
        results["acc"] = scores.acc(deterministic, truth, clim)
    if ensemble and "crps" in metrics:
        results["crps"] = scores.crps(forecast, truth)
    if ensemble and "spread_skill" in metrics:
        results["spread_skill"] = scores.spread_skill(forecast, truth)
    if "spectra" in metrics:
        results["spectrum_ratio"] = scores.spectrum_ratio(deterministic, truth)
    merged = xr.Dataset({f"{metric}_{name}": da for metric, ds in results.items() for name, da in ds.data_vars.items()})
    merged.attrs.update(source=f"sciml score of {path.name}", ensemble_mean_scored="yes" if ensemble else "no")
    write(merged.drop_vars([c for c in merged.coords if merged[c].dtype.kind == "O"]), out, overwrite=args.overwrite)
    curves = {metric: ds for metric, ds in results.items() if metric != "spectrum_ratio"}
    if curves:
        figure = out.with_name(f"{out.stem}_scorecard.png")
        save_figure(plot_scorecard(curves, title=f"{path.name} against {Path(args.truth[0]).name}"
                                   + (" (ensemble mean for rmse/mae/acc)" if ensemble else "")), figure)
        print(f"wrote {figure}", file=sys.stderr)
    for metric, ds in results.items():
        for name, da in ds.data_vars.items():
            if "lead_time" in da.dims and metric != "spectrum_ratio":
                values = da.mean([d for d in da.dims if d != "lead_time"]).values
                print(f"{metric} {name}: first lead {values[0]:.4g}, last lead {values[-1]:.4g}")
    print(f"wrote {out}", file=sys.stderr)


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
        elif args.command == "forecast":
            _forecast(args, command)
        elif args.command == "score":
            _score(args)
        elif args.command in _GROUPS:
            _group(_GROUPS[args.command]).run(args, command)
    except SciMLError as err:
        print(f"sciml {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sciml {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
