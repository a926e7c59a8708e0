"""Warnings for surrogates that learned nothing: hand-made histories and errors with known answers."""

from __future__ import annotations

import math

import pytest

from sciml._diagnostics import MARGIN, STEEP, training_warnings
from sciml.train.loop import History


def _history(values, key="val_loss", stop_reason="epochs"):
    return History([{"epoch": e + 1, "train_loss": v, key: v} for e, v in enumerate(values)], stop_reason=stop_reason)


def test_a_steeply_falling_loss_warns_with_its_rate_and_the_advice():
    # val_loss = 0.9^e: exactly 10% less per epoch, so History.trend gives -0.1 and the line says 10.0%.
    history = _history([0.9**e for e in range(10)])
    lines = training_warnings(history, val_error=0.05, persistence_error=0.5, zero_error=1.0)
    assert len(lines) == 1
    assert "validation loss was still falling 10.0% per epoch" in lines[0]
    assert "more epochs" in lines[0] and "more data" in lines[0]


def test_a_flat_loss_and_a_model_well_below_its_baselines_give_no_warning():
    history = _history([0.1, 0.1001, 0.0999, 0.1, 0.1, 0.1])
    assert training_warnings(history, val_error=0.1, persistence_error=0.5, zero_error=1.0) == []


def test_the_threshold_of_steep_is_one_percent_per_epoch():
    just_below = _history([(1 + 0.9 * STEEP) ** e for e in range(8)])   # -0.9% per epoch: levelled off enough
    just_above = _history([(1 + 1.1 * STEEP) ** e for e in range(8)])   # -1.1% per epoch: still falling
    assert training_warnings(just_below, val_error=0.01, persistence_error=1.0) == []
    assert len(training_warnings(just_above, val_error=0.01, persistence_error=1.0)) == 1


def test_a_model_no_better_than_persistence_warns_and_names_the_baseline():
    history = _history([0.5, 0.5, 0.5, 0.5])
    lines = training_warnings(history, val_error=0.45, persistence_error=0.5, zero_error=1.0)
    assert len(lines) == 1
    assert "0.45 is no better than persistence (0.5, the input frame as the prediction)" in lines[0]
    # 20% better than persistence is the bar: 0.39 < 0.8 * 0.5 = 0.4 passes, 0.41 does not.
    assert training_warnings(history, val_error=(1 - MARGIN) * 0.5 - 0.01, persistence_error=0.5) == []
    assert len(training_warnings(history, val_error=(1 - MARGIN) * 0.5 + 0.01, persistence_error=0.5)) == 1


def test_the_issues_case_0_89_against_the_zero_field_warns():
    # The README snippet of issue 18 ended at a relative L2 error of 0.89; predicting 0 gives exactly 1.
    lines = training_warnings(_history([0.9, 0.9, 0.9]), val_error=0.89, persistence_error=None)
    assert len(lines) == 1 and "no better than the zero field (1)" in lines[0]


def test_two_epochs_cannot_show_a_trend_and_a_budget_cut_is_named():
    history = _history([1.0, 0.95], stop_reason="max_time")
    lines = training_warnings(history, val_error=0.1, persistence_error=0.5)
    assert len(lines) == 1
    assert "only 2 epochs (stopped by the wall-clock budget)" in lines[0]


def test_a_plain_list_of_records_without_validation_uses_the_training_loss():
    records = [{"epoch": e + 1, "train_loss": 0.8**e} for e in range(6)]
    (line,) = training_warnings(records, val_error=0.05, persistence_error=0.5)
    assert "training loss was still falling 20.0% per epoch" in line


def test_a_summary_instead_of_a_history():
    lines = training_warnings(None, val_error=0.05, persistence_error=None, trend=-0.05, epochs=30)
    assert len(lines) == 1 and "5.0% per epoch" in lines[0]
    assert training_warnings(None, val_error=0.05, trend=None, epochs=None) == []
    assert training_warnings(None, val_error=math.nan, trend=-0.001, epochs=30) == []


@pytest.mark.parametrize("error", [0.79, 0.81])
def test_no_persistence_means_the_zero_field_alone(error):
    lines = training_warnings(None, val_error=error, persistence_error=None, zero_error=1.0)
    assert len(lines) == (error >= 0.8)
