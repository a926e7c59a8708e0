"""Every public name has a docstring and a place in the API reference (docs/api/*.md).

The public names are those in the ``__all__`` of ``sciml``, of every subpackage (``sciml.train``,
``sciml.data``, ..., ``sciml.datasets``) and of every public module that declares one (no ``_`` in its
dotted path: ``sciml.surrogate``, ``sciml.forecast.scores``, ``sciml.data.times``, ...). Each must

* have a docstring of its own when it is a class or a function (a dataclass's generated
  ``Name(field: type, ...)`` does not count). Data (dicts, tuples, strings, numbers) and type aliases
  such as ``sciml.data.times.TimeKind`` carry no docstring of their own and are exempt from this check;
* be rendered on an API page: the page has ``::: path`` for the object, or for a module (rendered with
  its members) whose ``__all__`` lists the same object. Lazily exported names (``sciml.Surrogate``,
  ``sciml.forecast.forecast``, ...) count through the module that defines them.

No mkdocs here (``.ci/run`` builds the site with ``--strict``): the test imports the package and reads
the Markdown, in a few seconds.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import sciml

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api"
# Public but not an object mkdocstrings renders: named on docs/api/index.md instead.
NOT_RENDERED = {"sciml.__version__"}
EXTRA_PACKAGES = ("sciml.datasets",)  # installed from datasets/ (pyproject package-dir), not under sciml/


def _public_modules() -> list[str]:
    names = {"sciml", *EXTRA_PACKAGES}
    for root in ("sciml", *EXTRA_PACKAGES):
        package = importlib.import_module(root)
        names.update(info.name for info in pkgutil.walk_packages(package.__path__, f"{root}."))
    return sorted(n for n in names if not any(part.startswith("_") for part in n.split(".")))


MODULES = [m for m in _public_modules() if hasattr(importlib.import_module(m), "__all__")]
PUBLIC = [(module, name) for module in MODULES for name in importlib.import_module(module).__all__]


@dataclass
class Directive:
    page: str
    target: str
    members: list[str] | None = field(default=None)  # None: all public members (filters: public)


def _directives() -> list[Directive]:
    found = []
    for page in sorted(API.glob("*.md")):
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            match = re.match(r"^:::\s+(\S+)\s*$", line)
            if not match:
                continue
            directive = Directive(page.name, match.group(1))
            for option in lines[i + 1:]:
                if option.strip() and not option.startswith("    "):
                    break
                members = re.match(r"^\s+members:\s*(.*?)\s*$", option)
                if members:
                    value = members.group(1)
                    directive.members = ([] if value in ("false", "[]") else
                                         re.findall(r"[\w.]+", value) if value.startswith("[") else None)
            found.append(directive)
    return found


DIRECTIVES = _directives()


def _resolve(path: str):
    """The object at a dotted path: the longest importable module, then attributes."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(path)


def _documented(module: str, name: str, obj) -> list[str]:
    """The pages that render ``module.name``."""
    paths = {f"{module}.{name}"}
    if getattr(obj, "__module__", None) and getattr(obj, "__qualname__", None):
        paths.add(f"{obj.__module__}.{obj.__qualname__}")
    pages = []
    for directive in DIRECTIVES:
        if directive.target in paths:
            pages.append(directive.page)
            continue
        target = _resolve(directive.target)
        if not inspect.ismodule(target) or directive.members == []:
            continue
        listed = directive.members if directive.members is not None else getattr(target, "__all__", ())
        if name in listed and getattr(target, name, None) is obj:
            pages.append(directive.page)
    return pages


def _own_docstring(obj) -> str:
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__") or ""
        # A dataclass without a docstring gets "Name(field: type, ...)" generated for it.
        if re.fullmatch(rf"{re.escape(obj.__name__)}\(.*\)", doc.strip(), flags=re.DOTALL):
            return ""
        return doc.strip()
    return (obj.__doc__ or "").strip()


def _needs_docstring(obj) -> bool:
    return inspect.isclass(obj) or inspect.isroutine(obj)


def test_the_public_api_is_found():
    # Guards the discovery itself: an empty or tiny list would make the tests below pass vacuously.
    for package in ("sciml", "sciml.train", "sciml.data", "sciml.models", "sciml.solvers", "sciml.bench",
                    "sciml.forecast", "sciml.diffusion", "sciml.datasets", "sciml.surrogate", "sciml.forecast.scores"):
        assert package in MODULES
    assert len(PUBLIC) > 200
    assert ("sciml", "Surrogate") in PUBLIC and ("sciml.forecast", "forecast") in PUBLIC


@pytest.mark.parametrize("module", MODULES)
def test_every_public_name_has_a_docstring(module):
    missing = []
    for name in importlib.import_module(module).__all__:
        obj = getattr(importlib.import_module(module), name)
        if _needs_docstring(obj) and not _own_docstring(obj):
            missing.append(name)
    assert not missing, f"{module}: public names without a docstring: {', '.join(missing)}"


def test_every_public_module_has_a_docstring():
    missing = [m for m in MODULES if not (importlib.import_module(m).__doc__ or "").strip()]
    assert not missing, f"modules without a docstring: {missing}"


@pytest.mark.parametrize("module", MODULES)
def test_every_public_name_is_on_an_api_page(module):
    missing = []
    for name in importlib.import_module(module).__all__:
        if f"{module}.{name}" in NOT_RENDERED:
            continue
        if not _documented(module, name, getattr(importlib.import_module(module), name)):
            missing.append(name)
    assert not missing, (f"{module}: public names on no page of docs/api/ (add '::: {module}' or '::: "
                         f"<defining module>' to a page, and the page to mkdocs.yml's nav): {', '.join(missing)}")


def test_names_that_are_not_rendered_are_named_on_the_api_index():
    index = (API / "index.md").read_text()
    for path in NOT_RENDERED:
        assert f"`{path}`" in index


def test_every_directive_points_at_an_object():
    assert len(DIRECTIVES) > 20
    for directive in DIRECTIVES:
        try:
            _resolve(directive.target)
        except (ImportError, AttributeError) as error:
            pytest.fail(f"docs/api/{directive.page}: '::: {directive.target}' does not resolve: {error}")


def test_every_api_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in API.glob("*.md"):
        assert f"api/{page.name}" in nav, f"docs/api/{page.name} is not in mkdocs.yml's nav"


def test_the_version_is_defined_once():
    from sciml._version import __version__

    assert sciml.__version__ is __version__ and re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+|rc\d+)?", __version__)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and 'attr = "sciml._version.__version__"' in pyproject
    project = pyproject.split("[project]", 1)[1].split("\n[", 1)[0]
    assert not re.search(r"(?m)^version\s*=", project), "pyproject.toml's [project] has a version of its own"
    assert f"## [{__version__}]" in (ROOT / "CHANGELOG.md").read_text() or "## [Unreleased]" in (
        ROOT / "CHANGELOG.md").read_text()
