"""docs/writing-a-capability.md runs as written: its denoising task trains, reaches its bound, and resumes."""

import re
from pathlib import Path

import pytest
import torch

PAGE = Path(__file__).parents[1] / "docs" / "writing-a-capability.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)


def test_the_task_of_the_page_is_about_30_lines():
    task = _blocks()[0]
    body = [line for line in task.splitlines() if line.strip()]
    assert 25 <= len(body) <= 40, len(body)


@pytest.mark.slow
def test_the_page_runs_learns_to_its_bound_and_a_second_run_resumes_the_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(2)
    namespace: dict = {}
    for block in _blocks():
        exec(compile(block, str(PAGE), "exec"), namespace)
    history, task = namespace["history"], namespace["task"]
    assert history.stop_reason == "epochs" and len(history) == 12
    # The averaged model leaves a quarter of the noise variance (measured 0.25; the identity map leaves 1).
    assert history[-1]["val_noise_ratio"] < 0.35, history[-1]
    assert {"train_loss", "train_noise_ratio", "val_loss", "val_noise_ratio"} <= history[0].keys()
    assert (tmp_path / "runs" / "denoising" / "checkpoint.json").is_file()
    ema = {k: v.clone() for k, v in task.ema.state_dict().items()}
    again: dict = {}
    for block in _blocks():  # the same script again: the finished run is resumed, not retrained
        exec(compile(block, str(PAGE), "exec"), again)
    assert again["history"] == history
    for key, value in again["task"].ema.state_dict().items():
        assert torch.equal(value, ema[key]), key
