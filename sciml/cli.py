"""``sciml`` command line: parses arguments, calls the Python API, prints. Nothing else lives here.

Errors about the user's input (:class:`sciml.SciMLError`) print one line and exit with status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from . import __version__
from .errors import SciMLError


def _resolutions(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sciml", description="Scientific machine learning on simulation data.")
    parser.add_argument("--version", action="version", version=f"sciml {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    quick = commands.add_parser(
        "quickstart", help="generate Navier-Stokes data, train an FNO, evaluate zero-shot super-resolution, report",
        description="End-to-end run on data from the built-in solver; writes report.md, metrics.json and figures.")
    quick.add_argument("--out", required=True, help="output directory (created if missing)")
    quick.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    quick.add_argument("--resolution", type=int, default=64, help="training grid points per side (default 64)")
    quick.add_argument("--n-train", type=int, default=256, help="training trajectories (default 256)")
    quick.add_argument("--n-test", type=int, default=32, help="test trajectories (default 32)")
    quick.add_argument("--train-seconds", type=float, default=150.0, help="training wall-clock budget (default 150)")
    quick.add_argument("--eval-resolutions", type=_resolutions, default=(32, 64, 128, 256),
                       help="comma-separated grids for the error-vs-resolution curve (default 32,64,128,256)")
    quick.add_argument("--seed", type=int, default=0)
    quick.add_argument("--no-progress", action="store_true", help="hide progress bars")

    gen = commands.add_parser(
        "generate", help="solve a named dataset recipe and write it as CF NetCDF",
        description="Deterministic by seed and resolution-consistent: the same --seed at 2x --resolution gives "
                    "the fine-grid solutions of the same continuous initial conditions/coefficients.")
    gen.add_argument("name", help="ns2d, ns2d-kolmogorov, burgers, darcy or swe-sphere")
    gen.add_argument("--n", type=int, required=True, help="number of samples")
    gen.add_argument("--resolution", type=int, required=True, help="grid points (nodes for darcy) per side")
    gen.add_argument("--seed", type=int, required=True)
    gen.add_argument("--out", required=True, help="output NetCDF file")
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
    gen.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def _generate(args: argparse.Namespace, command: str) -> None:
    from .data import write
    from .data.cf import check_writable
    from .datasets import generate

    out = check_writable(args.out)
    options = {key: getattr(args, key) for key in ("first_sample", "device", "times", "viscosity", "viscosity_range",
                                                   "drag", "coefficient_kind", "solve_resolution", "initial_condition")
               if getattr(args, key) is not None}
    if "viscosity_range" in options:
        options["viscosity_range"] = tuple(options["viscosity_range"])
    ds = generate(args.name, args.n, args.resolution, seed=args.seed, progress=not args.no_progress,
                  command=command, **options)
    write(ds, out)
    print(f"wrote {out}: {dict(ds.sizes)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    command = shlex.join(["sciml", *argv])
    try:
        if args.command == "quickstart":
            from .quickstart import QuickstartConfig, run

            config = QuickstartConfig(resolution=args.resolution, n_train=args.n_train, n_test=args.n_test,
                                      train_seconds=args.train_seconds, eval_resolutions=args.eval_resolutions,
                                      seed=args.seed, device=args.device, progress=not args.no_progress)
            run(args.out, config, command=command)
        elif args.command == "generate":
            _generate(args, command)
    except SciMLError as err:
        print(f"sciml {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sciml {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
