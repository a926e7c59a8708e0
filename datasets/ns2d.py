"""Recipe `ns2d`: 2-D Navier-Stokes, nu = 1e-3, Li et al. (2021) forcing and initial conditions.

    python datasets/ns2d.py --n 1000 --resolution 64 --seed 0 --out ns2d.nc

Resolution-consistent: the same --seed at --resolution 128 gives the fine-grid solutions of the same
initial conditions. The solver code is `sciml.solvers.recipes.ns2d`; this file only fixes the setting.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from sciml.data import write_netcdf
from sciml.solvers.recipes import ns2d


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, required=True, help="number of trajectories")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first-sample", type=int, default=0)
    parser.add_argument("--viscosity", type=float, default=1e-3)
    parser.add_argument("--times", type=float, nargs="+", default=[float(t) for t in range(0, 51)],
                        help="output times (default 0, 1, ..., 50 as in Li et al. 2021)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    command = shlex.join(["python", "datasets/ns2d.py", *(sys.argv[1:] if argv is None else argv)])
    ds = ns2d(args.n, args.resolution, seed=args.seed, first_sample=args.first_sample, times=args.times,
              viscosity=args.viscosity, device=args.device, command=command)
    write_netcdf(ds, args.out)


if __name__ == "__main__":
    main()
