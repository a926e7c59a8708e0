"""Surrogates on a bounded (non-periodic) box: Darcy flow learned at 16 nodes and applied zero-shot at 31.

The data carry ``periodic = "false"`` on their coordinates, so the grid is ``"bounded"``: lengths
``(n - 1) dx``, trapezoid quadrature, and models acting on the even extension (``boundary="reflect"``).
"""

import numpy as np
import pytest
import torch

from sciml import DataError, Grid
from sciml.data import grid_of, stack_fields
from sciml.datasets import generate
from sciml.evaluation import evaluate
from sciml.metrics import rel_l2
from sciml.surrogate import fit_surrogate
from sciml.train import TrainConfig

pytestmark = pytest.mark.slow  # trains surrogates end to end


@pytest.fixture(scope="module")
def darcy():
    torch.set_num_threads(2)
    train = generate("darcy", 160, 16, seed=0, solve_resolution=31, progress=False)
    fine = generate("darcy", 24, 31, seed=1, solve_resolution=61, progress=False)
    coarse = generate("darcy", 24, 16, seed=1, solve_resolution=31, progress=False)
    config = TrainConfig(epochs=12, batch_size=16, lr=5e-3, seed=0, device="cpu", progress=False)
    surrogate, _ = fit_surrogate(train, inputs=["a"], outputs=["pressure"], config=config,
                                 model_options={"n_modes": (12, 12), "hidden_channels": 16, "n_layers": 3})
    return surrogate, coarse, fine


def test_darcy_data_are_on_a_bounded_grid_of_nodes():
    ds = generate("darcy", 1, 16, seed=0, progress=False)
    grid = grid_of(ds)
    assert grid == Grid.bounded(16, 16) and grid.same_domain(grid_of(generate("darcy", 1, 31, seed=0, progress=False)))
    periodic = ds.assign_coords(x=ds["x"].assign_attrs(periodic="true"))
    with pytest.raises(DataError, match="mix periodic and bounded dims"):
        grid_of(periodic)
    with pytest.raises(DataError, match="periodic='maybe' must be 'true' or 'false'"):
        grid_of(ds.assign_coords(x=ds["x"].assign_attrs(periodic="maybe")))


def test_fit_picks_the_reflecting_model_and_learns_darcy_to_a_bound(darcy):
    surrogate, coarse, _ = darcy
    assert surrogate.grid.kind == "bounded" and surrogate.module.network.config.boundary == "reflect"
    pred = surrogate.predict_tensor(stack_fields(coarse, ["a"]), device="cpu")
    error = float(rel_l2(pred, stack_fields(coarse, ["pressure"]), grid=Grid.bounded(16, 16)).mean())
    # Measured 0.103 on CPU with this seed; predicting the training mean pressure field gives 0.199.
    assert error < 0.14, error


def test_zero_shot_on_twice_as_many_intervals_matches_the_fine_solver(darcy):
    surrogate, coarse, fine = darcy
    errors = {}
    for ds in (coarse, fine):
        pred = surrogate.predict(ds)
        np.testing.assert_array_equal(pred["x"].values, ds["x"].values)
        grid = grid_of(ds)
        errors[grid.shape[0]] = float(rel_l2(torch.from_numpy(pred["pressure"].values[:, None]),
                                             stack_fields(ds, ["pressure"]), grid=grid).mean())
    assert errors[31] < 1.3 * errors[16], errors  # measured 0.102 vs 0.103


def test_evaluate_subsamples_the_nodes_of_a_bounded_grid(darcy):
    surrogate, _, fine = darcy
    result = evaluate(surrogate, fine, device="cpu")
    assert list(result["rel_l2_by_resolution"]) == ["16x16", "31x31"]
    # the 16x16 entry is the fine truth on every 2nd node: the same frames as predicting those nodes, with the
    # trapezoidal rule of the 16x16 nodes as the norm
    direct = surrogate.predict(fine.isel(x=slice(None, None, 2), y=slice(None, None, 2)))
    expected = rel_l2(torch.from_numpy(direct["pressure"].values[:, None]).double(),
                      stack_fields(fine.isel(x=slice(None, None, 2), y=slice(None, None, 2)), ["pressure"],
                                   dtype=torch.float64), grid=Grid.bounded(16, 16)).mean()
    assert result["rel_l2_by_resolution"]["16x16"]["pressure"] == pytest.approx(float(expected), rel=1e-6)


def test_a_bounded_surrogate_rejects_periodic_data_of_the_same_size(darcy):
    surrogate, coarse, _ = darcy
    nodes = coarse["x"].values
    periodic = coarse.assign_coords(x=("x", nodes, {}), y=("y", nodes, {}))  # no periodic attr: a periodic box
    with pytest.raises(DataError, match="box domain .* differs from the training bounded domain"):
        surrogate.predict(periodic)
