"""Fixed numerics for every test: thread count, no TF32, seeded global generators, float32 default.

Tests draw their data from explicit seeds; these settings make the rest (parameter init in a test that
forgets to seed, matmul precision on a GPU, reduction order) the same on every machine and every run.
"""

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _numerics():
    torch.set_num_threads(2)  # reduction order (and speed) as on the 2-core CI machine
    torch.backends.cuda.matmul.allow_tf32 = False  # full float32 matmuls and convolutions on GPUs
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    np.random.seed(0)
    dtype = torch.get_default_dtype()
    yield
    torch.set_default_dtype(dtype)  # a test that changes it does not change the next one's


@pytest.fixture
def one_torch_thread(_numerics):
    """One torch thread for the test (after ``_numerics`` set two): its numbers do not depend on the thread count
    of the machine's reductions. Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
