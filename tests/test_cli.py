"""The command line and the README's main job, end to end on tiny sizes."""

import json
import subprocess
import sys

import pytest


def run_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "sciml", *args], capture_output=True, text=True, timeout=600, **kwargs)


def data_samples(path):
    from sciml import data

    with data.open(path) as ds:
        return ds.sizes["sample"]


def test_import_is_light():
    code = ("import sys, sciml; heavy = [m for m in ('xarray', 'matplotlib', 'neuralop', 'torch_harmonics', 'pandas') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_quickstart_end_to_end_writes_the_report(tmp_path):
    out = tmp_path / "qs"
    result = run_cli("quickstart", "--out", str(out), "--resolution", "16", "--n-train", "24", "--n-test", "4",
                     "--epochs", "8", "--eval-resolutions", "16,32", "--no-progress", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("rel_l2_train_res", "rel_l2_2x_res", "train_resolution", "surrogate_seconds_per_sample",
                "solver_seconds_per_sample", "device"):
        assert key in metrics
    assert metrics["train_resolution"] == 16 and metrics["device"] == "cpu"
    # A 4-second model is crude but must beat knowing nothing (relative error 1) and be finite.
    assert 0 < metrics["rel_l2_train_res"] < 0.9 and 0 < metrics["rel_l2_2x_res"] < 0.9
    assert metrics["solver_seconds_per_sample"] > 0 and metrics["surrogate_seconds_per_sample"] > 0
    for name in ("report.md", "fields_16.png", "fields_32.png", "error_vs_resolution.png", "ns2d_train.nc",
                 "surrogate/manifest.json", "surrogate/weights.pt"):
        assert (out / name).is_file(), name
    assert "zero-shot" in (out / "report.md").read_text()
    assert not [p for p in out.rglob(".*") if p.is_file()]  # no temporary files left
    # A re-run into the same directory replaces the run's own data files (and nothing else's).
    result = run_cli("quickstart", "--out", str(out), "--resolution", "16", "--n-train", "10", "--n-test", "1",
                     "--epochs", "1", "--eval-resolutions", "16", "--no-progress", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert (out / "report.md").is_file() and data_samples(out / "ns2d_train.nc") == 10


def test_unwritable_output_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli("quickstart", "--out", str(blocker / "sub"), "--no-progress")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "cannot create the output directory" in result.stderr and str(blocker / "sub") in result.stderr


def test_bad_option_is_a_one_line_error(tmp_path):
    result = run_cli("quickstart", "--out", str(tmp_path), "--resolution", "4", "--no-progress")
    assert result.returncode == 2 and "resolution must be >= 16" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_generate_and_predict_refuse_an_existing_out_unless_overwrite(tmp_path):
    out = tmp_path / "data.nc"
    out.write_bytes(b"hours of earlier work")
    args = ("generate", "ns2d", "--n", "1", "--resolution", "16", "--seed", "0", "--times", "0", "0.1", "--out", str(out),
            "--no-progress")
    result = run_cli(*args)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0  # refused before solving anything
    assert f"{out}: file exists" in result.stderr and "--overwrite" in result.stderr
    assert out.read_bytes() == b"hours of earlier work"
    # predict checks --out before it loads the run or the data
    result = run_cli("predict", str(tmp_path / "no-run"), "--data", str(out), "--out", str(out))
    assert result.returncode == 2 and f"{out}: file exists" in result.stderr
    assert out.read_bytes() == b"hours of earlier work"
    result = run_cli(*args, "--overwrite")
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:4] == b"\x89HDF"
    assert not [p for p in tmp_path.iterdir() if p.name != "data.nc"]  # no temporary left behind


def test_the_training_options_come_from_the_configs_not_copies():
    from sciml.cli import _parser
    from sciml.quickstart import QuickstartConfig
    from sciml.train import TrainConfig

    commands = _parser()._subparsers._group_actions[0].choices
    train_help = " ".join(commands["train"].format_help().split())
    for option, value in (("--weight-decay", TrainConfig().weight_decay), ("--epochs", TrainConfig().epochs),
                          ("--precision", TrainConfig().precision), ("--workers", TrainConfig().workers)):
        assert f"{option}" in train_help and f"(default {value})" in train_help, option
    quick_help = " ".join(commands["quickstart"].format_help().split())
    assert f"(default {QuickstartConfig().train.epochs})" in quick_help and "--max-time" in quick_help


def test_the_report_says_when_a_budget_cut_training_short():
    from dataclasses import replace

    from sciml.quickstart import QuickstartConfig, _training_note, _verdict

    config = QuickstartConfig()
    budget = replace(config, train=replace(config.train, max_time=150.0))
    note = _training_note({"stop_reason": "max_time", "epochs": 2, "val_loss_trend_per_epoch": -0.2}, budget)
    assert note.startswith("**Training was cut short** by the 150 s wall-clock budget after 2 of 40 epochs")
    assert "still falling 20.0% per epoch" in note
    assert "levelled off" in _training_note({"stop_reason": "epochs", "epochs": 40, "val_loss_trend_per_epoch": -0.001},
                                            config)
    crude = {"rel_l2_train_res": 0.49, "persistence_rel_l2": 0.72, "solver_seconds_per_sample": 1.0,
             "surrogate_seconds_per_sample": 0.1, "solver_rel_l2_vs_finest_by_resolution": {}}
    assert _verdict(crude, 64).startswith("**Do not use this surrogate**")
