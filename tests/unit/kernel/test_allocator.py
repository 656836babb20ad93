"""Contiguous allocation, specified by Silberschatz et al., OSC 10e §9.2.2 and Tanenbaum §3.2.3."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peeros.kernel.allocator import (
    POLICIES,
    AllocationError,
    Allocator,
    Block,
    DuplicateBlock,
    Hole,
    InvalidRequest,
    NoFit,
    UnknownBlock,
    simulate,
)

# OSC §9.2.2 exercise: holes of 100, 500, 200, 300, 600 (in address order), requests of
# 212, 417, 112, 426. simulate() lays hole i out at sum(holes[:i]) + i, so the holes start
# at 0, 101, 602, 803 and 1104 (one allocated unit separates neighbours).
HOLES = [100, 500, 200, 300, 600]
REQUESTS = [212, 417, 112, 426]


def placed(hole_index: int, hole_size: int, start: int, request: int) -> dict[str, int]:
    return {"request": request, "hole_index": hole_index, "hole_size": hole_size, "start": start}


class TestTextbookExercise:
    def test_first_fit(self) -> None:
        assert simulate("first", HOLES, REQUESTS) == {
            "policy": "first",
            "placements": [
                placed(1, 500, 101, 212),
                placed(4, 600, 1104, 417),
                placed(1, 288, 313, 112),  # the remainder of the 500 hole
                None,  # 426 must wait: the largest hole left is 300
            ],
            "final_holes": [100, 176, 200, 300, 183],
        }

    def test_best_fit(self) -> None:
        assert simulate("best", HOLES, REQUESTS)["placements"] == [
            placed(3, 300, 803, 212),
            placed(1, 500, 101, 417),
            placed(2, 200, 602, 112),
            placed(4, 600, 1104, 426),
        ]
        assert simulate("best", HOLES, REQUESTS)["final_holes"] == [100, 83, 88, 88, 174]

    def test_worst_fit(self) -> None:
        assert simulate("worst", HOLES, REQUESTS)["placements"] == [
            placed(4, 600, 1104, 212),
            placed(1, 500, 101, 417),
            placed(4, 388, 1316, 112),
            None,  # holes left: 100, 83, 200, 300, 276
        ]

    def test_next_fit(self) -> None:
        # Derived by hand. The rover starts at address 0.
        # 212: 100 is too small, 500 fits -> placed at 101; rover = 313 (inside the 288 left).
        # 417: from the rover: 288, 200, 300 too small, 600 fits -> 1104; rover = 1521.
        # 112: from the rover: the 183 left of the 600 hole fits -> 1521; rover = 1633.
        # 426: 71 left, then wrap to 100, 288, 200, 300: nothing fits -> it must wait.
        # Unlike first fit, 112 went to the high end, leaving the 288 hole intact.
        assert simulate("next", HOLES, REQUESTS) == {
            "policy": "next",
            "placements": [
                placed(1, 500, 101, 212),
                placed(4, 600, 1104, 417),
                placed(4, 183, 1521, 112),
                None,
            ],
            "final_holes": [100, 288, 200, 300, 71],
        }

    def test_bad_simulation_input(self) -> None:
        with pytest.raises(InvalidRequest, match="unknown policy 'quick'"):
            simulate("quick", HOLES, REQUESTS)
        with pytest.raises(InvalidRequest, match=r"holes\[1\] must be a positive integer"):
            simulate("first", [100, 0], REQUESTS)
        with pytest.raises(InvalidRequest, match=r"requests\[0\] must be a positive integer"):
            simulate("first", HOLES, [-5])


def four_blocks() -> Allocator:
    pool = Allocator(100)
    for name, size in [("a", 10), ("b", 20), ("c", 30), ("d", 40)]:
        pool.allocate(name, size)
    return pool


class TestSplittingAndCoalescing:
    def test_a_request_takes_the_low_end_of_the_hole(self) -> None:
        pool = Allocator(100)
        assert pool.allocate("a", 30) == Block(start=0, size=30, name="a")
        assert pool.holes() == [Hole(start=30, size=70)]

    def test_freeing_the_middle_block_merges_with_both_neighbours(self) -> None:
        pool = four_blocks()
        pool.free("a")
        pool.free("c")
        assert pool.holes() == [Hole(0, 10), Hole(30, 30)]
        pool.free("b")
        assert pool.holes() == [Hole(0, 60)]
        assert [b.name for b in pool.blocks()] == ["d"]

    def test_no_fit_until_a_free_coalesces_a_large_enough_hole(self) -> None:
        pool = Allocator(100)
        pool.allocate("a", 30)
        pool.allocate("b", 40)
        pool.allocate("c", 30)
        pool.free("a")
        pool.free("c")  # 60 free, but in two holes of 30
        with pytest.raises(NoFit, match="largest hole 30, free 60") as caught:
            pool.allocate("big", 50)
        assert (caught.value.requested, caught.value.largest_free) == (50, 30)
        pool.free("b")
        assert pool.allocate("big", 50) == Block(0, 50, "big")

    def test_stats_report_external_fragmentation(self) -> None:
        pool = four_blocks()
        pool.free("a")
        pool.free("c")
        # free = 40 in holes of 10 and 30: 100 * (1 - 30/40) = 25 %
        assert pool.stats() == {
            "total": 100,
            "used": 60,
            "free": 40,
            "largest_free": 30,
            "hole_count": 2,
            "external_fragmentation_pct": 25.0,
        }
        assert Allocator(10).stats()["external_fragmentation_pct"] == 0.0
        full = Allocator(10)
        full.allocate("x", 10)
        assert full.stats()["external_fragmentation_pct"] == 0.0  # free == 0

    def test_the_memory_map_lists_segments_in_address_order(self) -> None:
        pool = four_blocks()
        pool.free("b")
        assert pool.to_dict()["segments"] == [
            {"kind": "block", "name": "a", "start": 0, "size": 10},
            {"kind": "hole", "start": 10, "size": 20},
            {"kind": "block", "name": "c", "start": 30, "size": 30},
            {"kind": "block", "name": "d", "start": 60, "size": 40},
        ]


class TestPolicies:
    def test_ties_go_to_the_lowest_address(self) -> None:
        for policy in ("best", "worst"):
            pool = Allocator(50, policy)
            for name in "abcde":
                pool.allocate(name, 10)
            pool.free("b")
            pool.free("d")  # two equal holes, at 10 and 30
            assert pool.allocate("x", 5).start == 10

    def test_next_fit_resumes_after_the_last_placement_and_wraps(self) -> None:
        pool = Allocator(100, "next")
        pool.allocate("a", 10)
        pool.allocate("b", 10)
        pool.free("a")
        assert pool.allocate("c", 5).start == 20  # first fit would reuse address 0
        pool.allocate("d", 75)  # fills [25, 100); the rover is now at the end
        assert pool.allocate("e", 10).start == 0  # wrapped

    def test_set_policy(self) -> None:
        pool = four_blocks()
        pool.free("a")
        pool.free("c")
        pool.set_policy("best")
        assert pool.allocate("x", 5).start == 0
        with pytest.raises(InvalidRequest, match="unknown policy"):
            pool.set_policy("random")
        assert pool.policy == "best"


class TestErrors:
    def test_double_free_is_an_error_and_changes_nothing(self) -> None:
        pool = four_blocks()
        pool.free("b")
        before = pool.to_dict()
        with pytest.raises(UnknownBlock, match="no block named 'b'"):
            pool.free("b")
        assert pool.to_dict() == before

    @pytest.mark.parametrize(
        ("name", "size", "error", "message"),
        [
            ("a", 5, DuplicateBlock, "already allocated"),
            ("z", 0, InvalidRequest, "must be a positive integer"),
            ("z", -3, InvalidRequest, "must be a positive integer"),
            ("z", True, InvalidRequest, "must be a positive integer"),
            ("", 5, InvalidRequest, "non-empty string"),
            ("z", 1, NoFit, "no hole fits"),
        ],
    )
    def test_bad_allocations_raise_and_change_nothing(
        self, name: str, size: int, error: type[AllocationError], message: str
    ) -> None:
        pool = four_blocks()
        before = pool.to_dict()
        with pytest.raises(error, match=message):
            pool.allocate(name, size)
        assert pool.to_dict() == before

    def test_bad_pool(self) -> None:
        with pytest.raises(InvalidRequest):
            Allocator(0)
        with pytest.raises(InvalidRequest):
            Allocator(10, "fastest")


operations = st.lists(st.tuples(st.booleans(), st.integers(0, 7), st.integers(1, 40)), max_size=60)


@given(st.sampled_from(POLICIES), operations)
def test_invariants_hold_under_any_sequence(policy: str, ops: list[Any]) -> None:
    pool = Allocator(128, policy)
    for is_alloc, n, size in ops:
        name = f"t{n}"
        try:
            if is_alloc:
                pool.allocate(name, size)
            else:
                pool.free(name)
        except (NoFit, DuplicateBlock, UnknownBlock):
            pass
        blocks, holes = pool.blocks(), pool.holes()
        for b1, b2 in pairwise(blocks):
            assert b1.end <= b2.start  # never overlap
        for h1, h2 in pairwise(holes):
            assert h1.end < h2.start  # never two adjacent holes
        stats = pool.stats()
        assert stats["used"] + stats["free"] == pool.size
        assert sum(h.size for h in holes) == stats["free"]
        segments = pool.to_dict()["segments"]
        assert sum(s["size"] for s in segments) == pool.size
        assert all(a["start"] + a["size"] == b["start"] for a, b in pairwise(segments))
