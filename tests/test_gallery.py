"""The gallery: every example script is a page in the site's nav, titled by its docstring, run by CI.

Running the examples is `.ci/examples` (called by `.ci/run`), not a test: each takes a minute or two.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (ROOT / "docs" / "examples").glob("*.py") if not p.name.startswith("_"))


def test_there_are_examples_and_ci_runs_them():
    assert len(SCRIPTS) >= 4
    assert "bash .ci/examples" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_each_example_is_in_the_nav_with_a_title_and_an_out_option(script):
    nav = (ROOT / "mkdocs.yml").read_text()
    assert re.search(rf"^\s+- gallery/{script.stem}\.md$", nav, re.M), f"add gallery/{script.stem}.md to the nav"
    doc = ast.get_docstring(ast.parse(script.read_text()))
    assert doc and len(doc.splitlines()[0]) < 80 and "\n\n" in doc, "a one-line title, a blank line, then prose"
    assert '"--out"' in script.read_text()  # .ci/examples passes --out build/gallery/<name>
