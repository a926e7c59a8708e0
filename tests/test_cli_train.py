"""sciml train / evaluate / predict: the thin CLI over fit_surrogate, evaluate and Surrogate.predict."""

import json

import numpy as np
import pytest
import torch

from sciml import Surrogate, data
from sciml.cli import main

pytestmark = pytest.mark.slow  # trains surrogates end to end


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    train, fine = tmp / "train.nc", tmp / "fine.nc"
    common = ["--seed", "0", "--times", "0", "0.5", "1.0", "--no-progress"]
    assert main(["generate", "ns2d", "--n", "20", "--resolution", "32", "--out", str(train), *common]) == 0
    assert main(["generate", "ns2d", "--n", "4", "--resolution", "64", "--first-sample", "100", "--out", str(fine), *common]) == 0
    out = tmp / "run"
    code = main(["train", "--data", str(train), "--inputs", "vorticity", "--outputs", "vorticity", "--lag", "1",
                 "--option", "n_modes=[8,8]", "--option", "hidden_channels=8", "--epochs", "3", "--batch-size", "8",
                 "--device", "cpu", "--val-fraction", "0.2", "--out", str(out), "--no-progress"])
    assert code == 0
    return tmp, out, train, fine


def test_train_saves_a_loadable_run_with_history_and_provenance(run):
    _, out, train, _ = run
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model_options"]["n_modes"] == [8, 8] and manifest["model"] == "fno"
    assert manifest["lead_time"] == {"kind": "float", "value": pytest.approx(0.5), "units": "1"}
    assert manifest["provenance"]["data_sha256"] == data.io.file_sha256(train)
    assert manifest["provenance"]["command"].startswith("sciml train --data")
    assert set(manifest["provenance"]["normalisation"]["vorticity"]) == {"mean", "std", "min", "max", "count"}
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert len(history) == 3 and all("val_loss" in h for h in history)


def test_evaluate_reports_rel_l2_per_variable_at_the_file_resolution(run, capsys):
    tmp, out, _, fine = run
    report = tmp / "eval.json"
    assert main(["evaluate", str(out), "--data", str(fine), "--json", str(report), "--device", "cpu"]) == 0
    result = json.loads(report.read_text())
    assert result["resolution"] == [64, 64] and result["train_resolution"] == [32, 32]
    # Independent check: predict each frame, compare with the frame one lead time later.
    surrogate, ds = Surrogate.load(out), data.open(fine).load()
    pred = surrogate.predict(ds.isel(time=[0, 1]), device="cpu")["vorticity"].values
    true = ds["vorticity"].values[:, 1:]
    expected = np.mean(np.sqrt(((pred - true) ** 2).sum(axis=(2, 3)) / (true**2).sum(axis=(2, 3))))
    assert result["rel_l2"]["vorticity"] == pytest.approx(expected, rel=1e-5)
    assert list(result["rel_l2_by_resolution"]) == ["16x16", "32x32", "64x64"]
    figures = out / "evaluation-fine"
    assert (figures / "error_vs_resolution.png").stat().st_size > 0 and (figures / "fields.png").stat().st_size > 0
    assert "relative L2 at 64x64: vorticity" in capsys.readouterr().out


def test_predict_writes_cf_netcdf_with_a_rollout(run):
    tmp, out, _, fine = run
    pred_path = tmp / "pred.nc"
    assert main(["predict", str(out), "--data", str(fine), "--steps", "2", "--out", str(pred_path), "--device", "cpu"]) == 0
    pred = data.open(pred_path)
    assert pred["vorticity"].dims == ("sample", "time", "lead_time", "y", "x")
    assert pred.sizes["lead_time"] == 2 and pred.sizes["x"] == 64
    assert "predicted by sciml" in pred.attrs["history"]


def test_train_resumes_from_its_checkpoints(run, tmp_path):
    _, _, train, _ = run
    common = ["train", "--data", str(train), "--inputs", "vorticity", "--outputs", "vorticity", "--lag", "1",
              "--option", "n_modes=[8,8]", "--option", "hidden_channels=8", "--epochs", "2", "--batch-size", "8",
              "--device", "cpu", "--checkpoint-dir", str(tmp_path / "ckpt"), "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "first")]) == 0
    # A finished run resumes to the same model without training again.
    assert main([*common, "--resume", "--out", str(tmp_path / "again")]) == 0
    first, again = (Surrogate.load(tmp_path / name) for name in ("first", "again"))
    for (key, a), b in zip(first.module.state_dict().items(), again.module.state_dict().values()):
        assert torch.equal(a, b), key
    assert (tmp_path / "again" / "history.jsonl").read_text() == (tmp_path / "first" / "history.jsonl").read_text()


def test_cli_errors_are_one_line(run, tmp_path, capsys):
    _, out, train, _ = run
    assert main(["train", "--data", str(train), "--inputs", "w", "--outputs", "w", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"sciml train: error: --out {out}: exists and is not an empty directory; choose a new run directory"
    assert main(["train", "--data", str(train), "--inputs", "w", "--outputs", "w", "--epochs", "1", "--out", str(tmp_path / "r")]) == 2
    assert "variable(s) ['w'] not found" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), "--data", str(train)]) == 2
    assert capsys.readouterr().err.strip() == f"sciml evaluate: error: {tmp_path}: not a saved surrogate (needs manifest.json and weights.pt)"
