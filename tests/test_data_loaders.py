"""Torch datasets over files, trajectory splits, chunk-aware sampling and one-pass statistics."""

import numpy as np
import pytest
import torch
import xarray as xr
from torch.utils.data import DataLoader, DistributedSampler
from xarray.backends import BackendArray
from xarray.core import indexing

from sciml import ConfigError, DataError, data
from sciml.data import ChunkShuffleSampler, OperatorPairs, TrajectoryWindows, channel_statistics, split_by_trajectory


def trajectories(n=6, t=5, ny=4, nx=6):
    """Each value encodes (sample, time, y, x) so a misplaced read is visible: 1000 s + 100 t + 10 y + x."""
    s, tt, y, x = np.meshgrid(np.arange(n), np.arange(t), np.arange(ny), np.arange(nx), indexing="ij")
    w = (1000 * s + 100 * tt + 10 * y + x).astype(np.float32)
    return xr.Dataset(
        {"w": (("sample", "time", "y", "x"), w), "v": (("sample", "time", "y", "x"), -w)},
        coords={"sample": np.arange(n), "time": np.arange(t) * 0.1, "y": np.arange(ny) / ny, "x": np.arange(nx) / nx},
        attrs={"Conventions": "CF-1.10"},
    )


@pytest.fixture
def trajectory_file(tmp_path):
    return data.write(trajectories(), tmp_path / "traj.nc")


def test_split_by_trajectory_never_shares_a_trajectory(trajectory_file):
    ds = data.open(trajectory_file)
    splits = split_by_trajectory(ds, {"train": 0.5, "val": 0.17, "test": 0.33}, seed=3)
    ids = {name: set(part["sample"].values.tolist()) for name, part in splits.items()}
    assert sum(len(v) for v in ids.values()) == 6 and set().union(*ids.values()) == set(range(6))
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    again = split_by_trajectory(ds, {"train": 0.5, "val": 0.17, "test": 0.33}, seed=3)
    assert {k: set(v["sample"].values.tolist()) for k, v in again.items()} == ids  # same seed, same split
    # Every window drawn from the training split comes from a training trajectory.
    windows = TrajectoryWindows(splits["train"], variables=["w"], history=2, horizon=2)
    seen = {int(past[0, 0, 0, 0]) // 1000 for past, _ in (windows[i] for i in range(len(windows)))}
    assert seen == ids["train"]
    with pytest.raises(ConfigError, match=r"split fractions must be non-negative and sum to 1, got \{'a': 0.5, 'b': 0.6\}"):
        split_by_trajectory(ds, {"a": 0.5, "b": 0.6})
    with pytest.raises(DataError, match=r"traj\.nc: 6 samples leave split\(s\) \['b'\] empty; use more samples or other fractions$"):
        split_by_trajectory(ds, {"a": 0.9, "b": 0.1})


def test_operator_pairs_read_the_right_values_lazily(trajectory_file):
    ds = data.open(trajectory_file)
    pairs = OperatorPairs(ds, inputs=["w"], outputs=["v", "w"])
    assert len(pairs) == 6 * 5 and not ds["w"].variable._in_memory
    x, y = pairs[2 * 5 + 3]  # sample 2, time 3
    assert x.shape == (1, 4, 6) and y.shape == (2, 4, 6) and x.dtype == torch.float32
    assert x[0, 1, 2] == 2312 and y[0, 1, 2] == -2312 and y[1, 1, 2] == 2312
    batch = pairs.__getitems__([29, 0, 7, 8])  # out of order, two contiguous runs
    assert [int(b[0][0, 0, 0]) for b in batch] == [5400, 0, 1200, 1300]
    static = xr.Dataset({"a": (("sample", "y", "x"), np.arange(48.0).reshape(2, 4, 6)), "u": (("sample", "y", "x"), np.zeros((2, 4, 6)))})
    darcy = OperatorPairs(static, inputs=["a"], outputs=["u"], dtype=torch.float64)
    assert len(darcy) == 2 and darcy[1][0][0, 0, 0] == 24.0 and darcy[1][0].dtype == torch.float64


def test_trajectory_windows_follow_history_horizon_stride_and_lag(trajectory_file):
    ds = data.open(trajectory_file)
    windows = TrajectoryWindows(ds, variables=["w", "v"], history=2, horizon=1, stride=1, lag=2)
    # span (2 + 1 - 1) * 2 + 1 = 5 time steps: exactly one window per trajectory
    assert len(windows) == 6
    past, future = windows[4]
    assert past.shape == (2, 2, 4, 6) and future.shape == (1, 2, 4, 6)
    assert [int(f[0, 0, 0]) for f in past] == [4000, 4200] and int(future[0, 0, 0, 0]) == 4400
    assert int(past[1, 1, 0, 0]) == -4200
    strided = TrajectoryWindows(ds, variables=["w"], history=1, horizon=2, stride=2)
    assert len(strided) == 6 * 2  # starts at t = 0 and 2
    past, future = strided[3]  # sample 1, second window
    assert int(past[0, 0, 0, 0]) == 1200 and [int(f[0, 0, 0]) for f in future] == [1300, 1400]
    with pytest.raises(DataError, match=r"traj\.nc: a window of history=4, horizon=2, lag=1 spans 6 time steps; the file has 5$"):
        TrajectoryWindows(ds, variables=["w"], history=4, horizon=2)
    with pytest.raises(ConfigError, match="stride must be a positive integer, got 0"):
        TrajectoryWindows(ds, variables=["w"], stride=0)


def test_random_crops_are_shared_by_inputs_and_outputs_and_change_with_the_epoch(trajectory_file):
    pairs = OperatorPairs(data.open(trajectory_file), inputs=["w"], outputs=["v"], crop=(2, 3), seed=1)
    x, y = pairs[7]
    assert x.shape == (1, 2, 3) and torch.equal(x, -y)
    assert torch.equal(pairs[7][0], x)  # deterministic
    corners = set()
    for epoch in range(12):
        pairs.set_epoch(epoch)
        corner = int(pairs[7][0][0, 0, 0])
        corners.add(corner)
        y0, x0 = divmod(corner - 1000 - 200, 10)  # sample 1, time 2
        assert 0 <= y0 <= 2 and 0 <= x0 <= 3
    assert len(corners) > 1
    with pytest.raises(ConfigError, match=r"crop \(5, 3\) does not fit the spatial shape \(4, 6\) \(y, x\)"):
        OperatorPairs(data.open(trajectory_file), inputs=["w"], outputs=["v"], crop=(5, 3))


def test_dataloader_workers_and_distributed_samplers_see_the_same_data(trajectory_file):
    pairs = OperatorPairs(data.open(trajectory_file), inputs=["w"], outputs=["v"])
    sampler = ChunkShuffleSampler(len(pairs), block_size=4, seed=0)
    serial = [b[0] for b in DataLoader(pairs, batch_size=8, sampler=sampler)]
    parallel = [b[0] for b in DataLoader(pairs, batch_size=8, sampler=sampler, num_workers=2)]
    assert len(serial) == len(parallel) == 4
    for a, b in zip(serial, parallel):
        torch.testing.assert_close(a, b)
    order = list(sampler)
    assert sorted(order) == list(range(30)) and order != list(range(30))
    assert all(order[i + 1] == order[i] + 1 for i in range(0, 28, 4) if order[i] % 4 == 0 and order[i] + 3 < 30)
    for make in (lambda r: DistributedSampler(pairs, num_replicas=2, rank=r, shuffle=True, seed=0),
                 lambda r: ChunkShuffleSampler(len(pairs), block_size=4, num_replicas=2, rank=r)):
        shares = [list(make(r)) for r in (0, 1)]
        assert set(shares[0]) | set(shares[1]) == set(range(30))
        assert isinstance(make(0), DistributedSampler) or not set(shares[0]) & set(shares[1])


def test_nan_in_a_file_stops_loading_and_statistics_with_the_sample(tmp_path):
    ds = trajectories()
    ds["w"][4, 2, 1, 1] = np.nan
    path = data.write(ds, tmp_path / "nan.nc")
    opened = data.open(path)
    pairs = OperatorPairs(opened, inputs=["w"], outputs=["v"])
    assert pairs[3 * 5][0].isfinite().all()  # clean samples still load
    assert pairs[4 * 5 + 1][0].isfinite().all()  # only the frames an item uses are read (and checked)
    with pytest.raises(DataError) as err:
        pairs[4 * 5 + 2]
    assert str(err.value) == f"{path}: variable 'w' has NaN/Inf values (first at sample=4, time=2, y=1, x=1); clean or drop those samples"
    with pytest.raises(DataError) as err:
        channel_statistics(opened, ["v", "w"], samples_per_read=3)
    assert str(err.value) == f"{path}: variable 'w' has NaN/Inf values (first at sample=4, time=2, y=1, x=1); clean or drop those samples"


class CountingArray(BackendArray):
    """A lazily indexed in-memory array that counts the values read through it."""

    def __init__(self, values):
        self.values, self.shape, self.dtype, self.read = values, values.shape, values.dtype, 0

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC, self._raw)

    def _raw(self, key):
        out = self.values[key]
        self.read += out.size
        return out


def test_statistics_are_exact_in_one_pass_even_with_a_large_mean():
    rng = np.random.default_rng(0)
    values = (1e6 + rng.standard_normal((37, 3, 8, 8))).astype(np.float64)
    counter = CountingArray(values)
    ds = xr.Dataset({"p": xr.Variable(("sample", "time", "y", "x"), indexing.LazilyIndexedArray(counter))})
    stats = channel_statistics(ds, ["p"], samples_per_read=5)
    assert counter.read == values.size  # every value read exactly once: one pass
    assert abs(stats.mean[0] - values.mean()) < 1e-9 * 1e6
    np.testing.assert_allclose(stats.std[0], values.std(), rtol=1e-10)  # naive E[x^2]-E[x]^2 keeps only ~4 digits here
    assert stats.minimum[0] == values.min() and stats.maximum[0] == values.max() and stats.count[0] == values.size
    for block in (1, 36, 37, 100):
        other = channel_statistics(ds, ["p"], samples_per_read=block)
        np.testing.assert_allclose(other.std, stats.std, rtol=1e-10)
    assert stats.as_dict()["p"]["count"] == values.size


def test_dask_backed_multi_file_datasets_stream_through_workers(tmp_path):
    paths = [data.write(trajectories(n=3), tmp_path / f"part{i}.nc") for i in range(2)]
    ds = data.open(paths)  # two files: dask-backed, joined along sample
    assert ds["w"].chunks is not None and ds.sizes["sample"] == 6
    windows = TrajectoryWindows(ds, variables=["w"], history=1, horizon=1)
    loader = DataLoader(windows, batch_size=5, num_workers=2)
    first = torch.cat([past[:, 0, 0, 0, 0] for past, _ in loader])
    # Sample 4 is the second file's sample 1 (values restart at 1000 there); 4 windows per trajectory.
    assert first.tolist()[16:20] == [1000.0, 1100.0, 1200.0, 1300.0] and len(first) == 24


def test_lagged_pairs_are_the_time_pairs_of_each_trajectory_and_read_only_their_frames():
    values = trajectories(n=4, t=6)["w"].values
    counter = CountingArray(values)
    ds = xr.Dataset({"w": xr.Variable(("sample", "time", "y", "x"), indexing.LazilyIndexedArray(counter))},
                    coords={"time": np.arange(6) * 0.5})
    pairs = OperatorPairs(ds, inputs=["w"], outputs=["w"], lag=2)
    assert len(pairs) == 4 * 4  # times 0..3 pair with 2..5
    x, y = pairs[1 * 4 + 3]  # sample 1, input time 3, output time 5
    assert int(x[0, 0, 0]) == 1300 and int(y[0, 0, 0]) == 1500
    frame = values[0, 0].size
    assert counter.read == 3 * frame  # times 3..5 of one sample, not the whole trajectory
    batch = pairs.__getitems__([0, 1, 9])  # samples 0 (times 0..3) and 2 (time 1..3): two reads
    assert [(int(a[0, 0, 0]), int(b[0, 0, 0])) for a, b in batch] == [(0, 200), (100, 300), (2100, 2300)]
    with pytest.raises(DataError, match=r"lag 6 needs more than 6 time steps, file has 6"):
        OperatorPairs(ds, inputs=["w"], outputs=["w"], lag=6)


def test_items_carry_their_times_and_the_sample_parameters():
    import pandas as pd

    ds = trajectories(n=3, t=5).assign_coords(viscosity=("sample", [1e-3, 2e-3, 5e-3]))
    ds.attrs["forcing_amplitude"] = 0.1
    windows = TrajectoryWindows(ds, variables=["w"], history=2, horizon=1, lag=2, times=True,
                                parameters=["viscosity", "forcing_amplitude"])
    past, future, times, params = windows[2]  # sample 2's only window: times 0, 0.2, 0.4
    assert past.shape == (2, 1, 4, 6) and times.dtype == torch.float64 and params.dtype == torch.float64
    torch.testing.assert_close(times, torch.tensor([0.0, 0.2, 0.4], dtype=torch.float64))
    assert params.tolist() == [5e-3, 0.1]
    x, y, p = OperatorPairs(ds, inputs=["w"], outputs=["v"], parameters=["viscosity"])[1 * 5 + 4]
    assert p.tolist() == [2e-3] and int(x[0, 0, 0]) == 1400
    six_hourly = ds.assign_coords(time=pd.date_range("2020-01-01", periods=5, freq="6h"))
    *_, t, _ = TrajectoryWindows(six_hourly, variables=["w"], history=1, horizon=2, stride=2, times=True,
                                 parameters=["viscosity"])[1]
    assert t.tolist() == [0.0, 21600.0, 43200.0]  # seconds from the window's first frame
    noleap = ds.assign_coords(time=xr.date_range("2001-02-27", periods=5, freq="D", calendar="noleap", use_cftime=True))
    assert TrajectoryWindows(noleap, variables=["w"], history=4, horizon=1, times=True)[0][2][-1] == 4 * 86400.0
    with pytest.raises(DataError, match=r"parameter 'nu' is neither a coordinate along 'sample' nor a scalar "
                                        r"attribute; per-sample coordinates: \['viscosity'\]"):
        OperatorPairs(ds, inputs=["w"], outputs=["v"], parameters=["nu"])


def test_scattered_windows_of_one_long_trajectory_read_only_their_frames():
    values = trajectories(n=1, t=200)["w"].values  # one long trajectory: as sciml.data.open leaves an ERA5 file
    counter = CountingArray(values)
    ds = xr.Dataset({"w": xr.Variable(("sample", "time", "y", "x"), indexing.LazilyIndexedArray(counter))},
                    coords={"time": np.arange(200.0)})
    pairs = OperatorPairs(ds, inputs=["w"], outputs=["w"], lag=1)
    batch = pairs.__getitems__([150, 3, 77, 78, 40])
    assert [int(x[0, 0, 0]) for x, _ in batch] == [15000, 300, 7700, 7800, 4000]  # 100 t for sample 0
    assert [int(y[0, 0, 0]) - int(x[0, 0, 0]) for x, y in batch] == [100] * 5
    frame = values[0, 0].size
    assert counter.read == 9 * frame  # 150-151, 3-4, 77-79 (two pairs that touch), 40-41: not the 148 between


def test_statistics_of_one_long_trajectory_read_it_in_time_blocks():
    rng = np.random.default_rng(1)
    values = rng.standard_normal((1, 300, 64, 128))  # 19.7 MB in one sample: more than one 16 MiB read
    counter = CountingArray(values)
    ds = xr.Dataset({"p": xr.Variable(("sample", "time", "y", "x"), indexing.LazilyIndexedArray(counter))})
    reads = []
    original = counter._raw
    counter._raw = lambda key: reads.append(key) or original(key)
    stats = channel_statistics(ds, ["p"])
    assert len(reads) == 2 and counter.read == values.size  # two time blocks, every value once
    np.testing.assert_allclose(stats.std[0], values.std(), rtol=1e-12)
    assert abs(stats.mean[0] - values.mean()) < 1e-12
