"""Sample and super-resolve vorticity with function-space diffusion

A denoiser (a Fourier neural operator conditioned on the noise level, with noise that is a Gaussian
random *function*) is trained on 32x32 snapshots of forced 2-D Navier–Stokes vorticity; because both the
network and the noise live on functions, the same weights sample on a 64x64 grid never seen in training,
and super-resolve 16x16 fields to 64x64: members that reproduce the coarse field's Fourier modes exactly
and draw the finer scales. The super-resolved members are shown beside the solver's own 64x64 solution
of the same initial condition and the bicubic upsampling.

The whole workflow is three `sciml diffusion` commands (`train`, `sample`, `superres`), called here
through `sciml.cli.main`. Small on purpose (a minute or two on two CPU cores): the samples are rough;
`docs/diffusion.md` has what the larger benchmark measured and where it falls short.
"""

import argparse
from pathlib import Path

import sciml
from sciml.cli import main
from sciml.datasets import generate

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=Path("example_output/diffusion_superresolution"))
out = parser.parse_args().out
out.mkdir(parents=True, exist_ok=True)


def snapshots(n: int, resolution: int, first_sample: int = 0):
    """Vorticity at t = 5 of trajectories of the ns2d recipe: ``(sample, y, x)``."""
    ds = generate("ns2d", n, resolution, seed=0, first_sample=first_sample, times=[0.0, 5.0], progress=False)
    return ds.isel(time=-1, drop=True)


files = {"train": out / "train32.nc", "coarse": out / "coarse16.nc", "truth": out / "truth64.nc"}
for name, (n, resolution, first) in {"train": (96, 32, 0), "coarse": (2, 16, 1000), "truth": (2, 64, 1000)}.items():
    if not files[name].exists():
        sciml.data.write(snapshots(n, resolution, first), files[name])


def sciml_diffusion(*words: str) -> None:
    status = main(["diffusion", *words])
    if status:
        raise SystemExit(f"sciml diffusion {words[0]} failed with exit status {status}")


sciml_diffusion("train", "--data", str(files["train"]), "--variable", "vorticity", "--out", str(out / "model"),
                "--epochs", "20", "--modes", "12", "--width", "16", "--layers", "3", "--batch-size", "16",
                "--overwrite", "--no-progress")
sciml_diffusion("sample", str(out / "model"), "--resolution", "64", "64", "--n", "4", "--steps", "10",
                "--out", str(out / "samples64.nc"), "--overwrite", "--data", str(files["truth"]),
                "--figure", str(out / "samples64.png"))
sciml_diffusion("superres", str(out / "model"), "--coarse", str(files["coarse"]), "--resolution", "64", "64",
                "--members", "4", "--steps", "10", "--out", str(out / "superres64.nc"), "--overwrite",
                "--truth", str(files["truth"]), "--figure", str(out / "superres64.png"))
