"""``sciml bench swe``: the shallow-water problem's solver ladder against its reference, its spherical error, and a
miniature end-to-end benchmark with an SFNO surrogate."""

import json

import pytest
import torch

from sciml.bench.problems import PROBLEMS, SWE, get_problem
from sciml.errors import ConfigError

CPU = torch.device("cpu")
TEST = dict(seed=0, first_sample=12, device=CPU, dtype=torch.float64)


@pytest.fixture(scope="module")
def problem_and_reference():
    torch.set_num_threads(1)
    problem = SWE(lead_time=6.0)
    reference = problem.solve(problem.inputs(2, 48, **TEST), reference=True)  # (2, 3, 48, 96)
    return problem, reference


def test_swe_is_registered_with_its_parameters():
    assert PROBLEMS["swe"] is SWE
    problem = get_problem("swe", lead_time=24.0)
    assert problem.lead_time == 24.0 and problem.model == "sfno" and problem.grid(16).shape == (16, 32)
    with pytest.raises(ConfigError, match="whole number of hours"):
        get_problem("swe", lead_time=1.5)
    with pytest.raises(ConfigError, match="has no parameter"):
        get_problem("swe", viscosity=1e-3)


def test_finest_rung_agrees_with_the_reference_and_errors_fall_with_resolution(problem_and_reference):
    problem, reference = problem_and_reference
    assert reference.shape == (2, 3, 48, 96) and reference.dtype == torch.float64
    errors = {r: problem.error(problem.solve(problem.inputs(2, r, **TEST)), reference) for r in (12, 16, 24, 32)}
    # Measured 6 h after a random balanced flow: 32x64 is within 2.5e-3 of the 64x128 reference (recipe step / 2).
    assert float(errors[32].max()) < 5e-3
    means = [float(errors[r].mean()) for r in (12, 16, 24, 32)]
    assert all(a > b for a, b in zip(means, means[1:])), means
    assert means[-1] < means[0] / 10  # 12 -> 32 latitudes: the error drops more than tenfold (0.07 -> 2e-3)


def test_error_is_the_area_weighted_relative_error_of_the_departures_from_rest(problem_and_reference):
    problem, reference = problem_and_reference
    assert torch.equal(problem.error(reference, reference), torch.zeros(2, dtype=torch.float64))
    rest = torch.tensor([problem.eq.mean_depth, 0.0, 0.0], dtype=torch.float64).reshape(1, 3, 1, 1)
    # 10% of every variable's departure from rest added: each variable's error is exactly 0.1, so is their mean
    # (the height's own relative error with its 10 km mean would be ~1e-3).
    off = reference + 0.1 * (reference - rest)
    assert problem.error(off, reference) == pytest.approx([0.1, 0.1], rel=1e-9)
    # The interpolant: the same continuous initial flow sampled at 32 and at 48 latitudes agrees on the 48 grid.
    fields = {r: problem.surrogate_inputs(2, r, **TEST) for r in (32, 48)}
    assert fields[32].shape == (2, 3, 32, 64)
    assert float(problem.error(fields[32], fields[48]).max()) < 2e-3


def test_tiny_benchmark_end_to_end_writes_the_matched_accuracy(tmp_path):
    from sciml.bench import run_benchmark

    results = run_benchmark(
        "swe", quick=True, out=tmp_path, device="cpu", progress=False, n_train=2, n_test=2,
        solver_resolutions=(8, 12, 16), reference_resolution=24, train_resolution=16, surrogate_resolutions=(16,),
        repeats=2, warmup=0, problem_options={"lead_time": 6.0},
        **{"train.epochs": 3, "model.hidden_channels": 4, "model.n_layers": 1})
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["problem"] == "swe" and on_disk["surrogate"]["model"] == "sfno"
    assert on_disk["surrogate"]["model_options"]["lmax"] == 8  # the most a 16 x 32 equiangular grid resolves
    assert "matched_accuracy" in on_disk and on_disk["matched_accuracy"]["status"] in (
        "interpolated", "less_accurate_than_solver", "more_accurate_than_solver")
    errors = [p["rel_l2"] for p in on_disk["solver_curve"]]
    assert [p["resolution"] for p in on_disk["solver_curve"]] == [8, 12, 16]
    assert errors[0] > errors[1] > errors[2] > 0
    assert 0 < on_disk["surrogate_rel_l2"] < 10 and on_disk["verdict"].startswith("swe:")
    assert (tmp_path / "results.md").read_text().count("SFNO") >= 1 and (tmp_path / "cost_error.png").exists()
    assert on_disk["surrogate_rel_l2"] == results["surrogate_rel_l2"]
