"""The replication planner, as a specification of its decisions."""

from __future__ import annotations

from peeros.share.replication import Held, Replicate, plan


def held(peer: str, sha: str) -> Held:
    return Held(peer, sha, f"{sha}.bin", 10)


def test_a_lone_file_gets_one_more_copy_on_the_least_loaded_peer() -> None:
    index = [held("a", "s1"), held("b", "s2"), held("b", "s3")]
    got = plan(index, ["a", "b", "c"], factor=2)
    assert got == [
        Replicate("c", "s1", "s1.bin", 10, ("a",)),
        Replicate("a", "s2", "s2.bin", 10, ("b",)),
        Replicate("c", "s3", "s3.bin", 10, ("b",)),
    ]


def test_enough_copies_means_nothing_to_do() -> None:
    assert plan([held("a", "s"), held("b", "s")], ["a", "b", "c"], factor=2) == []
    assert plan([held("a", "s")], ["a", "b"], factor=1) == []


def test_a_dead_holder_does_not_count_and_is_not_a_source() -> None:
    index = [held("a", "s"), held("b", "s")]
    assert plan(index, ["a", "c"], factor=2) == [Replicate("c", "s", "s.bin", 10, ("a",))]


def test_no_live_holder_no_instruction() -> None:
    assert plan([held("a", "s")], ["b", "c"], factor=2) == []


def test_copies_in_flight_count() -> None:
    assert plan([held("a", "s")], ["a", "b", "c"], 2, in_flight=[("b", "s")]) == []
    # a copy promised by a peer that has died since does not count
    got = plan([held("a", "s")], ["a", "c"], 2, in_flight=[("b", "s")])
    assert got == [Replicate("c", "s", "s.bin", 10, ("a",))]


def test_factor_three_and_too_few_peers() -> None:
    got = plan([held("a", "s")], ["a", "b"], factor=3)
    assert got == [Replicate("b", "s", "s.bin", 10, ("a",))]
