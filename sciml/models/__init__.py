"""Model registry: ``build(name, **options) -> nn.Module`` mapping ``(batch, c_in, *space) -> (batch, c_out, *space)``.

=========  ===================  ==================================================================
name       config               model
=========  ===================  ==================================================================
``fno``    :class:`FNOConfig`   Fourier neural operator, periodic or bounded box (``neuralop.models.FNO``)
``tfno``   :class:`TFNOConfig`  the same with Tucker-factorised spectral weights
``uno``    :class:`UNOConfig`   U-shaped neural operator, periodic or bounded box (``neuralop.models.UNO``)
``sfno``   :class:`SFNOConfig`  spherical FNO, equiangular or Gauss lat-lon grid (``neuralop.models.SFNO``)
``afno``   :class:`AFNOConfig`  FourCastNet's adaptive Fourier neural operator on 2-D grids (plain torch)
=========  ===================  ==================================================================

Models come from ``neuraloperator``, imported inside the model constructors (it costs seconds); ``afno``
is written here in plain torch (presets, e.g. ``preset="fourcastnet"``, in :data:`AFNO_PRESETS`).
Every neural operator works at any resolution (zero-shot super-resolution): its positional features
(:class:`PeriodicFeatures` on periodic boxes, :class:`BoundedFeatures` on bounded boxes,
:class:`SphereFeatures` on the sphere) are functions of the continuous coordinates, and on bounded
boxes (``boundary="reflect"``) the spectral layers act on an even extension whose period is the same
at every resolution. ``afno`` runs on any 2-D grid but, like FourCastNet, learns at its training
resolution: a patch is a fixed number of grid points and its learned positional embedding is
interpolated to other grids. ``state_dict()`` holds tensors only; ``config_of(model)`` gives the
JSON-ready ``(name, options)`` that :func:`build` turns back into the same architecture, and
``defaults_for(name, grid)`` the options a model's config chooses for a training grid. A model of
your own joins them with ``register_model(name, builder)``.
"""

from __future__ import annotations

from .afno import AFNO_PRESETS, AFNOConfig
from .features import BoundedFeatures, PeriodicFeatures, SphereFeatures
from .fno import FNOConfig, TFNOConfig
from .registry import ModelSpec, available, build, config_of, defaults_for, option_names, register_model
from .sfno import SFNOConfig
from .uno import UNOConfig

__all__ = [
    "build", "available", "config_of", "option_names", "defaults_for", "register_model", "ModelSpec",
    "FNOConfig", "TFNOConfig", "UNOConfig", "SFNOConfig", "AFNOConfig", "AFNO_PRESETS",
    "PeriodicFeatures", "BoundedFeatures", "SphereFeatures",
]
