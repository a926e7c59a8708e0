"""evaluate(steps=N): error per lead time of a rollout, persistence beside it, energy spectra; known answers.

The data are a travelling wave, ``w(t, x, y) = A_s sin(2 pi (x - t dx))`` on a 16 x 16 periodic box (one
cell per time unit), so the exact one-step map is a shift by one cell and persistence at lead ``k`` has the
relative L2 error ``||sin(a) - sin(a - 2 pi k / 16)|| / ||sin(a)|| = 2 sin(pi k / 16)``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from test_evaluate_physics import NS2D, Roll, _dataset, surrogate_for

from sciml.errors import ConfigError, DataError
from sciml.evaluation import evaluate
from sciml.surrogate import NormalizedOperator

TIMES = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)


@pytest.fixture(scope="module")
def wave():
    return _dataset(NS2D, times=TIMES)


def test_the_exact_model_has_zero_error_at_every_lead_and_persistence_the_hand_computed_one(wave, tmp_path):
    result = evaluate(surrogate_for(wave), wave, steps=3, out_dir=tmp_path)
    rollout = result["rollout"]
    assert rollout["steps"] == 3 and rollout["lead_time"] == [1.0, 2.0, 3.0] and rollout["lead_time_units"] == "1"
    assert rollout["n_initial_frames"] == 2 * 3  # 2 samples x initial times 0, 1, 2 (time 5 is 3 leads after 2)
    assert max(rollout["rel_l2"]["vorticity"]) < 1e-6
    assert rollout["persistence_rel_l2"]["vorticity"] == pytest.approx([2 * math.sin(math.pi * k / 16) for k in (1, 2, 3)],
                                                                       rel=1e-5)
    assert result["persistence_rel_l2"]["vorticity"] == pytest.approx(2 * math.sin(math.pi / 16), rel=1e-5)
    assert result["zero_field_rel_l2"] == 1.0
    saved = json.loads((tmp_path / "evaluation.json").read_text())
    assert saved["rollout"] == rollout
    for name in ("error_by_lead_time.png", "energy_spectrum.png", "error_vs_resolution.png", "fields.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_energy_spectra_of_the_exact_model_match_the_truth_and_hold_the_mean_square(wave):
    spectrum = evaluate(surrogate_for(wave), wave, steps=2)["energy_spectrum"]["vorticity"]
    k = np.array(spectrum["wavenumber"])
    truth, pred = np.array(spectrum["truth"]), np.array(spectrum["prediction"])
    np.testing.assert_allclose(pred, truth, atol=1e-6)
    np.testing.assert_allclose(spectrum["prediction_last_lead"], spectrum["truth_last_lead"], atol=1e-6)
    # sin(2 pi x) puts all its power, mean(w^2) = A^2 / 2, in the shell |k| = 2 pi; amplitudes 1 and 2 average 1.25.
    peak = int(np.argmin(abs(k - 2 * np.pi)))
    assert truth[peak] == pytest.approx(1.25, rel=1e-5)
    assert truth.sum() == pytest.approx(1.25, rel=1e-5)


def test_a_persistence_model_scores_exactly_persistence_at_every_lead(wave):
    class Identity(Roll):
        def forward(self, x):
            return x + 0 * self.unused

    surrogate = surrogate_for(wave)
    surrogate.module = NormalizedOperator(Identity(), 1, 1)
    with pytest.warns(UserWarning, match="is no better than persistence"):
        rollout = evaluate(surrogate, wave, steps=4)["rollout"]
    assert rollout["rel_l2"]["vorticity"] == pytest.approx(rollout["persistence_rel_l2"]["vorticity"], rel=1e-6)
    assert rollout["n_initial_frames"] == 2 * 2


def test_too_many_steps_and_an_operator_are_one_line_errors(wave):
    with pytest.raises(DataError, match=r"a rollout of 6 lead times \(1 of the file's time steps each\) needs at least 7 frames along 'time', the file has 6"):
        evaluate(surrogate_for(wave), wave, steps=6)
    with pytest.raises(ConfigError, match="steps must be a positive integer"):
        evaluate(surrogate_for(wave), wave, steps=0)
    operator = surrogate_for(wave)
    operator.lead_time = None
    with pytest.raises(ConfigError, match="needs a time-stepping surrogate"):
        evaluate(operator, wave, steps=2)
