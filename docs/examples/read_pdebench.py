"""Read a PDEBench HDF5 file and see what sciml made of it

PDEBench ships its datasets as HDF5 files with a `tensor` array and `x-coordinate`/`t-coordinate`
vectors (1-D Burgers, advection, ...). `sciml.data.open` recognises the layout and returns the
canonical dataset `(sample, time, x)` with the coordinates attached and the PDE parameter (`Nu`)
recorded, lazily: nothing is read until it is used.

Here a small file of that layout is written from the built-in Burgers solver (the real files are
gigabytes; the layout is the same), read back, and drawn as space-time diagrams.
"""

import argparse
from pathlib import Path

import h5py
import matplotlib.pyplot as plt
import numpy as np

import sciml
from sciml.datasets import generate
from sciml.plotting import save_figure

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=Path("example_output/read_pdebench"))
out = parser.parse_args().out
out.mkdir(parents=True, exist_ok=True)

# A file in PDEBench's 1-D layout (as its gen_burgers.py / Data_Merge.py write it).
nu = 0.01
solution = generate("burgers", 4, 128, seed=0, times=np.linspace(0.0, 1.0, 41).tolist(), viscosity=nu,
                    solve_resolution=256, progress=False)  # the recipe solves at 1024 by default
path = out / "1D_Burgers_Sols_Nu0.01.hdf5"
with h5py.File(path, "w") as f:
    f.create_dataset("tensor", data=solution["u"].transpose("sample", "time", "x").values.astype(np.float32))
    f.create_dataset("x-coordinate", data=solution["x"].values.astype(np.float32))
    f.create_dataset("t-coordinate", data=np.append(solution["time"].values, 1.025).astype(np.float32))
    f.attrs["Nu"] = nu

ds = sciml.data.open(path)
print(ds)
name = next(iter(ds.data_vars))
limit = float(abs(ds[name].isel(sample=[0, 1])).max())  # one symmetric colour scale for both panels
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True, sharey=True)
for ax, sample in zip(axes, (0, 1)):
    field = ds[name].isel(sample=sample).transpose("time", "x")
    image = ax.pcolormesh(ds["x"], ds["time"], field, cmap="RdBu_r", shading="auto", vmin=-limit, vmax=limit)
    ax.set_xlabel("x (dimensionless, periodic)")
    ax.set_title(f"sample {sample}")
axes[0].set_ylabel("time (dimensionless)")
fig.colorbar(image, ax=axes, label=f"velocity {name} ({ds[name].attrs.get('units', '1')})")
fig.suptitle(f"PDEBench 1-D Burgers layout read by sciml.data.open (nu = {nu})")
save_figure(fig, out / "space_time.png")
