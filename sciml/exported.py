"""``load_exported``: open a :meth:`Surrogate.export <sciml.surrogate.Surrogate.export>` program without
letting the file run code.

``torch.export.load`` trusts its file: a ``.pt2`` archive can mark a weight or constant ``use_pickle``
(unpickled with ``weights_only=False``), carry sample inputs that fall back to a full unpickle, pickled or
TorchBind objects, compiled AOTInductor libraries, symbolic-shape expressions that ``sympy.sympify``
evaluates, guard code that ``ExportedProgram.module()`` executes, and node or tensor names that are pasted
into the Python source it generates. Each of these runs code chosen by whoever wrote the file.

:func:`load_exported` reads the archive into memory, checks it with the archive reader torch uses (an
allowlist: only the entries a plain program has, weights and constants as raw tensor bytes, sample inputs
that load with ``weights_only=True``, known operators, names that are identifiers, expressions and guards
made only of arithmetic, comparisons and known functions) and only then hands those same bytes to
``torch.export.load``. What ``Surrogate.export`` writes always passes.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import json
import os
import re
from pathlib import Path

import torch

from ._atomic import is_partial, partial_message
from .errors import DataError

__all__ = ["load_exported"]

_ENTRIES = re.compile(r"archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id|models/model\.json"
                      r"|data/sample_inputs/model\.pt|data/(weights/model_weights|constants/model_constants)_config\.json"
                      r"|data/weights/weight_\d+|data/constants/tensor_\d+")
_CONFIGS = {"data/weights/model_weights_config.json": "weight_", "data/constants/model_constants_config.json": "tensor_"}
_SAMPLE_INPUTS = "data/sample_inputs/model.pt"
_DOTTED = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*|")
# Strings inside expressions: symbol names and numbers (sympy's Min/Max sympify a string argument, i.e. eval it)
_SAFE_STRING = re.compile(r"(?!.*__)[A-Za-z]\w*|[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|nan)")
_OPERATORS = {"add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos", "abs", "eq", "ne", "lt", "le", "gt",
              "ge", "and_", "or_", "xor", "not_", "invert", "lshift", "rshift", "getitem", "truth"}
_REFUSED_ATEN = {"from_file"}  # maps a file of the loader's choosing into a tensor
_TARGET = re.compile(r"torch\.ops\.aten\.(?P<aten>\w+)(\.\w+)?|_operator\.(?P<operator>\w+)|torch\.sym_\w+|math\.[a-z]\w*")
_GUARD_METHODS = {"size", "stride", "storage_offset", "dim", "numel"}
_GUARD_NAMES = {"L", "IsNonOverlappingAndDenseIndicator", "cast_symbool_to_symint_guardless"}
_ARITHMETIC = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.operator, ast.unaryop, ast.boolop,
               ast.cmpop, ast.Load)


class _Refused(Exception):
    pass


@functools.lru_cache(maxsize=1)
def _sympy_names() -> frozenset[str]:
    """Names a symbolic-shape expression may use: sympy's expression classes and singletons, torch's sympy functions."""
    import sympy
    import torch.utils._sympy.functions as functions

    classes = {name for module in (sympy, functions) for name, obj in vars(module).items()
               if isinstance(obj, type) and issubclass(obj, sympy.Basic)}
    return frozenset(classes | {"oo", "zoo", "nan", "true", "false", "pi", "E", "I", "int_oo"})


def _check_expression(text: str, *, guard: bool) -> None:
    """Refuse ``text`` unless it is arithmetic on constants, symbols and allowed calls (a sympy ``srepr``, or a guard)."""
    if not isinstance(text, str) or "#" in text or "\n" in text:
        raise _Refused(f"expression {text!r} is not a one-line expression")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, RecursionError, ValueError):
        raise _Refused(f"expression {text[:80]!r} does not parse") from None
    names = _GUARD_NAMES if guard else _sympy_names()
    for node in ast.walk(tree):
        if isinstance(node, _ARITHMETIC):
            continue
        if isinstance(node, ast.Constant) and (isinstance(node.value, (bool, int, float, type(None)))
                                               or (isinstance(node.value, str) and _SAFE_STRING.fullmatch(node.value))):
            continue
        if isinstance(node, ast.Name) and (node.id in names or node.id in {"True", "False", "None"}
                                           or (guard and node.id in {"torch", "math"})):
            continue
        if isinstance(node, ast.keyword) and not guard and node.arg and not node.arg.startswith("_"):
            continue
        if isinstance(node, ast.Call) and (guard or isinstance(node.func, ast.Name)):
            continue
        if guard and isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            continue
        if guard and isinstance(node, ast.Attribute) and (
                node.attr in _GUARD_METHODS
                or (isinstance(node.value, ast.Name) and node.value.id == "torch" and node.attr.startswith("sym_"))
                or (isinstance(node.value, ast.Name) and node.value.id == "math" and not node.attr.startswith("_"))):
            continue
        raise _Refused(f"expression {text[:80]!r} contains {ast.unparse(node)[:40]!r}, which is not arithmetic")
    if guard:  # torch / math only as torch.sym_* / math.f: never the module object itself
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.Name) and child.id in {"torch", "math"} and not isinstance(node, ast.Attribute):
                    raise _Refused(f"expression {text[:80]!r} uses the module {child.id!r} itself")


def _check_target(target: object) -> None:
    match = _TARGET.fullmatch(target) if isinstance(target, str) else None
    if (match is None or match["aten"] in _REFUSED_ATEN
            or (match["operator"] is not None and match["operator"] not in _OPERATORS)):
        raise _Refused(f"operator {target!r} is not a plain tensor or arithmetic operation")


def _check_program(node: object, key: str | None = None) -> None:
    """Walk the program's JSON: names are identifiers, dotted names dotted, expressions arithmetic, operators known."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "metadata":  # stack traces and module paths: text, never code
                continue
            if k in ("tensor_values", "sym_int_values", "sym_float_values", "sym_bool_values", "custom_obj_values"):
                for name in v:
                    _check_program(name, "name")
            if k == "guards_code":
                for guard in v:
                    _check_expression(guard, guard=True)
                continue
            _check_program(v, k)
    elif isinstance(node, list):
        for item in node:
            _check_program(item, key)
    elif isinstance(node, str):
        if key == "expr_str":
            _check_expression(node, guard=False)
        elif key in ("target", "as_operator"):
            _check_target(node)
        elif key in ("name", "as_name") or (key or "").endswith("_names"):
            if not node.isidentifier():
                raise _Refused(f"name {node!r} is not an identifier")
        elif (key or "").endswith("_name") or key == "fqn":
            if not _DOTTED.fullmatch(node):
                raise _Refused(f"name {node!r} is not a dotted name")


def _check_archive(data: bytes) -> None:
    from torch.export.pt2_archive import PT2ArchiveReader

    with PT2ArchiveReader(io.BytesIO(data)) as reader:
        names = reader.get_file_names()
        if len(set(names)) != len(names):
            raise _Refused("the archive lists an entry twice")
        for name in names:
            if not _ENTRIES.fullmatch(name):
                raise _Refused(f"entry {name!r} is not part of a plain exported program (pickles, compiled code "
                               "and extra files are refused)")
        for config_name, prefix in _CONFIGS.items():
            config = json.loads(reader.read_string(config_name)) if config_name in names else {"config": {}}
            for fqn, meta in config["config"].items():
                if not _DOTTED.fullmatch(fqn):
                    raise _Refused(f"{config_name} names tensor {fqn!r}, not a dotted name")
                if (meta.get("use_pickle") is not False or meta.get("tensor_meta") is None
                        or not re.fullmatch(rf"{prefix}\d+", str(meta.get("path_name")))):
                    raise _Refused(f"{config_name} stores {fqn!r} as a pickled object, not raw tensor bytes "
                                   "(torch would unpickle it with weights_only=False)")
        if _SAMPLE_INPUTS in names:
            try:
                torch.load(io.BytesIO(reader.read_bytes(_SAMPLE_INPUTS)), weights_only=True)
            except Exception:  # torch.export.load would retry with weights_only=False
                raise _Refused(f"{_SAMPLE_INPUTS} is not plain tensors "
                               "(torch would unpickle it with weights_only=False)") from None
        _check_program(json.loads(reader.read_string("models/model.json")))


def load_exported(path: str | os.PathLike, *, sha256: str | None = None) -> torch.export.ExportedProgram:
    """Load a ``.pt2`` program written by :meth:`Surrogate.export <sciml.surrogate.Surrogate.export>`, safely.

    Like ``torch.export.load(path)`` (call ``.module()`` on the result to run it), but the archive is
    checked first and refused, with nothing unpickled or executed, unless it holds a plain program: see
    this module's docstring. ``sha256``: the hex digest the file must have (from ``path.sha256`` beside the
    export, or the surrogate's ``provenance["export"]``, received from someone you trust).

    Raises:
        DataError: one line naming the file and what was refused, or why it does not load.
    """
    path = Path(path)
    if is_partial(path):
        raise DataError(partial_message(path))
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read it ({err.strerror}); check the path and its permissions") from None
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and digest != sha256.strip().lower():
        raise DataError(f"{path}: SHA-256 {digest} differs from the expected {sha256}; this is not the exported file")
    try:
        _check_archive(data)
    except _Refused as err:
        raise DataError(f"{path}: refused to load: {err}; load only programs written by Surrogate.export") from None
    except Exception as err:  # not a zip, a record missing, JSON that does not parse: all "not an export"
        raise DataError(f"{path}: not an exported program ({type(err).__name__}: {_first_line(err)})") from None
    try:
        return torch.export.load(io.BytesIO(data))
    except Exception as err:
        raise DataError(f"{path}: the exported program does not load ({type(err).__name__}: {_first_line(err)})") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:200]

