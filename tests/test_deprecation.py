"""sciml._deprecation: renamed functions, classes and keyword arguments keep working and say what to write."""

from __future__ import annotations

import dataclasses
import doctest
import importlib
import importlib.util
import inspect
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import sciml._deprecation as deprecation
from sciml._deprecation import SciMLDeprecationWarning, deprecated, deprecation_message, warn_deprecated


def _one_warning(record) -> warnings.WarningMessage:
    assert len(record) == 1, [str(w.message) for w in record]
    return record[0]


def test_message_names_the_old_and_new_spelling_and_versions():
    assert deprecation_message("sciml.old", "sciml.new", since="0.2.0") == (
        "sciml.old is deprecated since 0.2.0; write sciml.new instead.")
    assert deprecation_message("sciml.old", "sciml.new", since="0.2.0", remove_in="0.4.0") == (
        "sciml.old is deprecated since 0.2.0; write sciml.new instead. It will be removed in 0.4.0.")


def test_the_warning_is_a_future_warning_of_its_own_class():
    # FutureWarning: shown by default wherever the call comes from (see the module docstring).
    assert issubclass(SciMLDeprecationWarning, FutureWarning)
    assert not issubclass(SciMLDeprecationWarning, DeprecationWarning)


def test_renamed_function_warns_and_does_what_the_new_one_does():
    def channel_statistics(ds, variables, *, ddof=0):
        """The new function."""
        return (ds, tuple(variables), ddof)

    old = deprecated("sciml.data.channel_stats", "sciml.data.channel_statistics", since="0.2.0",
                     remove_in="0.4.0")(channel_statistics)
    with pytest.warns(SciMLDeprecationWarning) as record:
        assert old("ds", ["u"], ddof=1) == ("ds", ("u",), 1)
    caught = _one_warning(record)
    assert str(caught.message) == ("sciml.data.channel_stats is deprecated since 0.2.0; write "
                                   "sciml.data.channel_statistics instead. It will be removed in 0.4.0.")
    assert caught.filename == __file__  # attributed to the caller, not to sciml
    assert old.__name__ == "channel_stats" and old.__module__ == "sciml.data"
    assert old.__doc__ == str(caught.message)
    assert inspect.signature(old) == inspect.signature(channel_statistics)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        channel_statistics("ds", ["u"])  # the new name does not warn


def test_renamed_class_warns_on_construction_and_is_the_new_class():
    @dataclasses.dataclass(frozen=True)
    class GridSpec:
        """The new class."""

        n: int
        periodic: bool = True

    Old = deprecated("sciml.grids.GridSpecification", "sciml.grids.GridSpec", since="0.2.0")(GridSpec)
    with pytest.warns(SciMLDeprecationWarning, match=r"^sciml.grids.GridSpecification is deprecated since 0.2.0; "
                      r"write sciml.grids.GridSpec instead\.$") as record:
        spec = Old(8, periodic=False)
    assert _one_warning(record).filename == __file__
    assert isinstance(spec, GridSpec) and (spec.n, spec.periodic) == (8, False)
    assert Old.__name__ == "GridSpecification" and Old.__module__ == "sciml.grids"
    assert "write sciml.grids.GridSpec instead" in Old.__doc__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GridSpec(8)


def test_renamed_keyword_argument_is_forwarded_with_a_warning():
    @deprecated("lr", "learning_rate", since="0.2.0", remove_in="0.3.0")
    def fit(task, *, learning_rate=1e-3, epochs=1):
        """Train."""
        return task, learning_rate, epochs

    with pytest.warns(SciMLDeprecationWarning) as record:
        assert fit("t", lr=0.5, epochs=2) == ("t", 0.5, 2)
    caught = _one_warning(record)
    assert str(caught.message) == (
        "'lr' (a keyword argument of test_renamed_keyword_argument_is_forwarded_with_a_warning.<locals>.fit) is "
        "deprecated since 0.2.0; write 'learning_rate' instead. It will be removed in 0.3.0.")
    assert caught.filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fit("t", learning_rate=0.25) == ("t", 0.25, 1)
        assert fit("t") == ("t", 1e-3, 1)
    with pytest.raises(TypeError, match="got both 'lr' and 'learning_rate'"):
        fit("t", lr=0.5, learning_rate=0.5)
    assert "learning_rate" in inspect.signature(fit).parameters and fit.__doc__ == "Train."


def test_renamed_keyword_argument_of_a_class_keeps_the_class():
    @deprecated("n", "n_samples", since="0.2.0")
    class Sampler:
        """Draws samples."""

        def __init__(self, *, n_samples: int = 1) -> None:
            self.n_samples = n_samples

    with pytest.warns(SciMLDeprecationWarning, match=r"'n' \(a keyword argument of .*Sampler\) is deprecated"):
        sampler = Sampler(n=4)
    assert type(sampler) is Sampler and sampler.n_samples == 4 and Sampler.__name__ == "Sampler"


def test_a_name_that_is_not_a_parameter_is_a_rename_of_the_function():
    @deprecated("sciml.old_draw", "sciml.draw", since="0.2.0")
    def draw(n_samples=1):
        return n_samples

    with pytest.warns(SciMLDeprecationWarning, match="sciml.old_draw is deprecated"):
        assert draw(n_samples=2) == 2


def test_warn_deprecated_points_at_the_callers_line():
    def old_attribute():
        warn_deprecated("sciml.x.OLD", "sciml.x.NEW", since="0.2.0")

    line = inspect.currentframe().f_lineno + 2
    with pytest.warns(SciMLDeprecationWarning, match=r"^sciml.x.OLD is deprecated since 0.2.0; write sciml.x.NEW") as r:
        old_attribute()
    caught = _one_warning(r)
    assert (caught.filename, caught.lineno) == (__file__, line)


def test_only_callables_can_be_deprecated():
    with pytest.raises(TypeError, match="decorates a function or a class"):
        deprecated("sciml.OLD", "sciml.NEW", since="0.2.0")(3)


def test_importing_it_installs_no_warning_filter():
    # A fresh copy of the module, not importlib.reload: reloading would replace SciMLDeprecationWarning
    # in the shared module and break every later `pytest.warns(SciMLDeprecationWarning)` in the session.
    spec = importlib.util.spec_from_file_location("fresh_deprecation", deprecation.__file__)
    before = list(warnings.filters)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert warnings.filters == before


def test_the_warning_is_shown_by_default_when_a_library_calls_it(tmp_path: Path):
    # A DeprecationWarning raised for a call inside a user's own module (not __main__) is hidden by
    # Python's default filters; this one must reach the user.
    module = Path(deprecation.__file__)
    (tmp_path / "user_lib.py").write_text(textwrap.dedent(f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location("dep", {str(module)!r})
        dep = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(dep)

        @dep.deprecated("user.old", "user.new", since="0.2.0")
        def new():
            return 1

        def work():
            return new()
    """))
    result = subprocess.run([sys.executable, "-c", "import user_lib; user_lib.work()"], cwd=tmp_path, check=False,
                            capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "SciMLDeprecationWarning: user.old is deprecated since 0.2.0; write user.new instead." in result.stderr


def test_docstring_examples_run():
    failures, attempted = doctest.testmod(deprecation, raise_on_error=False, verbose=False)
    assert attempted >= 3 and failures == 0
