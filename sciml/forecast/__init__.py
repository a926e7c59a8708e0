"""FourCastNet-style forecasting: autoregressive rollouts, ensembles, multi-step fine-tuning and skill scores.

``forecast(model, init, steps=...)`` rolls a time-stepping surrogate out (deterministic or as an
ensemble, streamed to NetCDF/zarr for long horizons); ``fit_forecaster`` trains one (one-step
pretraining, then autoregressive fine-tuning through :func:`sciml.train.fit`); :mod:`.scores` scores
forecasts the way WeatherBench 2 does. Names load on first use, so ``import sciml.forecast`` is cheap.
"""

from __future__ import annotations

_NAMES = {
    "forecast": "rollout", "Perturbation": "rollout",
    "GaussianPerturbation": "perturbations", "BredVectors": "perturbations",
    "RolloutTask": "training", "fit_forecaster": "training", "spectral_loss": "training",
    **{name: "scores" for name in ("rmse", "mae", "acc", "crps", "spread_skill", "rank_histogram", "energy_spectrum",
                                   "spectrum_ratio", "climatology", "align_truth", "area_weights")},
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        from importlib import import_module

        return getattr(import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'sciml.forecast' has no attribute {name!r}")
