"""Dataset recipes: deterministic by seed, resolution-consistent, and the `sciml generate` command."""

import shlex
import subprocess
import sys

import numpy as np
import pytest
import torch

from sciml import ConfigError, rel_l2
from sciml import data
from sciml.datasets import generate
from sciml.spectral import spectral_resample


def test_same_seed_same_bytes(tmp_path):
    paths = []
    for i in range(2):
        run_dir = tmp_path / f"run{i}"
        run_dir.mkdir()
        cmd = [sys.executable, "-m", "sciml", "generate", "ns2d", "--n", "3", "--resolution", "16", "--seed", "4",
               "--times", "0", "0.5", "--out", "data.nc", "--no-progress"]
        subprocess.run(cmd, check=True, capture_output=True, cwd=run_dir)
        paths.append(run_dir / "data.nc")
    a, b = (data.open(p).load() for p in paths)
    assert a.identical(b)
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_ns2d_at_twice_the_resolution_is_the_same_flow():
    coarse = generate("ns2d", 3, 64, seed=1, times=[0.0, 1.0], progress=False, dtype=torch.float64)
    fine = generate("ns2d", 3, 128, seed=1, times=[0.0, 1.0], progress=False, dtype=torch.float64)
    truncated = spectral_resample(torch.from_numpy(fine["vorticity"].values), (64, 64))
    error = rel_l2(truncated, torch.from_numpy(coarse["vorticity"].values))
    assert float(error.max()) < 1e-8  # same continuous IC; what differs is the coarse solve's own error
    other_seed = generate("ns2d", 3, 64, seed=2, times=[0.0, 1.0], progress=False, dtype=torch.float64)
    assert float(rel_l2(torch.from_numpy(other_seed["vorticity"].values), torch.from_numpy(coarse["vorticity"].values)).min()) > 0.5


def test_solving_finer_then_truncating_matches_a_direct_solve():
    direct = generate("burgers", 2, 64, seed=0, times=[0.0, 0.5], solve_resolution=1024, progress=False)
    finer = generate("burgers", 2, 64, seed=0, times=[0.0, 0.5], solve_resolution=2048, progress=False)
    np.testing.assert_allclose(direct["u"].values, finer["u"].values, atol=1e-6)


def test_darcy_coefficients_are_one_function_at_every_resolution():
    coarse = generate("darcy", 2, 17, seed=3, progress=False)
    fine = generate("darcy", 2, 33, seed=3, progress=False)
    np.testing.assert_array_equal(coarse["a"].values, fine["a"].values[:, ::2, ::2])
    assert set(np.unique(coarse["a"].values)) == {3.0, 12.0}
    # The pressure on 17 nodes converges towards the 33-node solution at those nodes.
    via_fine = generate("darcy", 2, 17, seed=3, solve_resolution=33, progress=False)
    np.testing.assert_array_equal(via_fine["pressure"].values, fine["pressure"].values[:, ::2, ::2])
    gap = np.abs(coarse["pressure"].values - via_fine["pressure"].values).max()
    assert 0 < gap < 0.1 * np.abs(via_fine["pressure"].values).max()
    log = generate("darcy", 1, 17, seed=3, coefficient_kind="lognormal", progress=False)
    assert float(log["a"].min()) > 0


def test_per_sample_viscosities_are_deterministic_and_chunk_independent():
    whole = generate("burgers", 4, 32, seed=2, viscosity_range=(0.01, 0.1), solve_resolution=256, progress=False)
    tail = generate("burgers", 2, 32, seed=2, first_sample=2, viscosity_range=(0.01, 0.1), solve_resolution=256,
                    progress=False)
    np.testing.assert_array_equal(whole["viscosity"].values[2:], tail["viscosity"].values)
    np.testing.assert_allclose(whole["u"].values[2:], tail["u"].values, atol=1e-12)
    assert np.all((whole["viscosity"].values >= 0.01) & (whole["viscosity"].values <= 0.1))
    assert len(set(whole["viscosity"].values)) == 4


def test_bad_requests_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset 'ns3d'; available: ns2d"):
        generate("ns3d", 1, 16, seed=0)
    with pytest.raises(ConfigError, match="dataset 'darcy' does not take --viscosity"):
        generate("darcy", 1, 17, seed=0, viscosity=1.0)
    for name in ("ns2d", "ns2d-kolmogorov", "burgers"):  # an interpolation must not pass for a solution
        with pytest.raises(ConfigError, match=f"dataset '{name}': solve_resolution 16 is coarser than resolution 32"):
            generate(name, 1, 32, seed=0, solve_resolution=16)
    result = subprocess.run([sys.executable, "-m", "sciml", "generate", "ns2d", "--n", "1", "--resolution", "16",
                             "--seed", "0", "--out", str(tmp_path / "missing" / "x.nc")], capture_output=True, text=True)
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert result.stderr.strip().count("\n") == 0  # failed before solving anything: no progress output


def test_workers_split_at_whole_chunks_and_write_the_bytes_of_one_process(tmp_path):
    from sciml.datasets._common import chunk_ranges

    assert chunk_ranges(3, 1) == [(0, 1), (1, 1), (2, 1)]
    assert chunk_ranges(10, 3) == [(0, 3), (3, 3), (6, 3), (9, 1)]  # one task per chunk (one CFL step each)
    assert chunk_ranges(3, 64) == [(0, 3)]
    argv = ["generate", "ns2d", "--n", "3", "--resolution", "16", "--seed", "4", "--times", "0", "0.1", "--chunk", "1",
            "--workers", "2", "--out", "parts.nc", "--no-progress"]
    subprocess.run([sys.executable, "-m", "sciml", *argv], check=True, capture_output=True, cwd=tmp_path)
    single = generate("ns2d", 3, 16, seed=4, times=[0.0, 0.1], chunk=1, progress=False,
                      command=shlex.join(["sciml", *argv]))
    data.write(single, tmp_path / "single.nc")
    assert (tmp_path / "parts.nc").read_bytes() == (tmp_path / "single.nc").read_bytes()
    with pytest.raises(ConfigError, match="dataset 'swe-sphere' cannot be split across workers"):
        generate("swe-sphere", 2, 8, seed=0, workers=2)
    with pytest.raises(ConfigError, match="workers must be an integer >= 1"):
        generate("ns2d", 2, 8, seed=0, workers=0)
    with pytest.raises(ConfigError, match="n must be an integer >= 1"):  # checked before any process is spawned
        generate("ns2d", 0, 8, seed=0, workers=2)


def test_falsy_options_are_checked_not_taken_for_the_default():
    for name, option in (("ns2d", "dt"), ("swe-sphere", "dt")):
        for bad in (0, -0.1, float("nan"), float("inf")):
            with pytest.raises(ConfigError, match=f"dataset '{name}': dt must be a positive finite number"):
                generate(name, 1, 16, seed=0, progress=False, **{option: bad})
    for name in ("ns2d", "ns2d-kolmogorov", "burgers"):
        with pytest.raises(ConfigError, match=f"dataset '{name}': solve_resolution 0 is coarser than resolution 16"):
            generate(name, 1, 16, seed=0, solve_resolution=0, progress=False)
        for workers in (1, 2):
            for bad in (0, -1, 1.5):
                with pytest.raises(ConfigError, match=rf"dataset '{name}': chunk must be an integer >= 1, got {bad}"):
                    generate(name, 2, 16, seed=0, chunk=bad, workers=workers, progress=False)


def test_viscosity_and_a_viscosity_range_together_are_refused():
    with pytest.raises(ConfigError, match=r"dataset 'burgers': viscosity=0.5 and viscosity_range=\(0.01, 0.1\) are both"):
        generate("burgers", 1, 16, seed=0, viscosity=0.5, viscosity_range=(0.01, 0.1), progress=False)
    fixed = generate("burgers", 1, 16, seed=0, times=[0.0, 0.01], solve_resolution=64, progress=False)
    assert fixed["viscosity"].values.tolist() == [0.1]  # the default


def test_negative_seed_or_first_sample_and_unusable_devices_are_named(monkeypatch):
    for options in ({"seed": -1}, {"seed": 0, "first_sample": -2}):
        key = "first_sample" if "first_sample" in options else "seed"
        for name in ("ns2d", "darcy", "burgers"):
            with pytest.raises(ConfigError, match=f"^{key} must be an integer >= 0, got -"):
                generate(name, 1, 17, progress=False, **options)
    with pytest.raises(ConfigError, match="device 'gpu' is not a torch device"):
        generate("ns2d", 1, 16, seed=0, device="gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for workers in (1, 2):
        with pytest.raises(ConfigError, match="device 'cuda': CUDA is not available here"):
            generate("ns2d", 2, 16, seed=0, device="cuda", workers=workers)


def test_kolmogorov_flow_without_viscosity_or_drag_is_refused():
    with pytest.raises(ConfigError, match="dataset 'ns2d-kolmogorov': viscosity=0 and drag=0: .* no steady state"):
        generate("ns2d-kolmogorov", 1, 16, seed=0, viscosity=0, drag=0, progress=False)


def test_dt_records_the_step_of_every_chunk(tmp_path):
    from sciml.solvers.burgers import Burgers1D, stable_dt

    options = dict(seed=4, times=[0.0, 0.05], solve_resolution=64, progress=False)
    ds = generate("burgers", 3, 32, chunk=1, **options)
    u0 = torch.from_numpy(generate("burgers", 3, 64, **{**options, "times": [0.0]})["u"].values[:, 0])
    steps = [stable_dt(Burgers1D(viscosity=0.1), u0[i:i + 1]) for i in range(3)]
    assert len(set(steps)) == 3  # the chunks really used different steps
    assert list(ds.attrs["dt"]) == steps and ds.attrs["chunk"] == 1
    whole = generate("burgers", 3, 32, chunk=3, **options)
    assert whole.attrs["dt"] == stable_dt(Burgers1D(viscosity=0.1), u0) and "chunk" not in whole.attrs
    back = data.open(data.write(ds, tmp_path / "steps.nc"))
    assert back.attrs["dt"].tolist() == steps and back.attrs["chunk"] == 1
    # Split over workers (parts of 1 and 2 chunks): the same per-chunk steps, the same bytes.
    parts = generate("burgers", 3, 32, chunk=1, workers=2, **options)
    assert list(parts.attrs["dt"]) == steps and list(parts.attrs) == list(ds.attrs)
    data.write(parts, tmp_path / "parts.nc")
    assert (tmp_path / "parts.nc").read_bytes() == (tmp_path / "steps.nc").read_bytes()


def test_a_result_too_large_for_memory_is_refused_after_the_first_chunk(monkeypatch):
    from sciml.datasets import _common

    solved = []
    original = _common.check_memory
    monkeypatch.setattr(_common, "_available_bytes", lambda: 10_000)  # bytes: far less than 4 trajectories
    monkeypatch.setattr(_common, "check_memory", lambda *a: (solved.append(a[1]), original(*a)))
    with pytest.raises(ConfigError, match=r"dataset 'ns2d': 4 samples need about .* GiB of memory .* in parts"):
        generate("ns2d", 4, 16, seed=0, times=[0.0, 0.1], chunk=1, progress=False)
    assert solved == [1]  # one chunk solved, not four
