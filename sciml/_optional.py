"""Clear errors for dependencies that can be missing or broken although ``pyproject.toml`` requires them.

torch-harmonics ships compiled extensions built for one torch release (0.9.3: torch 2.14); next to
another torch it fails to import, and neuraloperator then silently drops ``SFNO`` from
``neuralop.models``. The functions that need it say so up front instead.
"""

from __future__ import annotations


def require_torch_harmonics(what: str) -> None:
    """Raise ``ImportError`` naming ``what`` and the fix when ``torch_harmonics`` cannot be imported."""
    try:
        import torch_harmonics  # noqa: F401
    except ImportError as err:
        import torch

        raise ImportError(f"{what} needs torch-harmonics 0.9.3, which cannot be imported next to torch "
                          f"{torch.__version__} ({type(err).__name__}: {err}); install torch 2.14 and "
                          "torch-harmonics==0.9.3") from err
