"""sciml.sweep: evaluations as dask tasks, each result saved once; a worker killed during the sweep loses and
duplicates nothing; resume skips what is saved; a failing function is a one-line error."""

import json
import os
import signal
from pathlib import Path

import pytest

from sciml import ConfigError, SolverError
from sciml.sweep import sweep

ITEMS = {f"nu={i}": {"nu": 0.01 * (i + 1), "modes": i % 4 + 1} for i in range(20)}


def _evaluate(item):
    """A small deterministic evaluation (hand-checkable: nu * modes**2 and its square root)."""
    value = item["nu"] * item["modes"] ** 2
    return {"decay": value, "root": value ** 0.5}


def _evaluate_and_die_once(item, *, marker: str, log: str):
    """``_evaluate``, except that the first task to run it for ``nu=0.05`` kills its own worker process (SIGKILL: no
    cleanup, like the OOM killer) before any result is written; every run appends to ``log``."""
    with open(log, "a") as handle:
        handle.write(f"{item['nu']!r} {os.getpid()}\n")
    if abs(item["nu"] - 0.05) < 1e-12 and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return _evaluate(item)


def _fails_on_three(item):
    if item == 3:
        raise ValueError("no convergence\nafter 100 iterations")
    return item * 2


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as dask:
        yield dask


def test_serial_sweep_writes_one_file_per_key_with_the_hand_checked_values(tmp_path):
    results = sweep(_evaluate, ITEMS, out_dir=tmp_path, progress=False)
    assert results[3] == {"decay": pytest.approx(0.04 * 16), "root": pytest.approx(0.8)}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{key}.json" for key in ITEMS)
    saved = json.loads((tmp_path / "nu=3.json").read_text())
    assert saved["key"] == "nu=3" and saved["result"] == results[3]
    assert sweep(lambda x: x + 1, [1, 2], out_dir=tmp_path / "seq", progress=False) == [2, 3]
    assert sorted(p.name for p in (tmp_path / "seq").iterdir()) == ["00000.json", "00001.json"]


def _field(scale):
    """An xarray result: a 2x3 field ``scale * [[0, 1, 2], [3, 4, 5]]``."""
    import numpy as np
    import xarray as xr

    return xr.Dataset({"u": (("y", "x"), scale * np.arange(6.0).reshape(2, 3))}, attrs={"scale": scale})


def test_dataset_results_are_netcdf_files_read_back_without_the_sweep_attributes(tmp_path):
    import numpy as np

    results = sweep(_field, {"a": 1.0, "b": 2.5}, out_dir=tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nc", "b.nc"]
    np.testing.assert_array_equal(results[1]["u"].values, [[0.0, 2.5, 5.0], [7.5, 10.0, 12.5]])
    assert results[1].attrs["scale"] == 2.5 and not any(k.startswith("sweep_") for k in results[1].attrs)
    mtime = (tmp_path / "a.nc").stat().st_mtime_ns
    again = sweep(_field, {"a": 1.0, "b": 2.5}, out_dir=tmp_path, progress=False)
    assert (tmp_path / "a.nc").stat().st_mtime_ns == mtime and again[0]["u"].values.tolist() == [[0, 1, 2], [3, 4, 5]]


def test_a_worker_killed_during_the_sweep_loses_and_duplicates_nothing(tmp_path, client):
    import functools

    serial = sweep(_evaluate, ITEMS, out_dir=tmp_path / "serial", progress=False)
    marker, log = tmp_path / "killed", tmp_path / "runs.log"
    pids_before = set(client.run(os.getpid).values())
    function = functools.partial(_evaluate_and_die_once, marker=str(marker), log=str(log))
    results = sweep(function, ITEMS, out_dir=tmp_path / "out", client=client, progress=False)
    assert marker.exists()  # a worker was killed ...
    assert int(marker.read_text()) in pids_before
    runs = [line.split()[0] for line in log.read_text().splitlines()]
    assert runs.count("0.05") == 2  # ... while running nu=0.05, which was run again
    assert sorted(set(runs)) == sorted({repr(item["nu"]) for item in ITEMS.values()})
    assert results == serial  # all 20, each once, in order, equal to the serial run
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f"{key}.json" for key in ITEMS)


def test_resume_runs_only_the_missing_keys(tmp_path, client):
    import functools

    out, log = tmp_path / "out", tmp_path / "runs.log"
    function = functools.partial(_evaluate_and_die_once, marker=str(tmp_path / "never"), log=str(log))
    (tmp_path / "never").write_text("no kill")
    first = sweep(function, ITEMS, out_dir=out, client=client, progress=False)
    for key in ("nu=2", "nu=17"):
        (out / f"{key}.json").unlink()
    kept = (out / "nu=0.json").stat().st_mtime_ns
    log.unlink()
    assert sweep(function, ITEMS, out_dir=out, client=client, progress=False) == first
    assert sorted(line.split()[0] for line in log.read_text().splitlines()) == ["0.03", "0.18"]
    assert (out / "nu=0.json").stat().st_mtime_ns == kept
    log.unlink()
    assert sweep(function, ITEMS, out_dir=out, progress=False) == first  # complete: nothing runs
    assert not log.exists()


def test_a_failing_function_is_a_one_line_error_naming_the_item(tmp_path, client):
    for where in ({}, {"client": client}):
        with pytest.raises(SolverError) as info:
            sweep(_fails_on_three, list(range(6)), out_dir=tmp_path / str(len(where)), retries=0, progress=False, **where)
        assert str(info.value) == "sweep item '00003' (3) failed: ValueError: no convergence"
    assert not (tmp_path / "1" / "00003.json").exists()


def test_bad_arguments_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="sweep key 'a/b' cannot be a file name"):
        sweep(_evaluate, {"a/b": 1}, out_dir=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="workers must be an integer >= 1, got 0"):
        sweep(_evaluate, [1], out_dir=tmp_path, workers=0, progress=False)
    with pytest.raises(ConfigError, match=r"cannot reach the dask scheduler at 'tcp://127.0.0.1:1' \(Connection refused\)"):
        sweep(_evaluate, [1], out_dir=tmp_path, client="tcp://127.0.0.1:1", progress=False)
    sweep(_evaluate, {"k": ITEMS["nu=1"]}, out_dir=tmp_path / "o", progress=False)
    from sciml import DataError

    with pytest.raises(DataError, match="holds the result of item .* under key 'k'"):
        sweep(_evaluate, {"k": ITEMS["nu=2"]}, out_dir=tmp_path / "o", progress=False)
