"""The sphere end to end: swe-sphere data -> `sciml train --model sfno` -> area-weighted evaluation, zero-shot
from 32x64 to 64x128 against solver solutions computed at 64x128 from the same initial conditions."""

import json

import numpy as np
import pytest
import torch

from sciml import Grid, Surrogate, data
from sciml.cli import main
from sciml.metrics import rel_l2

pytestmark = pytest.mark.slow  # trains a surrogate end to end

VARIABLES = ["height", "eastward_velocity", "northward_velocity"]
GENERATE = ["generate", "swe-sphere", "--seed", "0", "--initial-condition", "random", "--no-progress"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sphere")
    files = {"train": tmp / "train.nc", "test32": tmp / "test32.nc", "test64": tmp / "test64.nc"}
    assert main([*GENERATE, "--n", "12", "--resolution", "32", "--times", "0", "6", "12", "18", "24",
                 "--out", str(files["train"])]) == 0
    for name, resolution in (("test32", "32"), ("test64", "64")):  # the same initial conditions on both grids
        assert main([*GENERATE, "--n", "4", "--resolution", resolution, "--first-sample", "100", "--times", "0", "6",
                     "--out", str(files[name])]) == 0
    out = tmp / "run"
    assert main(["train", "--data", str(files["train"]), "--inputs", *VARIABLES, "--outputs", *VARIABLES, "--lag", "1",
                 "--model", "sfno", "--option", "hidden_channels=16", "--epochs", "30", "--batch-size", "8",
                 "--lr", "3e-3", "--device", "cpu", "--val-fraction", "0.2", "--out", str(out), "--no-progress"]) == 0
    return tmp, out, files


def _persistence(ds, grid):
    """Relative L2 (area-weighted) of persisting each variable over one step."""
    return {v: float(rel_l2(torch.from_numpy(ds[v].values[:, :1]).double(), torch.from_numpy(ds[v].values[:, 1:]).double(),
                            grid=grid).mean()) for v in VARIABLES}


def test_sfno_trains_on_the_sphere_and_transfers_zero_shot_to_a_finer_grid(run):
    tmp, out, files = run
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == "sfno" and manifest["model_options"]["grid"] == "equiangular"
    assert manifest["grid"] == {"kind": "latlon", "shape": [32, 64], "lengths": [np.pi, 2 * np.pi], "dims": ["lat", "lon"],
                                "nodes": "equiangular"}
    assert manifest["lead_time"] == {"kind": "float", "value": 6.0, "units": "hours"}
    errors = {}
    for name in ("test32", "test64"):
        report = tmp / f"{name}.json"
        assert main(["evaluate", str(out), "--data", str(files[name]), "--json", str(report), "--device", "cpu"]) == 0
        errors[name] = json.loads(report.read_text())
        assert errors[name]["grid"] == "latlon"
    assert errors["test64"]["resolution"] == [64, 128] and errors["test64"]["train_resolution"] == [32, 64]
    persistence = _persistence(data.open(files["test32"]), Grid.latlon(32, 64))
    # Winds: measured 0.237 / 0.231 against persistence 0.381 / 0.585. (The height's relative error, 0.023 against
    # persistence's 0.011, is dominated by the 10 km mean depth; this short run does not beat persistence there.)
    for v in ("eastward_velocity", "northward_velocity"):
        assert errors["test32"]["rel_l2"][v] < 0.85 * persistence[v], (v, errors, persistence)
    for v in VARIABLES:  # zero-shot on the 64x128 truth: as good as on the training grid (measured equal to 1e-3)
        assert errors["test64"]["rel_l2"][v] < 1.1 * errors["test32"]["rel_l2"][v], (v, errors)


def test_sphere_errors_are_area_weighted(run):
    tmp, out, files = run
    surrogate = Surrogate.load(out)
    ds = data.open(files["test32"]).load()
    pred = surrogate.predict(ds.isel(time=[0]))
    true = torch.from_numpy(ds["eastward_velocity"].values[:, 1:]).double()
    guess = torch.from_numpy(pred["eastward_velocity"].values).double()
    weighted = float(rel_l2(guess, true, grid=Grid.latlon(32, 64)).mean())
    result = json.loads((tmp / "test32.json").read_text())
    assert result["rel_l2"]["eastward_velocity"] == pytest.approx(weighted, rel=1e-6)
    assert weighted != pytest.approx(float(rel_l2(guess, true).mean()), rel=1e-3)  # the unweighted value differs
    assert pred["valid_time"].values.tolist() == [6.0] and float(pred["lead_time"]) == 6.0
    assert pred["lead_time"].attrs["units"] == "hours"
