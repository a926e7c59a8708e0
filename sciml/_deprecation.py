"""Deprecating renamed API: the warning says what to write instead, and from which version.

Every rename of a public function, class or keyword argument keeps the old spelling working for at least
one minor release, through :func:`deprecated`; ``CHANGELOG.md`` lists it under "Deprecated". The warning
is a :class:`SciMLDeprecationWarning`, a ``FutureWarning``:

* ``DeprecationWarning`` is hidden by default unless the call comes from ``__main__``, so a scientist
  calling sciml from a notebook cell, a package of their own or a function in their script would never
  see it. sciml's users are the people calling the API, and Python's rule is ``FutureWarning`` for
  deprecations meant for the end users of the code (numpy, pandas and xarray do the same): it is
  shown by default, once per call site.
* Its own subclass lets a test suite or a pipeline turn exactly sciml's deprecations into errors,
  ``warnings.filterwarnings("error", category=SciMLDeprecationWarning)``, without touching other warnings.

Nothing here installs a warning filter.

Example:
    A renamed function (the old name kept, calling the new one), and a renamed keyword argument:

    ```python
    from sciml._deprecation import deprecated

    def channel_statistics(ds, variables): ...

    channel_stats = deprecated("sciml.data.channel_stats", "sciml.data.channel_statistics",
                               since="0.2.0", remove_in="0.4.0")(channel_statistics)

    @deprecated("lr", "learning_rate", since="0.2.0")
    def fit(task, data, *, learning_rate=1e-3): ...

    fit(task, data, lr=1e-2)
    # SciMLDeprecationWarning: 'lr' (a keyword argument of fit) is deprecated since 0.2.0;
    # write 'learning_rate' instead.
    ```
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["SciMLDeprecationWarning", "deprecated", "warn_deprecated", "deprecation_message"]

T = TypeVar("T")


class SciMLDeprecationWarning(FutureWarning):
    """A renamed or removed sciml name was used; the message says what to write instead."""


def deprecation_message(old: str, new: str, *, since: str, remove_in: str | None = None) -> str:
    """The one wording of every deprecation: ``"OLD is deprecated since V; write NEW instead."``.

    Args:
        old: what the caller wrote, e.g. ``"sciml.data.channel_stats"`` or ``"'lr' (a keyword argument of fit)"``.
        new: what to write instead.
        since: the version that deprecated ``old``.
        remove_in: the version that removes it, when decided.

    Returns:
        The message, one line.

    Example:
        >>> deprecation_message("sciml.old", "sciml.new", since="0.2.0", remove_in="0.4.0")
        'sciml.old is deprecated since 0.2.0; write sciml.new instead. It will be removed in 0.4.0.'
    """
    message = f"{old} is deprecated since {since}; write {new} instead."
    if remove_in is not None:
        message += f" It will be removed in {remove_in}."
    return message


def warn_deprecated(old: str, new: str, *, since: str, remove_in: str | None = None, stacklevel: int = 2) -> None:
    """Emit the :class:`SciMLDeprecationWarning` for ``old``, attributed to the caller's caller.

    For renames that are not a call, such as a module attribute served by a module ``__getattr__``.

    Args:
        old, new, since, remove_in: as in :func:`deprecation_message`.
        stacklevel: as in :func:`warnings.warn`, counted from the function that calls this one
            (2: the line that called it).

    Example:
        A renamed module attribute:

        ```python
        def __getattr__(name):
            if name == "OLD_TABLE":
                warn_deprecated("sciml.x.OLD_TABLE", "sciml.x.TABLE", since="0.2.0")
                return TABLE
            raise AttributeError(name)
        ```
    """
    warnings.warn(deprecation_message(old, new, since=since, remove_in=remove_in), SciMLDeprecationWarning,
                  stacklevel=stacklevel + 1)


def deprecated(old: str, new: str, *, since: str, remove_in: str | None = None) -> Callable[[T], T]:
    """Keep a renamed function, class or keyword argument working, with a warning that names the new spelling.

    Two uses, told apart by the decorated object's signature:

    * **a renamed keyword argument**: ``new`` is one of the parameters of the decorated function (or of
      the decorated class's ``__init__``) and ``old`` is not. Calls passing ``old=`` warn and are
      forwarded as ``new=``; passing both is a ``TypeError``. A class keeps its identity (its
      ``__init__`` is wrapped in place).
    * **a renamed function or class**: anything else. ``deprecated(old, new, ...)(obj)`` returns a
      stand-in for the old name that warns on each call (a function) or construction (a subclass of
      the class; ``isinstance`` against the new class holds) and then does what ``obj`` does. Write
      ``old`` and ``new`` as the full dotted names users import, such as ``"sciml.data.channel_stats"``.

    Args:
        old: the old name (dotted path of a function or class, or the keyword argument's name).
        new: the name to write instead.
        since: the version that deprecated ``old`` (the one about to be released; see ``CHANGELOG.md``).
        remove_in: the version that will remove ``old``, when decided.

    Returns:
        A decorator.

    Raises:
        TypeError: ``deprecated`` applied to something that is not callable.

    Example:
        >>> import warnings
        >>> @deprecated("n", "n_samples", since="0.2.0")
        ... def draw(*, n_samples=1):
        ...     return n_samples
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     draw(n=3)
        3
        >>> str(caught[0].message)
        "'n' (a keyword argument of draw) is deprecated since 0.2.0; write 'n_samples' instead."
    """

    def decorate(obj: T) -> T:
        if not callable(obj):
            raise TypeError(f"deprecated({old!r}, {new!r}) decorates a function or a class, got {type(obj).__name__}")
        if _is_keyword_rename(obj, old, new):
            return _rename_keyword(obj, old, new, since, remove_in)
        if isinstance(obj, type):
            return _renamed_class(obj, old, new, since, remove_in)
        return _renamed_function(obj, old, new, since, remove_in)

    return decorate


def _parameters(obj: Any) -> dict[str, inspect.Parameter] | None:
    target = obj.__init__ if isinstance(obj, type) else obj
    try:
        return dict(inspect.signature(target).parameters)
    except (TypeError, ValueError):  # builtins without a signature
        return None


def _is_keyword_rename(obj: Any, old: str, new: str) -> bool:
    parameters = _parameters(obj)
    return (parameters is not None and old.isidentifier() and new in parameters and old not in parameters
            and parameters[new].kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY))


def _rename_keyword(obj: T, old: str, new: str, since: str, remove_in: str | None) -> T:
    function = obj.__init__ if isinstance(obj, type) else obj
    owner = obj.__qualname__ if isinstance(obj, type) else function.__qualname__
    what = f"{old!r} (a keyword argument of {owner})"

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if old in kwargs:
            if new in kwargs:
                raise TypeError(f"{owner}() got both {old!r} and {new!r}; {old!r} is the deprecated spelling of "
                                f"{new!r}: pass {new!r} only")
            warn_deprecated(what, repr(new), since=since, remove_in=remove_in)
            kwargs[new] = kwargs.pop(old)
        return function(*args, **kwargs)

    if isinstance(obj, type):
        obj.__init__ = wrapper
        return obj
    return wrapper  # type: ignore[return-value]


def _renamed_function(function: T, old: str, new: str, since: str, remove_in: str | None) -> T:
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        warn_deprecated(old, new, since=since, remove_in=remove_in)
        return function(*args, **kwargs)

    _rename(wrapper, old)
    wrapper.__doc__ = deprecation_message(old, new, since=since, remove_in=remove_in)
    return wrapper  # type: ignore[return-value]


def _renamed_class(cls: type, old: str, new: str, since: str, remove_in: str | None) -> type:
    def __init__(self, *args, **kwargs):
        warn_deprecated(old, new, since=since, remove_in=remove_in)
        cls.__init__(self, *args, **kwargs)

    stand_in = type(old.rsplit(".", 1)[-1], (cls,), {
        "__init__": functools.wraps(cls.__init__)(__init__),
        "__doc__": deprecation_message(old, new, since=since, remove_in=remove_in),
    })
    _rename(stand_in, old)
    return stand_in


def _rename(obj: Any, old: str) -> None:
    """Give the stand-in the old name (and module, when ``old`` is a dotted path) so reprs show it."""
    module, _, name = old.rpartition(".")
    obj.__name__ = obj.__qualname__ = name
    if module:
        obj.__module__ = module
