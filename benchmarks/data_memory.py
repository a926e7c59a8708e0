"""Streaming a file larger than memory: one epoch of ``fit_surrogate`` under an RSS cap.

The parent writes a NetCDF file of ``--file-gib`` GiB (two float32 fields, 128 x 128, written from a
dask array chunk by chunk, uncompressed so that writing is quick and the file size is the data size).
A fresh child process then opens it with ``sciml.data.open`` and trains through the library's own path,
``fit_surrogate(..., block_size=32)`` for one epoch: the statistics pass, then ``fit`` over lazily read
``OperatorPairs`` in ``ChunkShuffleSampler`` order (a tiny pointwise model, so that reading, not the
network, is what runs), and reports its peak resident set size (``ru_maxrss``). The cap is a number
this script checks against (``--cap-gib``); the file is at least twice as large.

Usage: python benchmarks/data_memory.py [--file-gib 2.6] [--cap-gib 1.25]
Writes benchmarks/results/cpu/data_memory.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sciml._atomic import write_text

CHILD = r"""
import json, resource, sys, time
import torch
from torch import nn
from sciml import data
from sciml.models import register_model
from sciml.surrogate import fit_surrogate
from sciml.train import TrainConfig
torch.set_num_threads(2)
register_model("pointwise", lambda in_channels, out_channels: nn.Conv2d(in_channels, out_channels, 1))
path = sys.argv[1]
start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
start = time.perf_counter()
surrogate, history = fit_surrogate(data.open(path), inputs=["a"], outputs=["u"], model="pointwise", block_size=32,
                                   config=TrainConfig(epochs=1, batch_size=32, device="cpu", progress=False))
print(json.dumps({"items": surrogate.provenance["n_train_pairs"], "fit_s": time.perf_counter() - start,
                  "epoch_s": history[-1]["elapsed_s"], "rss_after_import_gib": start_rss,
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def make_file(path: Path, gibibytes: float, resolution: int = 128) -> Path:
    import dask.array as dsa
    import numpy as np
    import xarray as xr

    from sciml import data

    samples = int(gibibytes * 2**30 / (2 * resolution**2 * 4))
    fields = {
        name: (("sample", "y", "x"), dsa.random.default_rng(seed).standard_normal(
            (samples, resolution, resolution), chunks=(256, resolution, resolution), dtype=np.float32))
        for seed, name in enumerate(("a", "u"))
    }
    grid = np.arange(resolution) / resolution
    ds = xr.Dataset(fields, coords={"sample": np.arange(samples), "y": grid, "x": grid})
    return data.write(ds, path, compression=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file-gib", type=float, default=2.6)
    parser.add_argument("--cap-gib", type=float, default=1.25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = make_file(Path(tmp) / "big.nc", args.file_gib)
        write_s = time.perf_counter() - start
        file_gb = path.stat().st_size / 2**30
        child = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True)
        result = json.loads(child.stdout.strip().splitlines()[-1])
    result.update(file_gib=file_gb, cap_gib=args.cap_gib, write_s=write_s,
                  file_over_cap=file_gb / args.cap_gib, under_cap=result["peak_rss_gib"] < args.cap_gib)
    out = Path(__file__).parent / "results" / "cpu"
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "data_memory.json", json.dumps(result, indent=2))
    text = (
        "| file GiB | cap GiB | file / cap | peak RSS GiB (after import) | under cap | items | epoch s | fit_surrogate s |\n"
        "|---|---|---|---|---|---|---|---|\n"
        f"| {file_gb:.2f} | {args.cap_gib:.2f} | {file_gb / args.cap_gib:.1f} | {result['peak_rss_gib']:.2f} "
        f"({result['rss_after_import_gib']:.2f}) | {result['under_cap']} | {result['items']} | {result['epoch_s']:.1f} | "
        f"{result['fit_s']:.1f} |\n"
    )
    write_text(out / "data_memory.md", text)
    print(text)


if __name__ == "__main__":
    main()
