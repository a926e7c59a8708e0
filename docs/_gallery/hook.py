"""mkdocs hook: one gallery page per example script in ``docs/examples/``, with the figures it made.

``bash .ci/examples`` runs every example into ``build/gallery/<name>/`` (figures, ``output.txt`` and
``run.json`` with the run time). At build time this hook writes ``gallery/<name>.md`` (the script's
docstring as prose, its figures, its printed output, its run time and its source) and
``gallery/index.md``; a page whose example has not been run says so instead of showing stale figures.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
RUNS = ROOT / "build" / "gallery"


def examples() -> list[Path]:
    """The example scripts, in name order."""
    return sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def _title_and_text(script: Path) -> tuple[str, str]:
    doc = ast.get_docstring(ast.parse(script.read_text())) or script.stem
    title, _, text = doc.partition("\n")
    return title.strip(), text.strip()


def _page(script: Path, figures: list[str]) -> str:
    title, text = _title_and_text(script)
    run_dir = RUNS / script.stem
    lines = [f"# {title}", "", text, "", f"[Download {script.name}](../examples/{script.name})", ""]
    record = run_dir / "run.json"
    if record.exists():
        run = json.loads(record.read_text())
        lines += [f"Ran in **{run['seconds']:.0f} s** on {run['machine']} ({run['date']}, "
                  f"`python docs/examples/{script.name}`).", ""]
        lines += [f"![{title}: {name}]({script.stem}/{name})" + "{ loading=lazy }" for name in figures] + [""]
        output = run_dir / "output.txt"
        if output.exists() and output.read_text().strip():
            lines += ["Printed output:", "", "```text", output.read_text().rstrip()[-4000:], "```", ""]
    else:
        lines += ['!!! note "Not run in this build"',
                  f"    The figures appear once `bash .ci/examples` has run the example (CI does).", ""]
    lines += ["## The script", "", "```python", _code(script), "```", ""]
    return "\n".join(lines)


def _code(script: Path) -> str:
    """The script without its module docstring (the page's prose already)."""
    source = script.read_text()
    body = ast.parse(source).body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        source = "\n".join(source.splitlines()[body[0].end_lineno:])
    return source.strip()


def on_files(files, config):
    """Add the generated gallery pages and the figures of the examples' last run."""
    scripts = examples()
    index = ["# Gallery", "",
             "Complete small workflows to copy. Each runs in CI at the size shown (a failing example fails CI), "
             "and its figures below are the ones that run produced.", ""]
    for script in scripts:
        title, text = _title_and_text(script)
        first = text.split("\n\n")[0].replace("\n", " ")
        index.append(f"- [{title}]({script.stem}.md): {first}")
        run_dir = RUNS / script.stem
        figures = sorted(p.name for p in run_dir.glob("*.png")) if (run_dir / "run.json").exists() else []
        for name in figures:
            files.append(File.generated(config, f"gallery/{script.stem}/{name}", abs_src_path=str(run_dir / name)))
        files.append(File.generated(config, f"gallery/{script.stem}.md", content=_page(script, figures)))
    files.append(File.generated(config, "gallery/index.md", content="\n".join(index) + "\n"))
    return files
