"""Generation on dask.distributed (issue 20): a 2-worker LocalCluster gives the bytes of one process, shards resume,
foreign shard directories and unreachable schedulers are one-line errors, and the command line drives it all."""

import shlex
import time

import numpy as np
import pytest

from sciml import ConfigError, DataError, data
from sciml.cli import main
from sciml.data.shards import open_shards, shard_name
from sciml.datasets import generate

NS2D = dict(times=[0.0, 0.1], chunk=1, progress=False)
BURGERS = dict(times=[0.0, 0.05], solve_resolution=64, chunk=1, progress=False)  # one step per chunk: dt differs


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as dask:
        yield dask


@pytest.fixture(scope="module")
def single():
    return {"ns2d": generate("ns2d", 3, 16, seed=4, **NS2D), "burgers": generate("burgers", 3, 32, seed=4, **BURGERS)}


def _same(a, b, name):
    assert a.identical(b)
    assert a[name].values.tobytes() == b[name].values.tobytes()


def test_two_workers_give_the_bytes_of_one_process(client, single, tmp_path):
    for recipe, resolution, options, name in (("ns2d", 16, NS2D, "vorticity"), ("burgers", 32, BURGERS, "u")):
        ds = generate(recipe, 3, resolution, seed=4, client=client, **options)
        _same(single[recipe], ds, name)
        assert data.write(ds, tmp_path / f"{recipe}-a.nc").read_bytes() == \
            data.write(single[recipe], tmp_path / f"{recipe}-b.nc").read_bytes()
    assert len(set(single["burgers"].attrs["dt"])) == 3  # the join kept every chunk's step
    # dask's workers start with MALLOC_TRIM_THRESHOLD_=65536 (a solve 5x slower); the tasks raised the thresholds
    for settings in client.run(_allocator).values():
        assert settings["keep_freed_memory"] == {"mmap_threshold": 32 * 2**20, "trim_threshold": 1 << 30}


class _KillOnFirstStart:
    """A dask worker plugin: the first generation task to start executing on any worker SIGKILLs that worker
    (no cleanup, like the OOM killer), once per ``marker`` file."""

    name = "kill-on-first-start"

    def __init__(self, marker: str):
        self.marker = marker

    def setup(self, worker):
        pass

    def teardown(self, worker):
        pass

    def transition(self, key, start, finish, **kwargs):
        import os
        import signal

        if finish == "executing" and "sciml-generate" in str(key) and not os.path.exists(self.marker):
            with open(self.marker, "w") as handle:
                handle.write(f"{key} {os.getpid()}")
            os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_mid_task_loses_and_duplicates_no_sample(client, single, tmp_path):
    from distributed.diagnostics.plugin import WorkerPlugin

    plugin = type("KillOnFirstStart", (_KillOnFirstStart, WorkerPlugin), {})
    for shard_dir in (None, tmp_path / "shards"):
        marker = tmp_path / f"killed-{shard_dir is not None}"
        client.register_plugin(plugin(str(marker)), name=_KillOnFirstStart.name)
        try:
            ds = generate("ns2d", 3, 16, seed=4, client=client, shard_dir=shard_dir, **NS2D)
        finally:
            client.unregister_worker_plugin(_KillOnFirstStart.name)
        assert marker.read_text().startswith("sciml-generate-ns2d-")  # a worker died running a chunk ...
        _same(single["ns2d"], ds.load(), "vorticity")  # ... and every sample is there once, as one process has it
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == [shard_name(i) for i in range(3)] + ["shards.json"]


def _allocator():
    from sciml.allocator import allocator_settings

    return allocator_settings()


def test_shards_on_the_cluster_resume_and_open_as_one_process_dataset(client, single, tmp_path):
    directory = tmp_path / "shards"
    ds = generate("burgers", 3, 32, seed=4, client=client, shard_dir=directory, **BURGERS)
    assert sorted(p.name for p in directory.iterdir()) == [shard_name(i) for i in range(3)] + ["shards.json"]
    assert ds["u"].chunks is not None  # opened lazily from the shards
    _same(single["burgers"], ds.load(), "u")
    _same(single["burgers"], open_shards(directory).load(), "u")
    # resume: shard 1 lost; only it is solved again (the others keep their files), the result is unchanged
    (directory / shard_name(1)).unlink()
    kept = {i: (directory / shard_name(i)).stat().st_mtime_ns for i in (0, 2)}
    time.sleep(0.01)
    _same(single["burgers"], generate("burgers", 3, 32, seed=4, client=client, shard_dir=directory, **BURGERS).load(),
          "u")
    assert {i: (directory / shard_name(i)).stat().st_mtime_ns for i in (0, 2)} == kept
    assert (directory / shard_name(1)).exists()
    # a directory of another seed or resolution: refused before any solve, in one line
    for seed, resolution, message in ((5, 32, r"another run \(seed 4 \(wanted 5\)\)"),
                                      (4, 64, r"another run \(resolution 32 \(wanted 64\)\)")):
        with pytest.raises(DataError, match=message) as info:
            generate("burgers", 3, resolution, seed=seed, client=client, shard_dir=directory, **BURGERS)
        assert "\n" not in str(info.value)
    with pytest.raises(DataError, match=r"another run \(recipe 'burgers' \(wanted 'ns2d'\)"):
        generate("ns2d", 3, 32, seed=4, client=client, shard_dir=directory, **NS2D)


def test_sciml_data_open_of_a_shard_directory_is_the_one_process_dataset(single, tmp_path):
    directory = tmp_path / "shards"
    generate("burgers", 3, 32, seed=4, shard_dir=directory, **BURGERS)
    opened = data.open(directory)
    assert list(opened.attrs["dt"]) == list(single["burgers"].attrs["dt"])  # every chunk's step, not shard 0's
    _same(single["burgers"], opened.load(), "u")


def test_sciml_data_open_of_a_shard_directory_checks_and_joins_the_shards(single, tmp_path):
    directory = tmp_path / "shards"
    generate("ns2d", 3, 16, seed=4, shard_dir=directory, **NS2D)
    opened = data.open(directory)
    np.testing.assert_array_equal(opened["sample"].values, [0, 1, 2])
    assert opened["vorticity"].values.tobytes() == single["ns2d"]["vorticity"].values.tobytes()
    (directory / shard_name(2)).unlink()
    with pytest.raises(DataError, match=r"samples 2 are missing \(1 of 3 shards\)"):
        data.open(directory)


def test_an_unreachable_scheduler_is_a_one_line_error_naming_it_at_once():
    start = time.monotonic()
    with pytest.raises(ConfigError) as info:
        generate("ns2d", 2, 16, seed=0, client="tcp://127.0.0.1:1", **NS2D)
    message = str(info.value)
    assert message.startswith("cannot reach the dask scheduler at 'tcp://127.0.0.1:1' (Connection refused)")
    assert "\n" not in message
    assert time.monotonic() - start < 30  # refused at once, not after distributed's retries (generous: a loaded CI)
    with pytest.raises(ConfigError, match="workers=2 and a client are both given"):
        generate("ns2d", 2, 16, seed=0, client="tcp://127.0.0.1:1", workers=2, **NS2D)
    with pytest.raises(ConfigError, match="retries must be an integer >= 0, got -1"):
        generate("ns2d", 2, 16, seed=0, retries=-1, **NS2D)


def test_the_command_line_runs_on_a_scheduler_with_shards(client, tmp_path, capsys):
    argv = ["generate", "ns2d", "--n", "3", "--resolution", "16", "--seed", "4", "--times", "0", "0.1", "--chunk", "1",
            "--scheduler", client.scheduler.address, "--shard-dir", str(tmp_path / "shards"), "--retries", "1",
            "--out", str(tmp_path / "out.nc"), "--no-progress"]
    assert main(argv) == 0
    single = generate("ns2d", 3, 16, seed=4, **{**NS2D, "command": shlex.join(["sciml", *argv])})
    assert (tmp_path / "out.nc").read_bytes() == data.write(single, tmp_path / "single.nc").read_bytes()
    assert (tmp_path / "shards" / shard_name(2)).exists()
    # shards only (no --out): the shards are the output
    only = argv[:-3] + ["--no-progress"]
    only[only.index("--shard-dir") + 1] = str(tmp_path / "only")
    assert main(only) == 0
    assert "in shards; open it with sciml.data.open" in capsys.readouterr().err
    assert data.open(tmp_path / "only")["vorticity"].values.tobytes() == single["vorticity"].values.tobytes()
    # neither --out nor --shard-dir; an unreachable scheduler; --workers with --scheduler
    neither = argv[:argv.index("--scheduler")] + ["--no-progress"]
    assert main(neither) != 0
    assert "give --out FILE, --shard-dir DIR, or both" in capsys.readouterr().err
    unreachable = neither + ["--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path / "x.nc")]
    assert main(unreachable) != 0
    err = capsys.readouterr().err
    assert "cannot reach the dask scheduler at 'tcp://127.0.0.1:1'" in err and err.strip().count("\n") == 0
    with pytest.raises(SystemExit):
        main(unreachable + ["--workers", "2"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_the_memory_check_counts_one_chunk_when_the_samples_go_to_shards(tmp_path, monkeypatch):
    from sciml import _budget
    from sciml.datasets import estimate

    full, sharded = estimate("ns2d", 4, 16, **NS2D), estimate("ns2d", 4, 16, sharded=True, **NS2D)
    assert sharded.output_bytes == pytest.approx(full.output_bytes / 4)  # chunk 1 of 4 samples
    assert (sharded.file_bytes, sharded.steps) == (full.file_bytes, full.steps)  # all samples still written, solved
    monkeypatch.setattr(_budget, "available_memory", lambda: int((full.memory_bytes + sharded.memory_bytes) / 2))
    with pytest.raises(ConfigError, match="need"):
        generate("ns2d", 4, 16, seed=0, **NS2D)
    ds = generate("ns2d", 4, 16, seed=0, shard_dir=tmp_path / "s", **NS2D)
    assert ds.sizes["sample"] == 4


def test_on_a_local_cluster_worker_i_solves_on_gpu_i_modulo_the_gpus(monkeypatch):
    """No GPU here: the device choice of a chunk task is checked with two fake GPUs and fake worker names."""
    import types

    import distributed
    import torch

    import sciml.datasets
    from sciml.datasets import _common

    seen = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(sciml.datasets, "generate", lambda *args, device, **kwargs: seen.append(device))
    call = dict(name="ns2d", n_samples=1, resolution=16, seed=0, first_sample=0, threads=1, options={}, shard=None)
    for name in ("0", "1", "2"):
        monkeypatch.setattr(distributed, "get_worker", lambda name=name: types.SimpleNamespace(name=name))
        _common._solve_part(device="cuda", local_gpus=True, **call)
    _common._solve_part(device="cuda", local_gpus=False, **call)  # an external cluster: each worker's own GPU
    _common._solve_part(device="cuda:1", local_gpus=True, **call)  # an explicit device is kept
    assert seen == ["cuda:0", "cuda:1", "cuda:0", "cuda", "cuda:1"]
