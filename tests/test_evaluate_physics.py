"""evaluate warns, one line per difference, when the file's physics is not the training data's."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from sciml._physics import physics_mismatches, physics_record
from sciml.data.cf import trajectory_dataset
from sciml.evaluation import evaluate
from sciml.grids import Grid
from sciml.surrogate import NormalizedOperator, Surrogate

NS2D = {"equation": "navier_stokes_2d_vorticity", "viscosity": 1e-3, "forcing": "li2021", "domain_length": 1.0,
        "drag": 0.0, "dealiasing": "2/3", "scheme": "cn-heun", "dt": 0.01, "seed": 0}


def _dataset(attrs, n=16, samples=2, times=(0.0, 1.0, 2.0), viscosity=None, lengths=1.0):
    grid = Grid.box(n, n, lengths=lengths)
    x = torch.from_numpy(grid.coords()["x"])
    w0 = torch.sin(2 * torch.pi * x / lengths)[None, :].expand(n, n)  # (y, x)
    fields = torch.stack([torch.stack([torch.roll(w0, k, -1) * (1 + s) for k in range(len(times))]) for s in range(samples)])
    ds = trajectory_dataset({"vorticity": fields.float()}, times=list(times), coords=grid.coords(), attrs=attrs)
    if viscosity is not None:
        ds = ds.assign_coords(viscosity=("sample", list(viscosity)))
    return ds


class Roll(nn.Module):
    """The exact one-step map of the test data: a shift by one grid cell along x."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, x):  # (batch, channel, y, x)
        return torch.roll(x, 1, -1) + 0 * self.unused


def surrogate_for(train, **provenance):
    module = NormalizedOperator(Roll(), 1, 1)  # identity normalisation: the module is the exact map
    return Surrogate(module=module, inputs=["vorticity"], outputs=["vorticity"], grid=Grid.box(16, 16), units={"vorticity": "1"},
                     model="roll", model_options={}, lead_time=1.0, time_units="1", origin={"y": 0.0, "x": 0.0},
                     provenance={"physics": physics_record(train), "epochs_run": 20, "loss_trend_per_epoch": -0.001,
                                 **provenance})


def test_matching_attributes_give_no_mismatch_even_through_float32():
    recorded = physics_record(_dataset(NS2D))
    # the viscosity read back from a float32 NetCDF attribute, another scheme and time step: same physics
    other = {**NS2D, "viscosity": np.float32(1e-3), "scheme": "etdrk4", "dt": 0.005, "seed": 7}
    assert physics_mismatches(recorded, _dataset(other)) == []


def test_a_different_forcing_is_one_line_with_the_name_and_both_values():
    recorded = physics_record(_dataset(NS2D))
    lines = physics_mismatches(recorded, _dataset({**NS2D, "forcing": "kolmogorov"}))
    assert lines == ["forcing: training data 'li2021', this file 'kolmogorov'"]


def test_the_kolmogorov_file_differs_in_forcing_its_wavenumber_and_drag():
    recorded = physics_record(_dataset(NS2D))
    kolmogorov = {**NS2D, "forcing": "kolmogorov", "drag": 0.1, "forcing_wavenumber": 4, "scheme": "etdrk4"}
    lines = physics_mismatches(recorded, _dataset(kolmogorov))
    assert lines == ["forcing: training data 'li2021', this file 'kolmogorov'",
                     "forcing_wavenumber: not recorded in the training data, this file 4",
                     "drag: training data 0, this file 0.1"]


def test_viscosity_outside_the_trained_range_counts_inside_does_not():
    attrs = {"equation": "burgers_1d_viscous", "domain_length": 1.0}
    recorded = physics_record(_dataset(attrs, samples=3, viscosity=[0.01, 0.1, 0.05]))
    assert recorded["viscosity_range"] == [0.01, 0.1]
    assert physics_mismatches(recorded, _dataset(attrs, viscosity=[0.02, 0.1 * (1 + 1e-9)])) == []
    (line,) = physics_mismatches(recorded, _dataset(attrs, viscosity=[0.05, 0.2]))
    assert line == "viscosity: this file 0.05 to 0.2, outside the training data's 0.01 to 0.1"
    (line,) = physics_mismatches(physics_record(_dataset(NS2D)), _dataset({**NS2D, "viscosity": 1e-4}))
    assert line == "viscosity: this file 0.0001, not the training data's 0.001"


def test_an_attribute_the_file_lacks_and_another_domain_are_differences():
    recorded = physics_record(_dataset(NS2D))
    lines = physics_mismatches(recorded, _dataset({k: v for k, v in NS2D.items() if k != "forcing"}, lengths=2 * np.pi))
    assert lines == ["forcing: training data 'li2021', not recorded in this file",
                     "domain: training data a box of lengths [1, 1], this file a box of lengths [6.28319, 6.28319]"]


def test_evaluate_warns_once_per_difference_and_lists_them_in_the_json(tmp_path):
    surrogate = surrogate_for(_dataset(NS2D))
    kolmogorov = _dataset({**NS2D, "forcing": "kolmogorov", "drag": 0.1, "forcing_wavenumber": 4})
    with pytest.warns(UserWarning) as caught:
        result = evaluate(surrogate, kolmogorov, out_dir=tmp_path)
    expected = ["physics differs from the training data: forcing: training data 'li2021', this file 'kolmogorov'",
                "physics differs from the training data: forcing_wavenumber: not recorded in the training data, this file 4",
                "physics differs from the training data: drag: training data 0, this file 0.1"]
    assert [str(w.message) for w in caught] == expected
    assert result["warnings"] == expected
    assert json.loads((tmp_path / "evaluation.json").read_text())["warnings"] == expected
    assert result["rel_l2"]["vorticity"] < 1e-6  # the map is exact: physics warnings are not error warnings


def test_evaluate_on_the_training_physics_is_silent():
    surrogate = surrogate_for(_dataset(NS2D))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = evaluate(surrogate, _dataset({**NS2D, "seed": 3}))
    assert result["warnings"] == []


def test_evaluate_warns_about_a_surrogate_that_learned_nothing():
    class Zero(Roll):
        def forward(self, x):
            return 0 * x + 0 * self.unused

    surrogate = surrogate_for(_dataset(NS2D), loss_trend_per_epoch=-0.2)
    surrogate.module = NormalizedOperator(Zero(), 1, 1)
    with pytest.warns(UserWarning):
        result = evaluate(surrogate, _dataset(NS2D))
    assert result["rel_l2"]["vorticity"] == pytest.approx(1.0)
    assert len(result["warnings"]) == 2
    # persistence, 2 sin(pi / 16) = 0.390 for a one-cell shift of sin(2 pi x), is the better baseline
    assert f"relative L2 error 1 is no better than persistence ({2 * np.sin(np.pi / 16):.3g}, the input frame" in result["warnings"][0]
    assert "still falling 20.0% per epoch" in result["warnings"][1]
