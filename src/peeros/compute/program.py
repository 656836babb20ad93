"""Static checks of a task before anything is queued; nothing here executes code.

A task is program source, the name of a function in it, and JSON args (SPEC §2). The
peer validates all three on submission so a typo is refused at once with a clear 400
instead of failing later in a worker process on another machine. The checks are
syntactic only (:func:`ast.parse`): whether the function *works* is for the sandbox.

:func:`program_hash` is the result-cache key: SHA-256 over a versioned, length-prefixed
encoding, so no two different (program, function, args) triples share an encoding.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import keyword
import warnings
from typing import Any

from peeros.errors import BadRequest, PayloadTooLarge

#: The largest program source accepted, in UTF-8 bytes.
MAX_PROGRAM_BYTES = 1024 * 1024

#: Prefix of the hashed encoding; bump it if the encoding ever changes.
_HASH_VERSION = b"peeros-task-v1\x00"

_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),  # before int: bool is a subclass of int
    (dict, "object"),
    (str, "string"),
    (int, "number"),
    (float, "number"),
    (type(None), "null"),
)


def validate_program(program: str, function: str) -> None:
    """Refuse a program that cannot possibly run ``function``.

    Raises :class:`PayloadTooLarge` over :data:`MAX_PROGRAM_BYTES`, else
    :class:`BadRequest` for an empty program, a syntax error (with its line), a
    function name that is not an identifier, or a function not bound at the top level
    of the module (``def``, ``class``, assignment, import, or inside a top-level
    ``if``/``try``). An ``async def`` is refused: workers call plain functions.
    """
    if not isinstance(program, str):
        raise BadRequest(f"program must be a string, got {_json_type(program)}")
    if not isinstance(function, str):
        raise BadRequest(f"function must be a string, got {_json_type(function)}")
    # len() in characters is a lower bound of the UTF-8 size: skip encoding huge input.
    size = len(program)
    if size <= MAX_PROGRAM_BYTES:
        size = len(program.encode("utf-8", "surrogatepass"))
    if size > MAX_PROGRAM_BYTES:
        raise PayloadTooLarge(
            f"program is {size:,} bytes; the limit is {MAX_PROGRAM_BYTES:,} bytes"
        )
    if not program.strip():
        raise BadRequest("program is empty")
    if not function.isidentifier() or keyword.iskeyword(function):
        raise BadRequest(f"function name {function!r} is not a valid Python identifier")
    tree = _parse(program)
    kind = _top_level_bindings(tree.body).get(function)
    if kind is None:
        raise BadRequest(f"function {function!r} is not defined at the top level of the program")
    if kind == "async":
        raise BadRequest(f"function {function!r} is async; tasks must be plain functions")


def _parse(program: str) -> ast.Module:
    try:
        # The source's own warnings (e.g. invalid escapes) are the task's business,
        # and must not become errors here when warnings are errors (as in tests).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(program, filename="<task>", mode="exec")
    except SyntaxError as exc:
        where = f"line {exc.lineno}: " if exc.lineno is not None else ""
        raise BadRequest(f"invalid program source: {where}{exc.msg}") from None
    except ValueError as exc:  # e.g. "source code string cannot contain null bytes"
        raise BadRequest(f"invalid program source: {exc}") from None
    except (RecursionError, MemoryError):
        raise BadRequest("invalid program source: nested too deeply") from None


def _top_level_bindings(body: list[ast.stmt]) -> dict[str, str]:
    """Map each name bound at module level to its kind: "plain" or "async".

    Later bindings override earlier ones, as they would at run time. Branches of a
    top-level ``if``/``try``/``with`` count: one of them binds the name.
    """
    found: dict[str, str] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            found[node.name] = "plain"
        elif isinstance(node, ast.AsyncFunctionDef):
            found[node.name] = "async"
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                found.update(dict.fromkeys(_target_names(target), "plain"))
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and node.value is not None:
            found.update(dict.fromkeys(_target_names(node.target), "plain"))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name != "*":
                    found[alias.asname or alias.name.split(".")[0]] = "plain"
        elif isinstance(node, ast.If):
            found.update(_top_level_bindings(node.body))
            found.update(_top_level_bindings(node.orelse))
        elif isinstance(node, ast.Try | ast.TryStar):
            handlers = [h.body for h in node.handlers]
            for block in (node.body, *handlers, node.orelse, node.finalbody):
                found.update(_top_level_bindings(block))
        elif isinstance(node, ast.With):
            found.update(_top_level_bindings(node.body))
    return found


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [name for elt in target.elts for name in _target_names(elt)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []  # attribute or subscript targets bind no name


def validate_args(args: Any) -> list[Any]:
    """Return ``args`` as a list, or refuse anything that is not a JSON array.

    A tuple is accepted as a list (the Python API passes ``*args``). The values must
    be JSON-serialisable: they travel to a worker, perhaps on another peer.
    """
    if isinstance(args, tuple):
        args = list(args)
    if not isinstance(args, list):
        raise BadRequest(f"args must be a JSON list, got {_json_type(args)}")
    _json_text(args, _STRICT)
    return args


def parse_args_text(text: str) -> list[Any]:
    """Parse the CLI's ``--args '[5]'`` into a list of arguments."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"args are not valid JSON: {exc}") from None
    return validate_args(value)


def program_hash(program: str, function: str, args: list[Any]) -> str:
    """SHA-256 hex of (program, function, args): the key of the result cache.

    Each part is length-prefixed so that boundaries cannot shift between parts; args
    are canonical JSON (sorted keys, no spaces) so equal args hash equally.
    """
    digest = hashlib.sha256(_HASH_VERSION)
    for part in (program, function, _canonical_json(args)):
        data = part.encode("utf-8", "surrogatepass")
        digest.update(b"%d:" % len(data))
        digest.update(data)
    return digest.hexdigest()


def code_hash(program: str, function: str) -> str:
    """:func:`program_hash` without args: how history and SJF key a program (batches
    repeat one program thousands of times, so programs up to 64 KiB are cached)."""
    if len(program) > 65_536:
        return program_hash(program, function, [])
    return _cached_code_hash(program, function)


@functools.lru_cache(maxsize=256)
def _cached_code_hash(program: str, function: str) -> str:
    return program_hash(program, function, [])


#: JSON as a worker is handed it (any key order), and canonical JSON (sorted keys) for
#: the cache key; encoders made once (``json.dumps`` with options builds one per call).
_STRICT = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
_CANONICAL = json.JSONEncoder(allow_nan=False, separators=(",", ":"), sort_keys=True)


def _canonical_json(args: list[Any]) -> str:
    return _json_text(args, _CANONICAL)


def _json_text(args: list[Any], encoder: json.JSONEncoder) -> str:
    try:
        return encoder.encode(args)
    except ValueError as exc:  # (a worker could not be handed them: refused before queuing)
        raise BadRequest(f"args must be JSON: NaN and Infinity are not ({exc})") from None
    except TypeError as exc:
        raise BadRequest(f"args must be JSON-serialisable: {exc}") from None


def _json_type(value: Any) -> str:
    for cls, name in _JSON_TYPES:
        if isinstance(value, cls):
            return name
    return type(value).__name__
