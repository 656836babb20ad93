"""Specification of safe stored-file names (peeros.files.names)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from peeros.files.names import InvalidFileName, check_filename, join_resolved, safe_join


@pytest.mark.parametrize(
    "name",
    ["a.txt", "-rf", " spaced name ", ".hidden", "..dots", "é" * 127, "x" * 255, "日本語.md"],
)
def test_accepts_ordinary_names(name: str) -> None:
    assert check_filename(name) == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        (".", "'.'"),
        ("..", "'..'"),
        ("../etc/passwd", "'/'"),
        ("/etc/passwd", "'/'"),
        ("a/b", "'/'"),
        ("..\\windows", "'\\\\\\\\'"),
        ("a\\b", "'\\\\\\\\'"),
        ("a\x00b", "NUL"),
        ("line\nbreak", "U\\+000A"),
        ("tab\there", "U\\+0009"),
        ("del\x7f", "U\\+007F"),
        ("c1\x85", "U\\+0085"),
        ("sep\u2028", "U\\+2028"),
        ("   ", "whitespace"),
        ("x" * 256, "256 bytes"),
        ("é" * 128, "256 bytes"),
        ("\udc80", "surrogate"),
        (".part-abc", "reserved"),
    ],
)
def test_refuses_unsafe_names_and_says_why(name: str, problem: str) -> None:
    with pytest.raises(InvalidFileName, match=problem):
        check_filename(name)


def test_invalid_file_name_is_a_value_error() -> None:
    assert issubclass(InvalidFileName, ValueError)


def test_safe_join_stays_directly_inside_root(tmp_path: Path) -> None:
    assert safe_join(tmp_path, "a.txt") == tmp_path.resolve() / "a.txt"
    for bad in ("..", "../x", "sub/x", "/etc/passwd"):
        with pytest.raises(InvalidFileName):
            safe_join(tmp_path, bad)


def test_safe_join_refuses_symlink_escaping_root(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    os.symlink(tmp_path, root / "escape")
    with pytest.raises(InvalidFileName, match="outside"):
        safe_join(root, "escape")


def test_safe_join_resolves_a_relative_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert safe_join(Path("."), "f") == tmp_path.resolve() / "f"


def test_join_resolved_is_safe_join_for_a_resolved_root(tmp_path: Path) -> None:
    root = (tmp_path / "store").resolve()
    root.mkdir()
    (root / "real").write_bytes(b"x")
    os.symlink(root / "real", root / "inside")
    os.symlink(tmp_path, root / "escape")
    for name in ("a.txt", "real", "inside"):
        assert join_resolved(root, name) == safe_join(root, name)
    assert join_resolved(root, "inside") == root / "real"
    with pytest.raises(InvalidFileName, match="outside"):
        join_resolved(root, "escape")
    with pytest.raises(InvalidFileName):
        join_resolved(root, "../x")
