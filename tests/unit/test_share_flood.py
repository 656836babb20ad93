"""Flooding decisions: line and ring topologies, duplicate suppression, TTL, neighbours."""

from __future__ import annotations

from collections import Counter, deque

from peeros.share.flood import Decision, Neighbours, SeenCache, decide, matches


def line(n: int) -> dict[str, list[str]]:
    return {f"p{i}": [f"p{j}" for j in (i - 1, i + 1) if 0 <= j < n] for i in range(n)}


def ring(n: int) -> dict[str, list[str]]:
    return {f"p{i}": sorted({f"p{(i - 1) % n}", f"p{(i + 1) % n}"}) for i in range(n)}


def flood(graph: dict[str, list[str]], origin: str, ttl: int) -> tuple[set[str], Counter[str], int]:
    """Deliver one query through ``graph`` with :func:`decide` at every peer.

    Returns the peers that answered, how often each forwarded, and the messages sent."""
    seen = {p: SeenCache() for p in graph}
    answered: set[str] = set()
    forwards: Counter[str] = Counter()
    first = decide(seen[origin], "q", ttl, None, graph[origin], 0.0)
    queue = deque((t, origin, first.ttl) for t in first.forward_to)
    messages = len(queue)
    while queue:
        peer, sender, t = queue.popleft()
        d = decide(seen[peer], "q", t, sender, graph[peer], 0.0)
        if d.answer:
            answered.add(peer)
        if d.forward_to:
            forwards[peer] += 1
        messages += len(d.forward_to)
        queue.extend((n, peer, d.ttl) for n in d.forward_to)
    return answered, forwards, messages


def test_a_line_is_covered_exactly_up_to_the_ttl() -> None:
    g = line(6)
    for ttl in range(1, 8):
        answered, forwards, messages = flood(g, "p0", ttl)
        assert answered == {f"p{i}" for i in range(1, min(ttl, 5) + 1)}
        assert max(forwards.values(), default=0) <= 1
        assert messages == min(ttl, 5)


def test_a_ring_is_covered_from_both_sides_and_duplicates_stop() -> None:
    g = ring(6)
    answered, forwards, messages = flood(g, "p0", 2)
    assert answered == {"p1", "p2", "p4", "p5"}
    answered, forwards, messages = flood(g, "p0", 7)
    assert answered == {"p1", "p2", "p3", "p4", "p5"}
    assert set(forwards.values()) == {1}  # nobody forwards one id twice
    # each of the 6 links carries the query at most once in each direction
    assert messages <= 2 * 6


def test_decide_rules() -> None:
    seen = SeenCache()
    assert decide(seen, "a", 3, "x", ["x", "y", "z"], 0.0) == Decision(False, True, ("y", "z"), 2)
    assert decide(seen, "a", 3, "y", ["x", "y", "z"], 0.0) == Decision(True, False)
    assert decide(seen, "b", 1, "x", ["x", "y"], 0.0) == Decision(False, True, (), 0)
    assert decide(seen, "c", 2, None, ["x", "y"], 0.0) == Decision(False, False, ("x", "y"), 2)


def test_seen_cache_is_bounded_and_expires() -> None:
    seen = SeenCache(capacity=2, ttl=10.0)
    assert seen.add("a", 0.0) and seen.add("b", 0.0) and not seen.add("a", 1.0)
    assert seen.add("c", 1.0) and len(seen) == 2  # "a" forgotten to make room
    assert seen.add("a", 1.0)
    assert seen.add("d", 20.0) and len(seen) == 1  # the rest expired


def test_matches() -> None:
    assert matches("Song.mp3", "Song.mp3", "exact") and not matches("Song.mp3", "song", "exact")
    assert matches("Song.mp3", "song", "substring")
    assert matches("Song.mp3", "*.mp3", "glob") and not matches("Song.mp3", "*.MP3", "glob")


def test_dead_neighbours_are_dropped_and_replaced_from_their_lists() -> None:
    n = Neighbours.configured("a", ["b"], dead_after=3.0)
    assert n.to_greet(0.0) == ["b"] and n.alive(0.0) == []
    n.heard("b", ["a", "c"], 1.0)
    assert n.alive(1.0) == ["b"]
    assert n.to_greet(2.0) == ["b"]  # one live neighbour, as many as configured
    # b goes silent: it leaves the live list, c (from b's list) is tried instead
    assert n.alive(5.0) == []
    assert n.to_greet(5.0) == ["b", "c"]
    n.heard("c", ["d"], 5.5)
    assert n.alive(6.0) == ["c"]
    # b comes back (it is configured, so it is still greeted)
    n.heard("b", ["a"], 7.0)
    assert n.alive(7.0) == ["b", "c"]
    # a learned neighbour that dies is forgotten entirely
    n.heard("b", ["a"], 12.0)
    assert n.to_greet(12.0) == ["b"] and "c" not in n.links


def test_a_learned_neighbour_that_never_answers_is_forgotten() -> None:
    n = Neighbours.configured("a", ["b"], dead_after=3.0)
    n.heard("b", ["x"], 0.0)
    n.to_greet(0.0)
    assert n.to_greet(4.0) == ["b", "x"]
    assert n.links["x"].since == 4.0
    # silent past dead_after: forgotten, then tried afresh (b's list still names it)
    assert n.to_greet(8.0) == ["b", "x"] and n.links["x"].since == 8.0
