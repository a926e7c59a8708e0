"""`sciml train --curriculum`, `sciml forecast` and `sciml score` end to end on shallow water on the sphere."""

import json

import numpy as np
import pytest
import xarray as xr

from sciml.cli import main

VARIABLES = ["height", "eastward_velocity", "northward_velocity"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("forecast_cli")
    data = root / "swe.nc"
    assert main(["generate", "swe-sphere", "--n", "6", "--resolution", "16", "--seed", "0", "--initial-condition",
                 "random", "--times", *map(str, range(0, 9)), "--out", str(data), "--no-progress"]) == 0
    assert main(["train", "--data", str(data), "--inputs", *VARIABLES, "--outputs", *VARIABLES, "--lag", "1",
                 "--model", "sfno", "--option", "hidden_channels=8", "--curriculum", "2", "--epochs", "2",
                 "--val-fraction", "0", "--device", "cpu", "--no-progress", "--out", str(root / "run")]) == 0
    return root, data


def test_train_with_a_curriculum_records_every_stage(run):
    root, _ = run
    records = [json.loads(line) for line in (root / "run" / "history.jsonl").read_text().splitlines()]
    assert [r["rollout_steps"] for r in records] == [1, 1, 2]
    manifest = json.loads((root / "run" / "manifest.json").read_text())
    assert manifest["provenance"]["forecast_training"]["curriculum"] == [2]


def test_forecast_an_ensemble_and_score_it_against_the_solver(run, capsys):
    root, data = run
    out = root / "fc.nc"
    assert main(["forecast", str(root / "run"), "--init", str(data), "--isel", "time=0", "--steps", "4",
                 "--members", "3", "--perturbation-scale", "0.01", "--device", "cpu", "--out", str(out),
                 "--no-progress"]) == 0
    fc = xr.open_dataset(out)
    assert fc["height"].dims == ("sample", "lead_time", "member", "lat", "lon")
    np.testing.assert_allclose(fc["valid_time"].values, [1.0, 2.0, 3.0, 4.0])
    scores_path = root / "scores.nc"
    assert main(["score", str(out), "--truth", str(data), "--out", str(scores_path)]) == 0
    printed = capsys.readouterr().out
    assert "rmse height: first lead" in printed and "spread_skill" in printed
    scores = xr.open_dataset(scores_path)
    for metric in ("rmse", "mae", "acc", "crps", "spread_skill", "spectrum_ratio"):
        assert f"{metric}_height" in scores, metric
    assert scores["rmse_height"].dims == ("lead_time",)
    # the fair CRPS of an ensemble is at most its members' mean absolute error, and positive
    assert (scores["crps_height"] > 0).all()
    png = (root / "scores_scorecard.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["score", str(out), "--truth", str(data), "--metrics", "rmse,bogus", "--out", str(root / "s2.nc")]) == 2


def test_forecast_refuses_bad_input_in_one_line(run, capsys):
    root, data = run
    code = main(["forecast", str(root / "run"), "--init", str(data), "--isel", "time=0", "--horizon", "1.5",
                 "--out", str(root / "bad.nc"), "--device", "cpu", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a whole number of the model's steps" in err[0]
    assert main(["forecast", str(root / "run"), "--init", str(data), "--steps", "2", "--members", "2",
                 "--out", str(root / "bad.nc"), "--device", "cpu", "--no-progress"]) == 2
    assert "would be identical" in capsys.readouterr().err


def test_train_with_history_records_it_and_forecasts_from_the_frames_before_the_init(run, tmp_path, capsys):
    _, data = run
    run_dir = tmp_path / "hist"
    assert main(["train", "--data", str(data), "--inputs", *VARIABLES, "--outputs", *VARIABLES, "--lag", "1",
                 "--history", "2", "--model", "sfno", "--option", "hidden_channels=8", "--epochs", "1",
                 "--val-fraction", "0", "--device", "cpu", "--no-progress", "--out", str(run_dir)]) == 0
    assert json.loads((run_dir / "manifest.json").read_text())["history"] == 2
    out = tmp_path / "fc.nc"
    assert main(["forecast", str(run_dir), "--init", str(data), "--isel", "time=[1,2]", "--steps", "3",
                 "--device", "cpu", "--out", str(out), "--no-progress"]) == 0
    fc = xr.open_dataset(out)
    np.testing.assert_allclose(fc["time"].values, [2.0])  # the last of the init frames starts the forecast
    assert fc["height"].sizes["lead_time"] == 3 and np.isfinite(fc["height"].values).all()
    capsys.readouterr()
    assert main(["train", "--data", str(data), "--inputs", *VARIABLES, "--outputs", *VARIABLES, "--history", "2",
                 "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--history 2" in err[0] and "--lag" in err[0]
