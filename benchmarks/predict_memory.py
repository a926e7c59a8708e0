"""Peak memory of ``Surrogate.predict`` on 10,000 samples read lazily from disk.

The parent writes ``--samples`` input fields (64 x 64 float32, uncompressed, from a dask array) and
saves an FNO surrogate (untrained: memory does not depend on the weights). A fresh child process
loads both, predicts every sample in chunks of ``--batch-size`` and reports its peak resident set
size next to the sizes of the input file and of the (in-memory) prediction.

Usage: python benchmarks/predict_memory.py [--samples 10000] [--batch-size 64]
Writes benchmarks/results/cpu/predict_memory.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from sciml._atomic import write_text

CHILD = r"""
import json, resource, sys, time
import torch
from sciml import Surrogate, data
torch.set_num_threads(2)
surrogate = Surrogate.load(sys.argv[1])
ds = data.open(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
start = time.perf_counter()
pred = surrogate.predict(ds, batch_size=int(sys.argv[3]), device="cpu")
seconds = time.perf_counter() - start
print(json.dumps({"predict_s": seconds, "rss_before_predict_gib": before, "prediction_gib": pred.nbytes / 2**30,
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import dask.array as dsa
    import numpy as np
    import torch
    import xarray as xr

    from sciml import Grid, data
    from sciml.models import build
    from sciml.surrogate import NormalizedOperator, Surrogate

    n = 64
    with tempfile.TemporaryDirectory() as tmp:
        grid = np.arange(n) / n
        field = dsa.random.default_rng(0).standard_normal((args.samples, n, n), chunks=(1000, n, n), dtype=np.float32)
        ds = xr.Dataset({"a": (("sample", "y", "x"), field)}, coords={"sample": np.arange(args.samples), "y": grid, "x": grid})
        path = data.write(ds, Path(tmp) / "inputs.nc", compression=0)
        torch.manual_seed(0)
        module = NormalizedOperator(build("fno", in_channels=1, out_channels=1, n_modes=(16, 16), hidden_channels=32), 1, 1)
        Surrogate(module=module, inputs=["a"], outputs=["u"], grid=Grid.box(n, n), units={"a": "1", "u": "1"}).save(Path(tmp) / "run")
        child = subprocess.run([sys.executable, "-c", CHILD, str(Path(tmp) / "run"), str(path), str(args.batch_size)],
                               capture_output=True, text=True, check=True)
        result = json.loads(child.stdout.strip().splitlines()[-1])
        result.update(samples=args.samples, batch_size=args.batch_size, input_file_gib=path.stat().st_size / 2**30)
    out = Path(__file__).parent / "results" / "cpu"
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "predict_memory.json", json.dumps(result, indent=2))
    text = ("| samples | input file GiB | prediction GiB | RSS before predict GiB | peak RSS GiB | predict s |\n"
            "|---|---|---|---|---|---|\n"
            f"| {args.samples} | {result['input_file_gib']:.3f} | {result['prediction_gib']:.3f} | "
            f"{result['rss_before_predict_gib']:.3f} | {result['peak_rss_gib']:.3f} | {result['predict_s']:.1f} |\n")
    write_text(out / "predict_memory.md", text)
    print(text)


if __name__ == "__main__":
    main()
