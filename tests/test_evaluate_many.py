"""evaluate_many: every run on every file as one sweep, serial and on a 2-worker LocalCluster, with the same
numbers as evaluate() called pair by pair; an interrupted sweep resumes."""

import warnings

import numpy as np
import pytest

from sciml import ConfigError, Surrogate, data
from sciml.datasets.ns2d import generate as ns2d
from sciml.evaluation import evaluate, evaluate_many
from sciml.surrogate import fit_surrogate
from sciml.train import TrainConfig

TIMES = [0.0, 0.2]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate_many")
    train = ns2d(8, 16, seed=0, times=TIMES, progress=False)
    runs = []
    for seed, width in ((0, 8), (1, 12)):
        config = TrainConfig(epochs=2, batch_size=4, seed=seed, device="cpu", progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # two epochs: "too few to tell"
            surrogate, _ = fit_surrogate(train, inputs=["vorticity"], outputs=["vorticity"], lag=1,
                                         model_options={"hidden_channels": width, "n_modes": (6, 6)}, config=config)
        surrogate.save(root / f"run{seed}")
        runs.append(str(root / f"run{seed}"))
    files = []
    for resolution in (16, 32):  # the training grid and a zero-shot finer one
        path = root / f"test{resolution}.nc"
        data.write(ns2d(2, resolution, seed=0, first_sample=8, times=TIMES, progress=False), path)
        files.append(str(path))
    expected = np.empty((2, 2))
    for i, run in enumerate(runs):
        for j, path in enumerate(files):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected[i, j] = evaluate(Surrogate.load(run), data.open(path), device="cpu")["rel_l2"]["vorticity"]
    return root, runs, files, expected


def test_every_run_on_every_file_in_this_process_matches_evaluate_pair_by_pair(setup):
    root, runs, files, expected = setup
    table = evaluate_many(runs, files, out_dir=root / "serial", progress=False)
    assert table["rel_l2"].dims == ("run", "data", "variable") and list(table["variable"].values) == ["vorticity"]
    np.testing.assert_array_equal(table["rel_l2"].sel(variable="vorticity").values, expected)
    assert (table["persistence_rel_l2"] > 0).all()
    assert len(list((root / "serial").glob("*.json"))) == 4
    # an interrupted sweep: the missing pair alone is evaluated again, with the same numbers
    (root / "serial" / "run001-data000.json").unlink()
    again = evaluate_many(runs, files, out_dir=root / "serial", progress=False)
    np.testing.assert_array_equal(again["rel_l2"].values, table["rel_l2"].values)


def test_the_same_sweep_on_a_two_worker_local_cluster_gives_the_same_numbers(setup):
    root, runs, files, expected = setup
    table = evaluate_many(runs, files, out_dir=root / "cluster", workers=2, progress=False)
    # workers run one torch thread, this process may run more: float32 sums in another order (seen: 4e-10)
    np.testing.assert_allclose(table["rel_l2"].sel(variable="vorticity").values, expected, rtol=1e-6)


def test_bad_lists_are_one_line_errors(setup):
    root, runs, files, _ = setup
    with pytest.raises(ConfigError, match="at least one run and one file"):
        evaluate_many([], files, out_dir=root / "bad")
    with pytest.raises(ConfigError, match="listed twice"):
        evaluate_many([runs[0], runs[0]], files, out_dir=root / "bad")
