"""Training-loader throughput against a bare h5py read of the same chunks, and the statistics pass.

One run writes a compressed NetCDF (``sciml.data.write``: zlib 4, one 64 KiB frame per chunk) of two
smooth fields ``a``, ``u`` (Gaussian random fields, 128 x 128, float32), then times, alternating and
after a warm-up pass of each (so both read from the page cache):

* **loader**: ``DataLoader(OperatorPairs(open(file), inputs=["a"], outputs=["u"]), batch_size,
  sampler=ChunkShuffleSampler(block_size))`` over one epoch: read, decode, check finite, collate into
  tensors ``(batch, 1, 128, 128)``;
* **h5py**: for the same batches in the same order, ``Dataset.read_direct`` of the same sample runs
  of ``a`` and ``u`` into preallocated numpy arrays: the floor any NetCDF reader pays;
* **statistics**: ``channel_statistics(ds, ["a", "u"])``, one streaming pass.

Target: loader throughput >= 80% of h5py's (ratio = h5py seconds / loader seconds).

Usage: python benchmarks/data_loader.py [--samples 2048] [--resolution 128] [--batch 32] [--block 32] [--repeats 3]
Writes benchmarks/results/cpu/data_loader.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch.utils.data import DataLoader

from sciml._atomic import write_text
from sciml import data
from sciml import Grid
from sciml.random_fields import gaussian_random_field


def make_file(path: Path, samples: int, resolution: int) -> Path:
    fields = {}
    for offset, name in enumerate(("a", "u")):
        values = gaussian_random_field(Grid.box(resolution, resolution), samples, seed=offset, dtype=torch.float32)
        fields[name] = (("sample", "y", "x"), values.numpy().astype(np.float32))
    grid = np.arange(resolution) / resolution
    ds = xr.Dataset(fields, coords={"sample": np.arange(samples), "y": grid, "x": grid})
    return data.write(ds, path)


def loader_epoch(path: Path, batch: int, block: int, workers: int) -> float:
    pairs = data.OperatorPairs(data.open(path), inputs=["a"], outputs=["u"])
    sampler = data.ChunkShuffleSampler(len(pairs), block_size=block, seed=0)
    loader = DataLoader(pairs, batch_size=batch, sampler=sampler, num_workers=workers)
    start = time.perf_counter()
    count = sum(x.shape[0] for x, _ in loader)
    elapsed = time.perf_counter() - start
    assert count == len(pairs)
    return elapsed


def h5py_epoch(path: Path, batch: int, block: int, resolution: int) -> float:
    import h5py

    order = np.fromiter(data.ChunkShuffleSampler(_length(path), block_size=block, seed=0), dtype=np.int64)
    buffers = {name: np.empty((batch, resolution, resolution), np.float32) for name in ("a", "u")}
    start = time.perf_counter()
    with h5py.File(path, "r") as f:
        for first in range(0, len(order), batch):
            samples = np.sort(order[first : first + batch])
            breaks = np.flatnonzero(np.diff(samples) != 1) + 1
            for run in np.split(samples, breaks):
                for name in ("a", "u"):
                    f[name].read_direct(buffers[name], np.s_[run[0] : run[-1] + 1], np.s_[: len(run)])
    return time.perf_counter() - start


def _length(path: Path) -> int:
    import h5py

    with h5py.File(path, "r") as f:
        return f["a"].shape[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        path = make_file(Path(tmp) / "loader.nc", args.samples, args.resolution)
        size_mb = path.stat().st_size / 1e6
        raw_mb = 2 * args.samples * args.resolution**2 * 4 / 1e6
        rows = []
        for block in sorted({1, args.block}):
            loader_epoch(path, args.batch, block, 0), h5py_epoch(path, args.batch, block, args.resolution)  # warm-up
            loader_s, h5py_s = [], []
            for _ in range(args.repeats):
                loader_s.append(loader_epoch(path, args.batch, block, 0))
                h5py_s.append(h5py_epoch(path, args.batch, block, args.resolution))
            rows.append({"block": block, "workers": 0, "loader_s": statistics.median(loader_s),
                         "loader_s_range": [min(loader_s), max(loader_s)], "h5py_s": statistics.median(h5py_s),
                         "h5py_s_range": [min(h5py_s), max(h5py_s)],
                         "ratio": statistics.median(h5py_s) / statistics.median(loader_s)})
        workers_s = statistics.median(loader_epoch(path, args.batch, args.block, 2) for _ in range(args.repeats))
        start = time.perf_counter()
        stats = data.channel_statistics(data.open(path), ["a", "u"])
        stats_s = time.perf_counter() - start
    machine = {"device": "cpu", "torch": torch.__version__, "threads": torch.get_num_threads(),
               "name": platform.processor() or platform.machine()}
    result = {"machine": machine, "samples": args.samples, "resolution": args.resolution, "batch": args.batch,
              "file_mb": size_mb, "raw_mb": raw_mb, "rows": rows, "loader_2_workers_s": workers_s,
              "statistics_s": stats_s, "statistics_mean": stats.mean.tolist()}
    out = Path(__file__).parent / "results" / "cpu"
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "data_loader.json", json.dumps(result, indent=2))
    table = ["| shuffle block | loader s/epoch (min-max) | h5py same chunks s/epoch (min-max) | loader MB/s | ratio (target >= 0.80) |",
             "|---|---|---|---|---|"]
    table += [f"| {r['block']} | {r['loader_s']:.3f} ({r['loader_s_range'][0]:.3f}-{r['loader_s_range'][1]:.3f}) | "
              f"{r['h5py_s']:.3f} ({r['h5py_s_range'][0]:.3f}-{r['h5py_s_range'][1]:.3f}) | {raw_mb / r['loader_s']:.0f} | "
              f"{r['ratio']:.2f} |" for r in rows]
    text = (f"Machine: {machine}\n\nFile: {args.samples} samples x 2 fields x {args.resolution}^2 float32, "
            f"{raw_mb:.0f} MB raw, {size_mb:.0f} MB on disk (zlib 4); batch {args.batch}.\n\n" + "\n".join(table)
            + f"\n\nLoader with 2 DataLoader workers (block {args.block}): {workers_s:.3f} s/epoch. "
            f"Statistics pass (one read): {stats_s:.3f} s.\n")
    write_text(out / "data_loader.md", text)
    print(text)


if __name__ == "__main__":
    main()
