"""The package version, in one place: ``sciml.__version__`` and ``pyproject.toml`` (setuptools ``attr:``) read it.

A plain literal so that setuptools reads it without importing ``sciml`` (which would load torch).
"""

__version__ = "0.1.0"
