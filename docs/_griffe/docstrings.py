"""Griffe extension for the docs build: sciml's docstring conventions, as mkdocstrings reads them.

sciml's docstrings are Google style (``Args:``, ``Returns:``, ...) with a few reST idioms inside the
prose and one extension of the style. This rewrites them in the docstrings griffe loaded (nothing in
``sciml/`` changes):

* parameters that share a description, ``pred, true: (batch, channel, *space) fields``, become one entry
  each with that description (griffe would otherwise report a parameter ``pred, true`` that is not in
  the signature, which fails the strict build); a name that is not in the signature still fails it;
* roles ``:class:`Task```, ``:func:`~sciml.train.fit```, ``:meth:`Surrogate.export <sciml.surrogate.Surrogate.export>```
  (also ``:mod:``, ``:data:``, ``:attr:``, ``:exc:``, ``:obj:``) become links when the target is a sciml
  object, resolved in the scope of the docstring's object the way Sphinx does (the object, its parents,
  the names imported in its module); the link is an *optional* cross-reference, so a target that is
  not rendered on any page (a private helper, ``torch.Generator``) is shown as code, not an error.
  Cross-references written in Markdown (``[Grid][sciml.grids.Grid]``) stay strict;
* reST simple tables (``====  ====`` borders, continuation rows with an empty first cell) become
  Markdown tables, and a paragraph's closing ``::`` before an indented literal block becomes ``:`` (the
  indented block is a code block in Markdown too);
* a bulleted list right under a paragraph line gets the blank line Markdown needs to see a list;
* ``__post_init__`` (a dataclass's validation, not something to call) is left out of the pages;
* ``:math:`x``` becomes inline math ``\\(x\\)`` and ``.. math:: x`` a display block ``\\[x\\]``
  (``pymdownx.arithmatex``).

Loaded by ``mkdocs.yml`` (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(class|func|meth|mod|data|attr|exc|obj|const):`([^`]+)`")
_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_TITLED = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$")
_SECTION = re.compile(
    r"^(?P<indent>\s*)(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Other Parameters):\s*$")
_GROUPED = re.compile(
    r"^(?P<indent>\s+)(?P<names>\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)+)(?P<rest>\s*(?:\([^)]*\))?:(?:\s.*)?)$")

def _lookup(collection, path: str):
    """The object at dotted ``path`` in the loaded modules, aliases and lazy exports followed; None if absent.

    A package that exports a name lazily (``__all__`` plus a module ``__getattr__``, as ``sciml``,
    ``sciml.forecast`` and ``sciml.diffusion`` do) has no member of that name for griffe: it is looked
    up in the package's submodules instead.
    """
    parts = path.split(".")
    if parts[0] not in collection.members:
        return None
    obj = collection.members[parts[0]]
    for part in parts[1:]:
        obj = _final(obj)
        if obj is None:
            return None
        members = obj.all_members if obj.is_class else obj.members
        if part in members:
            obj = members[part]
        elif obj.is_module and (part in (obj.exports or ()) or "__getattr__" in obj.members):
            obj = _defined_in_submodules(obj, part)
            if obj is None:
                return None
        else:
            return None
    return _final(obj)


def _final(obj):
    try:
        return obj.final_target if obj.is_alias else obj
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def _defined_in_submodules(package: griffe.Module, name: str):
    """The object named ``name`` defined (not imported) in a submodule of ``package``, if one is."""
    for member in package.members.values():
        if member.is_alias or not member.is_module:
            continue
        found = member.members.get(name)
        if found is not None and not found.is_alias:
            return found
        found = _defined_in_submodules(member, name)
        if found is not None:
            return found
    return None


def _resolve(obj: griffe.Object, target: str, collection) -> str | None:
    """The canonical path of ``target`` seen from ``obj``'s docstring, or None."""
    target = target.strip().lstrip("~")
    candidates: list[str] = []
    module = obj if obj.is_module else obj.module
    if target.startswith("."):
        # Relative: from the docstring's module, then up through its packages.
        scope = module
        while scope is not None:
            candidates.append(scope.path + target)
            scope = scope.parent
    else:
        candidates.append(target)
        head, _, rest = target.partition(".")
        scope = obj
        while scope is not None:
            # Names defined in or imported into each enclosing scope (class, module, package).
            members = scope.all_members if scope.is_class else scope.members
            if head in members:
                member = members[head]
                final = _final(member)
                base = final.path if final is not None else member.target_path
                candidates.append(f"{base}.{rest}" if rest else base)
            candidates.append(f"{scope.path}.{target}")
            scope = scope.parent
    for path in candidates:
        found = _lookup(collection, path)
        if found is not None:
            return found.path
    return None


def _link(title: str, identifier: str | None) -> str:
    code = f"<code>{html.escape(title, quote=False)}</code>"
    if identifier is None:
        return code
    return f'<autoref identifier="{identifier}" optional>{code}</autoref>'


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _split_grouped_params(text: str) -> str:
    """In parameter sections, ``a, b: description`` -> ``a: description`` and ``b: description``."""
    lines = text.split("\n")
    out: list[str] = []
    section_indent: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        indent = len(line) - len(line.lstrip())
        header = _SECTION.match(line)
        if header:
            section_indent = len(header.group("indent"))
        elif section_indent is not None and line.strip() and indent <= section_indent:
            section_indent = None  # the section ended
        grouped = _GROUPED.match(line) if section_indent is not None else None
        if grouped and indent > section_indent:
            block = [grouped.group("rest")]
            i += 1
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
                if not lines[i].strip() and (i + 1 >= len(lines) or _indent(lines[i + 1]) <= indent):
                    break  # a blank line that ends the entry
                block.append(lines[i])
                i += 1
            for name in grouped.group("names").split(","):
                out.append(grouped.group("indent") + name.strip() + block[0])
                out.extend(block[1:])
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


_BORDER = re.compile(r"^(?P<indent>\s*)=+(?:\s+=+)+\s*$")


def _columns(border: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"=+", border)]


def _cells(line: str, columns: list[tuple[int, int]]) -> list[str]:
    cells = []
    for k, (start, end) in enumerate(columns):
        stop = columns[k + 1][0] if k + 1 < len(columns) else len(line)
        cells.append(line[start:stop].strip())
    return cells


def _row(indent: str, cells: list[str]) -> str:
    return indent + "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _rst_tables(text: str) -> str:
    """reST simple tables -> Markdown tables (one header row)."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        top = _BORDER.match(lines[i])
        # A table: border, header line(s), border, rows, border.
        if top and i + 2 < len(lines) and lines[i + 2].strip() == lines[i].strip():
            indent, columns = top.group("indent"), _columns(lines[i])
            end = next((j for j in range(i + 3, len(lines)) if lines[j].strip() == lines[i].strip()), None)
            if end is not None:
                header = _cells(lines[i + 1], columns)
                rows: list[list[str]] = []
                for line in lines[i + 3:end]:
                    if not line.strip():
                        continue
                    cells = _cells(line, columns)
                    if rows and not cells[0]:  # continuation of the row above
                        rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells)]
                    else:
                        rows.append(cells)

                out.extend([_row(indent, header), indent + "|" + "|".join(" --- " for _ in columns) + "|"])
                out.extend(_row(indent, r) for r in rows)
                i = end + 1
                continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def _literal_blocks(text: str) -> str:
    """``paragraph::`` before an indented block -> ``paragraph:``; a lone ``::`` line is dropped."""
    lines = text.split("\n")
    out: list[str] = []
    for i, line in enumerate(lines):
        if line.rstrip().endswith("::") and not line.lstrip().startswith(".. "):
            following = next((n for n in lines[i + 1:] if n.strip()), "")
            indent = len(line) - len(line.lstrip())
            if len(following) - len(following.lstrip()) > indent:
                stripped = line.rstrip()[:-2].rstrip()
                if stripped.strip():
                    out.append(stripped + ":")
                continue
        out.append(line)
    return "\n".join(out)


HIDDEN = {"__post_init__"}
_BULLET = re.compile(r"^\s*[*-]\s+\S")


def _list_breaks(text: str) -> str:
    """A blank line before a bulleted list that starts right under a paragraph line (reST allows it)."""
    lines = text.split("\n")
    out: list[str] = []
    in_list = False
    in_fence = False
    for line in lines:
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        bullet = not in_fence and bool(_BULLET.match(line))
        if bullet and not in_list and out and out[-1].strip() and not out[-1].rstrip().endswith("\\"):
            out.append("")
        if bullet:
            in_list = True
        elif not line.strip():
            in_list = False
        out.append(line)
    return "\n".join(out)


def _display_math(text: str) -> str:
    """``.. math:: expr`` (with indented continuation lines) -> a ``\\[expr\\]`` block."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith(".. math::"):
            indent = line[: len(line) - len(stripped)]
            body = [stripped[len(".. math::"):].strip()]
            i += 1
            while i < len(lines) and lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) > len(indent):
                body.append(lines[i].strip())
                i += 1
            expr = " ".join(part for part in body if part)
            out.extend([f"{indent}\\[", f"{indent}{expr}", f"{indent}\\]"])
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


class SciMLDocstrings(griffe.Extension):
    """Rewrite grouped parameters, reST roles and math in every loaded docstring (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.resolved = 0
        self.unresolved: set[str] = set()

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        collection = loader.modules_collection
        for obj in _walk(pkg):
            if obj.name in HIDDEN and obj.parent is not None and obj.parent.is_class:
                obj.public = False
            doc = obj.docstring
            if doc is None:
                continue
            value = _list_breaks(_literal_blocks(_rst_tables(doc.value)))
            value = _display_math(_split_grouped_params(value))
            value = _MATH_ROLE.sub(lambda m: f"\\({m.group(1)}\\)", value)

            def role(match: re.Match, obj=obj) -> str:
                text = match.group(2)
                titled = _TITLED.match(text)
                if titled:
                    title, target = titled.group("title"), titled.group("target")
                else:
                    target = text
                    title = text.lstrip("~").rsplit(".", 1)[-1] if text.startswith("~") else text.lstrip(".")
                identifier = _resolve(obj, target, collection)
                if identifier is None:
                    self.unresolved.add(target)
                else:
                    self.resolved += 1
                return _link(title, identifier)

            doc.value = _ROLE.sub(role, value)


def _walk(obj: griffe.Object):
    yield obj
    for member in obj.members.values():
        if member.is_alias:
            continue
        yield from _walk(member)
