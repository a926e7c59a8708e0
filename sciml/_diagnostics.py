"""Warnings for surrogates that have not learned: no better than a trivial baseline, or stopped too early.

:func:`training_warnings` reads a training history and the errors of the model and of two baselines,
both free to compute on any validation or test set:

* **persistence** (time steppers): the input frame as the forecast, ``||w(t) - w(t + lead)|| / ||w(t + lead)||``;
* **the zero field**: predicting 0, whose relative L2 error is exactly 1.

A model whose error is within :data:`MARGIN` (20 %) of the better baseline has learned little; a loss that
was still falling faster than :data:`STEEP` (1 % per epoch, :meth:`sciml.train.History.trend` over the last
5 epochs) when training stopped would have gone lower with more epochs. Fewer than 3 epochs cannot show a
trend and are flagged as well. Each warning is one line that says what to do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

#: The model must beat the best baseline by this fraction of its error: ``error < (1 - MARGIN) * baseline``.
MARGIN = 0.2
#: Relative change of the loss per epoch below which it counts as still falling steeply (-1 % per epoch).
STEEP = -0.01
ADVICE = "train for more epochs (--epochs, TrainConfig.epochs) or on more data (more trajectories or pairs)"


def _trend(history: Sequence[Mapping[str, float]]) -> tuple[float | None, str]:
    from .train.loop import History

    records = history if isinstance(history, History) else History(list(history))
    key = "val_loss" if any("val_loss" in r for r in records) else "train_loss"
    return records.trend(key), key.replace("_", " ").replace("val", "validation").replace("train", "training")


def training_warnings(history: Sequence[Mapping[str, float]] | None, *, val_error: float | None,
                      persistence_error: float | None = None, zero_error: float | None = 1.0,
                      trend: float | None = None, epochs: int | None = None,
                      stop_reason: str | None = None) -> list[str]:
    """Warnings (one line each, with the advice) for a surrogate that has not learned enough.

    Args:
        history: the per-epoch records of :func:`sciml.train.fit` (a :class:`~sciml.train.History` or a
            list of dicts with ``epoch``, ``train_loss`` and maybe ``val_loss``); ``None`` when only a
            summary is known (then ``trend``, ``epochs`` and ``stop_reason`` are used).
        val_error: the model's relative L2 error on held-out data (validation or test).
        persistence_error: the error of persistence on the same data (``None``: not a time stepper).
        zero_error: the error of the zero field, 1 for a relative L2 error.
        trend, epochs, stop_reason: the loss trend per epoch (:meth:`History.trend`), the number of epochs
            run and why training stopped, when ``history`` is ``None``.

    Returns:
        ``[]`` for a model clearly better than both baselines whose loss had levelled off.
    """
    lines = []
    key = "loss"
    if history is not None:
        trend, key = _trend(history)
        epochs = len(history)
        stop_reason = getattr(history, "stop_reason", stop_reason)
    baselines = {name: value for name, value in (("persistence", persistence_error), ("the zero field", zero_error))
                 if value is not None and math.isfinite(value)}
    if val_error is not None and math.isfinite(val_error) and baselines:
        name, best = min(baselines.items(), key=lambda item: item[1])
        note = ", the input frame as the prediction" if name == "persistence" else ""
        if val_error >= (1 - MARGIN) * best:
            lines.append(f"the surrogate's relative L2 error {val_error:.3g} is no better than {name} ({best:.3g}{note}): "
                         f"it has learned little; {ADVICE}")
    cut = " (stopped by the wall-clock budget)" if stop_reason == "max_time" else ""
    if epochs is not None and epochs < 3:
        lines.append(f"training ran only {epochs} epoch{'s' if epochs != 1 else ''}{cut}, too few to tell whether the "
                     f"loss had levelled off; {ADVICE}")
    elif trend is not None and trend < STEEP:
        lines.append(f"the {key} was still falling {-100 * trend:.1f}% per epoch when training stopped{cut}: "
                     f"the model is not converged; {ADVICE}")
    return lines
