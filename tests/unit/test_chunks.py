"""The order an origin sends a placed batch in: every peer's small first chunk before
anyone's second, then the rest round-robin, every task exactly once and in order."""

from __future__ import annotations

from peeros.compute.chunks import plan


def test_every_peer_gets_a_small_first_chunk_before_anyone_gets_a_second() -> None:
    groups = {"a": list(range(1700)), "b": list(range(50)), "c": list(range(1200))}
    chunks = plan(groups, size=500, first=100)
    assert [(p, len(c)) for p, c in chunks] == [
        ("a", 100),
        ("b", 50),
        ("c", 100),
        ("a", 500),
        ("c", 500),
        ("a", 500),
        ("c", 500),
        ("a", 500),
        ("c", 100),
        ("a", 100),
    ]
    for peer, tasks in groups.items():  # each task once, in its order
        assert [t for p, c in chunks if p == peer for t in c] == tasks


def test_empty_and_tiny_groups() -> None:
    assert plan({}) == []
    assert plan({"a": []}) == []
    assert plan({"a": [1, 2]}, size=500, first=100) == [("a", [1, 2])]
