"""Griffe extension for the docs build: ``sciml.datasets`` lives in the repository's ``datasets/`` folder.

``pyproject.toml`` maps the package ``sciml.datasets`` to ``datasets/`` (``[tool.setuptools.package-dir]``),
which an install follows but griffe's static finder does not: it looks for ``sciml/datasets/``. This
extension loads ``datasets/`` as the submodule ``datasets`` of ``sciml`` once ``sciml`` is loaded, so
``::: sciml.datasets`` works on a fresh clone, installed or not. Listed before ``docstrings.py`` in
``mkdocs.yml`` so that the recipes' docstrings are rewritten too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import griffe

# submodule path -> folder, relative to the repository root (this file is docs/_griffe/package_dir.py)
MAPPED = {"sciml.datasets": "datasets"}
ROOT = Path(__file__).resolve().parents[2]


class PackageDir(griffe.Extension):
    """Attach the folders of ``MAPPED`` to their parent packages."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        for path, folder in MAPPED.items():
            parent_path, _, name = path.rpartition(".")
            if pkg.path != parent_path.split(".")[0] or name in pkg.members:
                continue
            parent = pkg if parent_path == pkg.path else pkg.get_member(parent_path.split(".", 1)[1])
            init = ROOT / folder / "__init__.py"
            module = loader._load_module(name, init, parent=parent)  # griffe has no public API for this
            parent.set_member(name, module)
            loader.expand_exports(module)
