"""Dataset generation on dask.distributed: a 2-worker LocalCluster against one process (issue 20 targets).

Recipe: ``ns2d`` (pseudo-spectral Navier-Stokes, CPU-bound FFTs) at 64x64, ``chunk`` samples solved as one
batch (one dask task each), ``--t-end`` time units at the recipe's step (dt = 0.01 here: 100 steps per time
unit), so that one chunk solves in about 2-5 s on one torch thread. Measured, in this order:

(a) one process, ``torch.set_num_threads(1)``: ``generate(...)``;
(b) one process, ``torch.set_num_threads(2)``: ``generate(...)``;
(c) ``generate(..., client=...)`` on a ``LocalCluster(n_workers=2, threads_per_worker=1)`` started before (its
    start-up, and a first tiny solve on each worker that imports sciml and torch there, reported apart), the
    tasks running with one torch thread each (the parent's count, 1).

All three with glibc's mmap and trim thresholds raised (:func:`sciml.allocator.keep_freed_memory`: this process
at the start, each worker in its first task; dask's own worker default, ``MALLOC_TRIM_THRESHOLD_=65536``, made a
chunk solve 5x slower in a worker).

Reported: samples per second of each; ratios (c)/(a) (target >= 1.6 on a 2-core machine) and (c)/(b);
whether (c) holds the bytes of (a); and the scheduling overhead per chunk: chunks submitted one at a time
to the cluster, (task wall seen by the client, from submit to the result in hand - solve time measured inside
the task) / solve time (target < 5%).

Usage: nice -n 10 python benchmarks/scaleout_generation.py [--quick] [--chunks N] [--t-end T]
Writes benchmarks/results/cpu/scaleout_generation.{json,md} (``--quick``: ``scaleout_generation_quick.*``, to
check that the script runs; not a measurement). Run on an otherwise idle machine: the ratios compare wall
clocks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from sciml._atomic import write_text

RESOLUTION = 64
CHUNK = 8


def _warm() -> int:
    """Import sciml's recipes and run a tiny solve in this process (a worker's first task would pay for it)."""
    from sciml.datasets import generate
    from sciml.sweep import _keep_freed_memory_in_worker

    _keep_freed_memory_in_worker()  # in a worker: what its first generation task does
    generate("ns2d", 1, 16, seed=0, times=[0.0, 0.02], chunk=1, progress=False)
    return os.getpid()


def _one_process(threads: int, options: dict, n: int):
    from sciml.datasets import generate

    torch.set_num_threads(threads)
    start = time.perf_counter()
    ds = generate("ns2d", n, RESOLUTION, seed=0, **options)
    return ds, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes to check the script (seconds; no results)")
    parser.add_argument("--chunks", type=int, help="chunks per measurement (default 8; quick 2)")
    parser.add_argument("--t-end", type=float, help="simulated time per trajectory (default 10.0; quick 0.5)")
    parser.add_argument("--probes", type=int, help="chunks submitted one at a time for the overhead (default 4; quick 2)")
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    from sciml.allocator import allocator_settings, keep_freed_memory
    from sciml.datasets import generate
    from sciml.datasets._common import _solve_part
    from sciml.sweep import _call

    quick = args.quick
    n_chunks = args.chunks or (2 if quick else 8)
    t_end = args.t_end or (0.5 if quick else 10.0)
    n_probes = args.probes or (2 if quick else 4)
    n = n_chunks * CHUNK
    options = dict(times=[0.0, t_end / 2, t_end], chunk=CHUNK, progress=False)

    keep_freed_memory()  # as the command line does; the cluster's tasks do the same in their workers
    torch.set_num_threads(1)
    _warm()
    single, seconds_a = _one_process(1, options, n)
    _, seconds_b = _one_process(2, options, n)

    torch.set_num_threads(1)  # the tasks run with the parent's torch thread count
    start = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as client:
        cluster_seconds = time.perf_counter() - start
        start = time.perf_counter()
        pids = client.run(_warm)
        warm_seconds = time.perf_counter() - start
        start = time.perf_counter()
        sharded = generate("ns2d", n, RESOLUTION, seed=0, client=client, **options)
        seconds_c = time.perf_counter() - start
        probes = []
        for i in range(n_probes):
            call = dict(name="ns2d", n_samples=CHUNK, resolution=RESOLUTION, seed=0, first_sample=i * CHUNK,
                        device="cpu", local_gpus=True, threads=1, options=dict(times=options["times"], chunk=CHUNK),
                        shard=None)
            start = time.perf_counter()
            result = client.submit(_call, _solve_part, call, pure=False).result()
            wall = time.perf_counter() - start
            probes.append({"wall_seconds": wall, "solve_seconds": result["seconds"],
                           "overhead_fraction": (wall - result["seconds"]) / result["seconds"]})
    identical = sharded.identical(single) and all(
        sharded[v].values.tobytes() == single[v].values.tobytes() for v in single.data_vars)
    rate = {k: n / s for k, s in (("a_one_process_1_thread", seconds_a), ("b_one_process_2_threads", seconds_b),
                                  ("c_local_cluster_2x1_thread", seconds_c))}
    overheads = [p["overhead_fraction"] for p in probes]
    result = {
        "setting": f"ns2d {RESOLUTION}x{RESOLUTION}, {n_chunks} chunks of {CHUNK} samples, t_end {t_end} "
                   f"(dt {single.attrs.get('dt')})",
        "quick": quick, "n_samples": n, "chunk": CHUNK, "t_end": t_end,
        "seconds": {"a_one_process_1_thread": seconds_a, "b_one_process_2_threads": seconds_b,
                    "c_local_cluster_2x1_thread": seconds_c},
        "samples_per_second": rate,
        "ratio_c_over_a": rate["c_local_cluster_2x1_thread"] / rate["a_one_process_1_thread"],
        "ratio_c_over_b": rate["c_local_cluster_2x1_thread"] / rate["b_one_process_2_threads"],
        "target_ratio_c_over_a": 1.6,
        "c_identical_to_a": bool(identical),
        "chunk_solve_seconds_a": seconds_a / n_chunks,
        "overhead_per_chunk": {"probes": probes, "mean_fraction": statistics.mean(overheads),
                               "max_fraction": max(overheads), "target_fraction": 0.05},
        "cluster_startup_seconds": cluster_seconds, "worker_warmup_seconds": warm_seconds,
        "worker_pids": sorted(pids.values()),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch": torch.__version__, "load_average_1min_at_end": os.getloadavg()[0],
                    "allocator": allocator_settings()},
    }
    out = Path(__file__).parent / "results" / "cpu"
    out.mkdir(parents=True, exist_ok=True)
    name = "scaleout_generation_quick" if quick else "scaleout_generation"
    write_text(out / f"{name}.json", json.dumps(result, indent=2))
    lines = [f"# Generation on dask.distributed: 2-worker LocalCluster vs one process{' - quick sizes' if quick else ''}",
             "", f"{result['setting']}; {n} samples per run. Command: "
             f"`nice -n 10 python benchmarks/scaleout_generation.py{' --quick' if quick else ''}`.", "",
             "| run | seconds | samples/s |", "|---|---|---|"]
    for key, label in (("a_one_process_1_thread", "(a) one process, 1 torch thread"),
                       ("b_one_process_2_threads", "(b) one process, 2 torch threads"),
                       ("c_local_cluster_2x1_thread", "(c) LocalCluster, 2 workers x 1 thread")):
        lines.append(f"| {label} | {result['seconds'][key]:.2f} | {rate[key]:.3f} |")
    lines += ["", f"- (c)/(a) = {result['ratio_c_over_a']:.2f} (target >= 1.6); (c)/(b) = {result['ratio_c_over_b']:.2f}",
              f"- (c) byte-identical to (a): {identical}",
              f"- scheduling overhead per chunk ({n_probes} chunks submitted one at a time): mean "
              f"{100 * result['overhead_per_chunk']['mean_fraction']:.2f}%, max "
              f"{100 * result['overhead_per_chunk']['max_fraction']:.2f}% of the chunk's solve time (target < 5%)",
              f"- cluster start-up {cluster_seconds:.2f} s, first tiny solve on each worker (imports) "
              f"{warm_seconds:.2f} s: not in (c)",
              f"- machine: {result['machine']['cores']} cores, load average {result['machine']['load_average_1min_at_end']:.2f} "
              "at the end"]
    write_text(out / f"{name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
