"""Exceptions with one-line messages that name the file/parameter at fault and the fix.

All derive from :class:`SciMLError` (and :class:`ValueError`, as they describe bad input), so callers
and the CLI can catch them without catching bugs.
"""

from __future__ import annotations

__all__ = ["SciMLError", "ConfigError", "DataError", "GridError", "SolverError"]


class SciMLError(ValueError):
    """Base class of the errors ``sciml`` raises about its input."""


class ConfigError(SciMLError):
    """An option out of its valid range or of the wrong kind."""


class DataError(SciMLError):
    """A file, variable or array that cannot be read or used as given."""


class GridError(SciMLError):
    """Coordinates that do not describe a grid ``sciml`` can work on."""


class SolverError(SciMLError):
    """A solver parameter or state that would give a wrong answer (unstable step, NaN, bad viscosity)."""
