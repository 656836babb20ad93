"""Static validation of task programs and args; the result-cache key."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peeros.compute.program import (
    MAX_PROGRAM_BYTES,
    parse_args_text,
    program_hash,
    validate_args,
    validate_program,
)
from peeros.errors import BadRequest, PayloadTooLarge


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


@pytest.mark.parametrize(
    ("program", "function"),
    [
        ("def main(x): return x * x", "main"),
        ("f = lambda x: x", "f"),
        ("from math import sqrt as f", "f"),
        ("import math", "math"),
        ("import os.path", "os"),
        ("class Job:\n    def __call__(self): ...", "Job"),
        ("a, (b, *f) = 1, (2, 3)", "f"),
        ("f: object = len", "f"),
        (
            src("""
            import sys
            if sys.version_info >= (3, 11):
                def f(): return 1
            else:
                f = None
            """),
            "f",
        ),
        (
            src("""
            try:
                from fast import f
            except ImportError:
                def f(): return 0
            """),
            "f",
        ),
        ("async def f(): ...\ndef f(): return 1", "f"),  # the later binding wins
    ],
)
def test_accepts_functions_bound_at_top_level(program: str, function: str) -> None:
    validate_program(program, function)


@pytest.mark.parametrize(
    ("program", "function", "message"),
    [
        ("", "main", "program is empty"),
        ("  \n\t\n", "main", "program is empty"),
        ("def main(x): return x", "", "function name '' is not a valid Python identifier"),
        ("def main(x): return x", "a-b", "function name 'a-b' is not a valid Python identifier"),
        ("def main(x): return x", "def", "function name 'def' is not a valid Python identifier"),
        ("def main(x): return x", "foo", "function 'foo' is not defined at the top level"),
        ("def outer():\n    def foo(): ...\n", "foo", "function 'foo' is not defined"),
        ("class C:\n    def foo(self): ...\n", "foo", "function 'foo' is not defined"),
        ("from math import *", "sqrt", "function 'sqrt' is not defined"),
        ("foo: int", "foo", "function 'foo' is not defined"),  # annotation binds nothing
        ("async def f(): ...", "f", "function 'f' is async; tasks must be plain functions"),
        ("def main(x):\n    return x\n\ndef (:\n", "main", "invalid program source: line 4: "),
        ("x = 1\0", "x", "invalid program source"),
    ],
)
def test_refuses_with_a_clear_message(program: str, function: str, message: str) -> None:
    with pytest.raises(BadRequest) as err:
        validate_program(program, function)
    assert err.value.message.startswith(message)


def test_syntax_error_names_line_and_message() -> None:
    with pytest.raises(BadRequest) as err:
        validate_program("def main(x):\n    return x\nx ==== 2\n", "main")
    assert err.value.message == "invalid program source: line 3: invalid syntax"


def test_source_warnings_are_not_errors() -> None:
    validate_program('def main(): return "\\d"', "main")  # invalid escape: only a warning


def test_program_over_the_limit_is_too_large() -> None:
    validate_program("x = 1\n" + "#" * (MAX_PROGRAM_BYTES - 6), "x")  # exactly at the limit
    with pytest.raises(PayloadTooLarge, match="limit is 1,048,576 bytes"):
        validate_program("x = 1\n" + "#" * (MAX_PROGRAM_BYTES - 5), "x")
    with pytest.raises(PayloadTooLarge):  # counted in UTF-8 bytes, not characters
        validate_program("x = 1\n#" + "é" * (MAX_PROGRAM_BYTES // 2), "x")


def test_non_string_inputs_are_refused() -> None:
    with pytest.raises(BadRequest, match="program must be a string, got number"):
        validate_program(5, "f")  # type: ignore[arg-type]
    with pytest.raises(BadRequest, match="function must be a string, got null"):
        validate_program("f = 1", None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "kind"),
    [({"x": 1}, "object"), ("[5]", "string"), (5, "number"), (True, "boolean"), (None, "null")],
)
def test_args_must_be_a_list(value: Any, kind: str) -> None:
    with pytest.raises(BadRequest) as err:
        validate_args(value)
    assert err.value.message == f"args must be a JSON list, got {kind}"


def test_args_list_or_tuple_accepted() -> None:
    assert validate_args([5, {"a": [1]}]) == [5, {"a": [1]}]
    assert validate_args((1, 2)) == [1, 2]
    with pytest.raises(BadRequest, match="JSON-serialisable"):
        validate_args([{1, 2}])


def test_parse_args_text() -> None:
    assert parse_args_text("[5]") == [5]
    assert parse_args_text(' [1, "a", null] ') == [1, "a", None]
    with pytest.raises(BadRequest, match=r"^args are not valid JSON: "):
        parse_args_text("[5")
    with pytest.raises(BadRequest, match=r"^args must be a JSON list, got object$"):
        parse_args_text('{"x": 5}')
    with pytest.raises(BadRequest, match=r"^args must be a JSON list, got number$"):
        parse_args_text("5")


def test_program_hash_is_stable_and_canonical() -> None:
    h = program_hash("def main(x): return x", "main", [{"b": 1, "a": 2}])
    assert len(h) == 64 and int(h, 16) >= 0
    assert h == program_hash("def main(x): return x", "main", [{"a": 2, "b": 1}])
    assert h != program_hash("def main(x): return x", "main", [{"a": 2, "b": 3}])
    assert h != program_hash("def main(x): return x ", "main", [{"a": 2, "b": 1}])


def test_program_hash_boundaries_cannot_shift() -> None:
    assert program_hash("ab", "c", []) != program_hash("a", "bc", [])


texts = st.text(max_size=30)


@given(texts, texts, texts, texts)
def test_program_hash_distinguishes_distinct_parts(p1: str, f1: str, p2: str, f2: str) -> None:
    same = (p1, f1) == (p2, f2)
    assert (program_hash(p1, f1, [1]) == program_hash(p2, f2, [1])) == same
