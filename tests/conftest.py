import pytest
import torch


@pytest.fixture(autouse=True)
def _threads():
    # Keep tests reproducible in speed on the 2-core CI machine.
    torch.set_num_threads(2)
