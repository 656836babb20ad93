"""The replication planner: given files and live peers, the exact copies to make."""

from __future__ import annotations

from peeros.tracker.replication import CopyInstruction, OwnedFile, choose_holders, plan


def test_choose_holders_skips_the_owner_and_prefers_the_least_loaded() -> None:
    live = ["a", "b", "c", "d"]
    assert choose_holders(live, {"a"}, 2) == ["b", "c"]
    assert choose_holders(live, {"a"}, 2, {"b": 3, "c": 1}) == ["d", "c"]
    assert choose_holders(live, {"a"}, 5) == ["b", "c", "d"]  # too few: the caller decides


def test_nothing_to_do_when_every_file_has_its_replicas() -> None:
    files = [OwnedFile("o", "f", ("a", "b"))]
    assert plan(files, ["o", "a", "b", "c"], factor=2) == []


def test_a_dead_holder_is_replaced_from_a_survivor() -> None:
    files = [OwnedFile("o", "f", ("a", "b"))]
    assert plan(files, ["o", "a", "c", "d"], factor=2) == [CopyInstruction("o", "f", "a", "c")]


def test_new_holders_are_never_the_owner_or_a_holder_and_load_is_spread() -> None:
    files = [OwnedFile("o", "f1", ("a", "b")), OwnedFile("o", "f2", ("a", "b"))]
    got = plan(files, ["o", "a", "c", "d"], factor=2)
    assert got == [CopyInstruction("o", "f1", "a", "c"), CopyInstruction("o", "f2", "a", "d")]


def test_a_file_keeps_its_own_replica_count() -> None:
    files = [OwnedFile("o", "f", ("a", "b", "c"), replicas=3)]
    got = plan(files, ["o", "a", "d", "e"], factor=2)
    assert got == [CopyInstruction("o", "f", "a", "d"), CopyInstruction("o", "f", "a", "e")]


def test_a_file_without_a_live_holder_cannot_be_repaired() -> None:
    assert plan([OwnedFile("o", "f", ("a", "b"))], ["o", "c", "d"], factor=2) == []


def test_too_few_peers_copies_what_it_can() -> None:
    files = [OwnedFile("o", "f", ("a", "b", "c"), replicas=3)]
    assert plan(files, ["o", "a", "d"], factor=3) == [CopyInstruction("o", "f", "a", "d")]
